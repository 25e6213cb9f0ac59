"""What a failed build tells the user: the step, its last output, the cause and the fix.

The engine's words are kept (scrubbed of every secret value by the callers), and the known causes are
named: a Dockerfile this engine cannot read (heredocs before Dockerfile 1.4, a `# syntax=` frontend), a
file missing from the context, a base image the registry refused, a platform the machine cannot run.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ecr_action.buildlog import BuildOutcome, FailedStep
from ecr_action.errors import BaseImageAccessError, BuildError
from ecr_action.secrets import scrub

_PARSE_ERROR_LINE = re.compile(r"dockerfile parse error (?:on )?line (\d+)")
_HEREDOC = re.compile(r"^\s*(?:RUN|COPY|ADD)\b.*?<<-?([\"']?)([A-Za-z_][A-Za-z0-9_]*)\1", re.IGNORECASE)
_SYNTAX = re.compile(r"^#\s*syntax\s*=\s*(\S+)", re.IGNORECASE)
_MISSING = re.compile(r"\"/([^\"]*)\":? not found")
_NO_SESSION = "no active session"
_ECR_REGISTRY = re.compile(r"\b\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com\b")
_REFUSED = re.compile(r"no basic auth credentials|unauthori[sz]ed|\bdenied\b|\b40[13]\b", re.IGNORECASE)
_UNAUTHENTICATED = re.compile(r"no basic auth credentials|unauthori[sz]ed|\b401\b", re.IGNORECASE)
_FROM_IMAGE = re.compile(r"^\s*FROM\s+(?:--\S+\s+)*(\S+)", re.IGNORECASE | re.MULTILINE)


def heredoc_lines(dockerfile_text: str) -> list[tuple[int, int]]:
    """The (first, last) line numbers, 1-based, of each heredoc: from its instruction to its delimiter."""
    found = []
    lines = dockerfile_text.splitlines()
    index = 0
    while index < len(lines):
        start = _HEREDOC.match(lines[index])
        index += 1
        if start:
            first = index
            while index < len(lines) and lines[index].strip() != start.group(2):
                index += 1
            found.append((first, min(index + 1, len(lines))))
            index += 1
    return found


def syntax_directive(dockerfile_text: str) -> str | None:
    """The frontend image a `# syntax=` parser directive asks for (directives come before anything else)."""
    for line in dockerfile_text.splitlines():
        if not line.strip():
            continue
        if not line.lstrip().startswith("#"):
            return None
        found = _SYNTAX.match(line.strip())
        if found:
            return found.group(1)
    return None


def registry_refusal(error: str, dockerfile_text: str = "") -> BaseImageAccessError | None:
    """The error for a pull an ECR registry refused (401, 403), naming the registry, the image when the
    Dockerfile names one there, and the permissions; None when `error` is not one."""
    found = _ECR_REGISTRY.search(error)
    if found is None or not _REFUSED.search(error):
        return None
    registry = found.group(0)
    images = [image for image in _FROM_IMAGE.findall(dockerfile_text) if image.startswith(f"{registry}/")]
    what = f"the base image {images[0]}" if len(set(images)) == 1 else f"an image from {registry}"
    message = (
        f"The build could not pull {what}: the registry {registry} refused it ({error}). The role needs "
        f"ecr:BatchGetImage and ecr:GetDownloadUrlForLayer on that repository, and ecr:GetAuthorizationToken; a "
        f"repository in another account must also allow this role in its repository policy."
    )
    if _UNAUTHENTICATED.search(error):
        message += (
            " The action logs in to the run's own registry, to the registries of `FROM` lines in the run's "
            "region and to the accounts listed in `registries`: an image named another way (through an ARG) "
            "needs its account in `registries`."
        )
    return BaseImageAccessError(message)


def buildkit_failure(
    outcome: BuildOutcome, dockerfile_text: str, engine: str, secrets: Iterable[str]
) -> BuildError | BaseImageAccessError:
    """The error for a build that gave no image. `engine` is the engine's Server header ("Docker/20.10.24")."""
    error = (outcome.error or "the engine ended the build without an image and without an error").rstrip(".")
    parse = _PARSE_ERROR_LINE.search(error)
    heredoc = next(
        (span for span in heredoc_lines(dockerfile_text) if parse and span[0] <= int(parse.group(1)) <= span[1]), None
    )
    syntax = syntax_directive(dockerfile_text)
    step = outcome.failed_step
    # The step that failed is fetching the frontend (named after its image), or there is no step yet.
    frontend_failed = syntax and (step.name.find(syntax) >= 0 if step else _NO_SESSION in error)
    if heredoc:
        message = (
            f"The Dockerfile has a heredoc (`<<`, line {heredoc[0]}) and this Docker Engine "
            f"({engine or 'version unknown'}) cannot read heredocs: its built-in Dockerfile frontend predates them "
            f"(they need Dockerfile 1.4, in Docker Engine 23.0 and later), so it read the heredoc's lines as "
            f"instructions: {error}. Upgrade the engine (GitHub-hosted runners have Docker 28), or replace the "
            f"heredoc with a RUN of one command or a COPY of a file."
        )
    elif frontend_failed:
        message = (
            f"The Dockerfile's `# syntax={syntax}` line makes BuildKit fetch and run that Dockerfile frontend, "
            f"and that failed: {error}. Remove the line to build with the engine's built-in frontend"
            + (
                ", or build with a BuildKit session, which carries the registry credentials."
                if _NO_SESSION in error
                else "."
            )
        )
    elif _NO_SESSION in error:
        message = (
            f"BuildKit asked for the client's session and this build has none: {error}. A session carries what the "
            f"build takes from the job: registry credentials for a private base image, `RUN --mount=type=secret` "
            f"and `--mount=type=ssh`; build with one, or remove what needs it."
        )
    elif (refused := registry_refusal(error, dockerfile_text)) is not None and not _is_run_step(step):
        return BaseImageAccessError(scrub(refused.message, secrets))
    elif parse or "failed to create LLB definition" in error:
        message = f"The Dockerfile is not valid: {error}. Fix the line it names."
    elif step is not None:
        message = _step_message(step)
    else:
        message = f"The image build failed: {error}."
    return BuildError(scrub(message, secrets))


