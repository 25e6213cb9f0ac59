"""The failures a user can act on, one class each.

Every class carries the exact text the user reads: what failed, why it most likely failed, and the fix.
`ecr_action.main` is the only place that turns one of these into an `::error::` line and an exit code;
anything else that escapes is a bug and is shown as one. This module imports nothing from the package.
"""

from __future__ import annotations


class ActionError(Exception):
    """Base of every failure with a message meant for the user."""

    title = "ecr-action failed"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InputError(ActionError):
    """One or more inputs are invalid; `problems` holds one line per input."""

    title = "Invalid input"

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class OidcNotPermittedError(ActionError):
    """The job cannot request a GitHub OIDC token (missing permission, or a fork's pull request)."""

    title = "No OIDC token"


class OidcTokenError(ActionError):
    """GitHub's token endpoint was reachable but did not hand out a token."""

    title = "OIDC token request failed"


class TrustRefusedError(ActionError):
    """STS refused to let this workflow assume the role (the role's trust policy)."""

    title = "Role trust refused"


class CredentialsError(ActionError):
    """No usable AWS credentials, or credentials for an account that is not allowed."""

    title = "AWS credentials"


class AccessDeniedError(ActionError):
    """An AWS call was denied; the message names the IAM action to allow."""

    title = "Access denied"


class AwsCallError(ActionError):
    """An AWS call failed for a reason the user can act on (not permissions)."""

    title = "AWS call failed"


class RepositoryMissingError(ActionError):
    """The repository does not exist and `create-repository` is false."""

    title = "Repository not found"


class RegistryLoginError(ActionError):
    """The registry refused the credentials from GetAuthorizationToken."""

    title = "Registry login refused"


class BaseImageAccessError(RegistryLoginError):
    """The build could not pull an image from ECR: the registry refused the login or the role (401, 403)."""

    title = "Base image not readable"


class BuildError(ActionError):
    """The Docker build failed; the build log above has the details."""

    title = "Build failed"


class DockerEngineError(ActionError):
    """The Docker Engine could not be reached or refused a request."""

    title = "Docker Engine"


class ImmutableTagError(ActionError):
    """A tag already names another image, and may not be moved (IMMUTABLE tags, or `if-tag-exists`)."""

    title = "Tag already taken"

    @classmethod
    def immutable(cls, tag: str, repository: str, digest: str = "") -> ImmutableTagError:
        """The repository's tags are IMMUTABLE: whether the action or the registry found it out."""
        named = f" ({digest})" if digest else ""
        return cls(
            f"Tag '{tag}' already names another image{named} in {repository}, where the tag is IMMUTABLE: "
            "push under a new tag (e.g. the commit SHA)."
        )

    @classmethod
    def exists(cls, tag: str, repository: str, digest: str) -> ImmutableTagError:
        """`if-tag-exists: fail`, and the tag exists."""
        return cls(
            f"Tag '{tag}' already exists in {repository} (it names {digest}) and 'if-tag-exists' is 'fail': "
            "push under a new tag, or set 'if-tag-exists: skip-same-digest'."
        )

    @classmethod
    def names_another(cls, tag: str, repository: str, digest: str) -> ImmutableTagError:
        """`if-tag-exists: skip-same-digest`, and the tag names another image."""
        return cls(
            f"Tag '{tag}' already names another image ({digest}) in {repository}: "
            "set 'if-tag-exists: overwrite' to move it, or push under a new tag."
        )


class PushError(ActionError):
    """The push did not complete, after the retries allowed."""

    title = "Push failed"


class MergeError(ActionError):
    """`merge-digests` names images that cannot make one index."""

    title = "Merge failed"


class ScanTimeoutError(ActionError):
    """The scan result did not arrive before `scan-timeout`."""

    title = "Scan timed out"
    status = "TIMED_OUT"  # the `scan-status` output


class ScanFailedError(ActionError):
    """ECR could not scan the image (failed, unsupported, findings unavailable)."""

    title = "Scan failed"

    def __init__(self, message: str, status: str) -> None:
        super().__init__(message)
        self.status = status  # ECR's scan status, for the `scan-status` output


class SigningError(ActionError):
    """ECR's managed signing of the image failed, or did not finish before the deadline."""

    title = "Image signing"

    def __init__(self, message: str, status: str) -> None:
        super().__init__(message)
        self.status = status  # the `signing-status` output


class GateFailedError(ActionError):
    """Findings at or above `fail-on` remain after ignores and the baseline."""

    title = "Vulnerability gate"
