"""The input table: every input of action.yml, its default, and its accepted form.

A new input is a row here (spelled as in action.yml, which a test checks), a field of `Inputs` and a
line in `read_inputs` (`ecr_action.inputs.reader`).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from ecr_action.inputs.choices import (
    Builder,
    BuildNetwork,
    CacheTo,
    EncryptionType,
    FailOn,
    IfTagExists,
    ImageTagMutability,
    ScanMode,
    ScanUnavailable,
)


@dataclass(frozen=True, slots=True)
class InputSpec:
    """One input as action.yml declares it; `help` is the short text of `--help`."""

    name: str
    help: str
    default: str | None = None  # spelled as in action.yml; None: none, or computed from the run
    required: bool = False
    choices: type[enum.StrEnum] | None = None
    bounds: tuple[int, int] | None = None

    @property
    def variable(self) -> str:
        return f"INPUT_{self.name.upper()}"

    @property
    def is_boolean(self) -> bool:
        return self.default in ("true", "false")

    @property
    def accepted(self) -> str:
        """The accepted form, as problem lines and `--help` spell it."""
        if self.choices is not None:
            return "one of " + ", ".join(self.choices)
        if self.bounds is not None:
            return f"a whole number from {self.bounds[0]} to {self.bounds[1]}"
        if self.is_boolean:
            return "true or false (also True, TRUE, False, FALSE)"
        return ""


INPUT_SPECS: tuple[InputSpec, ...] = (
    InputSpec("aws-region", "AWS region of the registry, e.g. us-east-1", required=True),
    InputSpec("role-to-assume", "ARN of the IAM role to assume"),
    InputSpec("audience", "audience of the GitHub OIDC token", "sts.amazonaws.com"),
    InputSpec("role-session-name", "STS session name (default: ecr-action-<run id>-<run attempt>)"),
    InputSpec("role-duration-seconds", "session duration in seconds", "3600", bounds=(900, 43200)),
    InputSpec("role-chaining", "assume role-to-assume with the credentials already present", "false"),
    InputSpec("chain-role-to-assume", "ARN of a second role, assumed with the first role's credentials"),
    InputSpec("allowed-account-ids", "12-digit account ids the credentials must belong to"),
    InputSpec("repository", "ECR repository name", required=True),
    InputSpec("registry-id", "12-digit account id owning the registry, if not the credentials' own"),
    InputSpec("create-repository", "create the repository when missing", "true"),
    InputSpec("scan-on-push", "scan-on-push setting of a created repository", "true"),
    # No defaults: unset leaves an existing repository as it is (it may be managed elsewhere, e.g. by
    # Terraform); a repository the action creates gets ECR's own defaults, MUTABLE and AES256.
    InputSpec(
        "image-tag-mutability", "tag mutability (unset: leave as is; MUTABLE on creation)", choices=ImageTagMutability
    ),
    InputSpec(
        "image-tag-mutability-exclusions",
        "wildcard tag filters that behave the other way (with *_WITH_EXCLUSION)",
    ),
    InputSpec(
        "encryption-type",
        "encryption of a created repository (unset: AES256, or KMS with kms-key)",
        choices=EncryptionType,
    ),
    InputSpec("kms-key", "KMS key for encryption-type KMS or KMS_DSSE (default: the AWS managed key)"),
    InputSpec("lifecycle-policy", "lifecycle policy: inline JSON or a JSON file"),
    InputSpec("repository-policy", "repository policy: inline JSON or a JSON file"),
    InputSpec("repository-tags", "key=value lines tagging the repository"),
    InputSpec("context", "build context directory", "."),
    InputSpec("file", "Dockerfile (default: <context>/Dockerfile)"),
    InputSpec("build-args", "KEY=VALUE build arguments, one a line"),
    InputSpec("target", "build stage to build"),
    InputSpec("labels", "key=value image labels, one a line, added to the OCI labels"),
    InputSpec("pull", "always pull the base images", "false"),
    InputSpec("no-cache", "build without the cache", "false"),
    InputSpec("build-timeout", "seconds the build may take (default: no limit)", bounds=(1, 86400)),
    InputSpec("builder", "the engine's builder", "auto", choices=Builder),
    InputSpec("platforms", "os/arch[/variant] platforms to build, commas or lines (default: the engine's)"),
    InputSpec("network", "network of the build's RUN steps (default: the engine's)", choices=BuildNetwork),
    InputSpec("secrets", "build secrets, id=value lines, for RUN --mount=type=secret"),
    InputSpec("secret-files", "build secrets read from files, id=path lines (paths in the workspace)"),
    InputSpec("secret-envs", "build secrets read from environment variables, id=VARIABLE lines"),
    InputSpec("registries", "more ECR registries (12-digit account ids) to log in to for base images and cache"),
    InputSpec("cache-from", "images whose layers the build may reuse (default: the image under the first tag)"),
    InputSpec("cache-to", "where the build writes its cache", "none", choices=CacheTo),
    InputSpec("merge-digests", "digests of single-platform images to merge into one index instead of building"),
    InputSpec("tags", "image tags, commas or lines (default: the short commit SHA)"),
    InputSpec("if-tag-exists", "what to do when a tag is taken", "skip-same-digest", choices=IfTagExists),
    InputSpec("push", "push the image (false: build and validate only)", "true"),
    InputSpec("retries", "attempts per operation", "5", bounds=(1, 20)),
    InputSpec("retry-max-seconds", "time budget per operation in seconds", "120", bounds=(1, 3600)),
    InputSpec("dry-run", "print the plan and change nothing", "false"),
    InputSpec("scan", "how the image gets scanned", "on-push", choices=ScanMode),
    InputSpec("scan-timeout", "seconds to wait for the scan", "600", bounds=(1, 86400)),
    InputSpec("scan-poll-interval", "seconds between scan status checks", "5", bounds=(1, 300)),
    InputSpec(
        "scan-unavailable",
        "what the gate does when ECR can give no findings",
        "fail",
        choices=ScanUnavailable,
    ),
    InputSpec("fail-on", "lowest severity that fails the gate", "critical", choices=FailOn),
    InputSpec("fail-on-fixable-only", "gate only on findings that have a fix", "false"),
    InputSpec("ignore", "vulnerability ids to ignore, commas or lines"),
    InputSpec("ignore-file", "YAML file listing ignored vulnerabilities"),
    InputSpec("baseline-tag", "tag of the image whose findings are accepted"),
    InputSpec("sarif-file", "path to write a SARIF report to"),
    InputSpec("annotations", "most findings to annotate", "10", bounds=(0, 50)),
    InputSpec("summary", "write the job summary", "true"),
)
INPUTS: Mapping[str, InputSpec] = {spec.name: spec for spec in INPUT_SPECS}