def _is_run_step(step: FailedStep | None) -> bool:
    """Whether the step that failed runs the user's commands (whose output may say anything)."""
    return step is not None and re.search(r"\bRUN\b", step.name) is not None


def _step_message(step: FailedStep) -> str:
    message = f"The build failed at step #{step.number} {step.name}: {step.error.rstrip('.')}."
    missing = _MISSING.search(step.error)
    if missing and re.search(r"\b(?:COPY|ADD)\b", step.name):
        message += (
            f" {missing.group(1)} is not in the build context: check the path (relative to the context directory) "
            f"and that .dockerignore does not exclude it."
        )
    if step.output:
        message += "\nIts last output lines:\n" + "\n".join(f"  {line}" for line in step.output)
    return message


def classic_failure(detail: str, dockerfile_text: str = "") -> Exception:
    """The engine's failure as the user can act on it; a base image the registry refused names it."""
    refused = registry_refusal(detail, dockerfile_text)
    if refused is not None:
        return refused
    return BuildError(f"The image build failed: {detail} (the build log above has the step).")


def platform_failure(error: BuildError, platform: str | None, several: bool) -> BuildError:
    """The error of one platform's build: one the engine cannot run says so, with the fix."""
    if platform and "exec format error" in error.message:
        return BuildError(
            f"The build for {platform} could not run its steps: this machine cannot run {platform} programs "
            f"({error.message.splitlines()[0]}). Add QEMU before this step (docker/setup-qemu-action), or build "
            f"{platform} on a native runner and join the images with `merge-digests`."
        )
    if several:
        return BuildError(f"The build for {platform} failed. {error.message}")
    return error
