"""The errors a failed build gives: the step, its output, and the causes named with their fixes. Pure."""

from __future__ import annotations

import pytest

from ecr_action.buildfailures import buildkit_failure, heredoc_lines, platform_failure, syntax_directive
from ecr_action.buildlog import BuildOutcome, FailedStep
from ecr_action.errors import BuildError

HEREDOC_DOCKERFILE = "FROM scratch\nCOPY busybox /bin/busybox\nRUN <<EOF\necho hi\nEOF\nCOPY <<-'END' /x\nhello\nEND\n"
RUN_FAILED = 'executor failed running [/bin/sh -c echo "about to fail" && exit 3]: exit code: 3'


def test_heredoc_lines_run_from_the_instruction_to_the_delimiter() -> None:
    assert heredoc_lines(HEREDOC_DOCKERFILE) == [(3, 5), (6, 8)]
    assert heredoc_lines("FROM x\nRUN echo $((1 << 2))\nRUN cat <<EOF\nno end") == [(3, 4)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("# syntax=docker/dockerfile:1.4\nFROM x\n", "docker/dockerfile:1.4"),
        ("\n# escape=`\n#syntax = example.com/df:1\nFROM x\n", "example.com/df:1"),
        ("FROM x\n# syntax=docker/dockerfile:1\n", None),
        ("# a comment\nFROM x\n", None),
    ],
)
def test_syntax_directive(text: str, expected: str | None) -> None:
    assert syntax_directive(text) == expected


def failure(error: str, step: FailedStep | None = None, dockerfile: str = "FROM scratch\n", secrets=()) -> str:
    outcome = BuildOutcome(image_id=None, error=error, failed_step=step)
    return buildkit_failure(outcome, dockerfile, "Docker/20.10.24+dfsg1 (linux)", secrets).message


def test_a_failed_run_names_the_step_and_its_last_output() -> None:
    step = FailedStep(3, '[3/3] RUN echo "about to fail" && exit 3', RUN_FAILED, ("about to fail",))
    assert failure(RUN_FAILED, step) == (
        f'The build failed at step #3 [3/3] RUN echo "about to fail" && exit 3: {RUN_FAILED}.\n'
        "Its last output lines:\n"
        "  about to fail"
    )


@pytest.mark.parametrize(
    "error",
    [
        '"/missing.txt" not found: not found',  # Docker 20.10
        'failed to calculate checksum of ref abc::def: "/missing.txt": not found',  # Docker 23 and later
    ],
)
def test_a_file_missing_from_the_context_is_named(error: str) -> None:
    message = failure(error, FailedStep(2, "[2/2] COPY missing.txt /m", error, ()))
    assert "missing.txt is not in the build context" in message
    assert ".dockerignore" in message


def test_a_parse_error_says_the_dockerfile_is_not_valid() -> None:
    error = (
        "failed to solve with frontend dockerfile.v0: failed to create LLB definition: "
        "dockerfile parse error line 3: unknown instruction: RUNN"
    )
    assert failure(error) == f"The Dockerfile is not valid: {error}. Fix the line it names."


ECR_BASE = "210987654321.dkr.ecr.us-east-1.amazonaws.com"


@pytest.mark.parametrize(("status", "hint"), [("403 Forbidden", False), ("401 Unauthorized", True)])
def test_a_base_image_the_registry_refuses_names_the_registry_the_image_and_the_permissions(
    status: str, hint: bool
) -> None:
    error = (
        "failed to solve with frontend dockerfile.v0: failed to create LLB definition: pulling from host "
        f"{ECR_BASE} failed with status code [manifests v1]: {status}"
    )
    step = FailedStep(1, f"[internal] load metadata for {ECR_BASE}/base:1", error, ())
    message = failure(error, step, dockerfile=f"FROM scratch AS a\nFROM --platform=$BUILDPLATFORM {ECR_BASE}/base:1\n")
    assert message.startswith(
        f"The build could not pull the base image {ECR_BASE}/base:1: the registry {ECR_BASE} refused it ({error})."
    )
    assert "ecr:BatchGetImage and ecr:GetDownloadUrlForLayer" in message
    assert ("needs its account in `registries`" in message) is hint


def test_a_run_step_that_says_denied_about_an_ecr_host_is_a_failed_step() -> None:
    error = f'process "/bin/sh -c curl https://{ECR_BASE}/v2/" did not complete successfully: exit code: 1'
    step = FailedStep(2, f"[2/2] RUN curl https://{ECR_BASE}/v2/", error, ("403 denied",))
    assert failure(error + " denied", step).startswith("The build failed at step #2")


def test_a_heredoc_an_old_engine_cannot_read_is_named_as_the_cause() -> None:
    error = (
        "failed to solve with frontend dockerfile.v0: failed to create LLB definition: "
        "dockerfile parse error line 4: unknown instruction: ECHO"
    )
    message = failure(error, dockerfile=HEREDOC_DOCKERFILE)
    assert message.startswith("The Dockerfile has a heredoc (`<<`, line 3) and this Docker Engine (Docker/20.10.24")
    assert "Upgrade the engine (GitHub-hosted runners have Docker 28)" in message
    # A parse error elsewhere is not blamed on the heredoc.
    assert failure(error.replace("line 4", "line 2"), dockerfile=HEREDOC_DOCKERFILE).startswith("The Dockerfile is not")


def test_a_syntax_line_whose_frontend_cannot_be_had_is_named_with_how_to_do_without() -> None:
    dockerfile = "# syntax=docker/dockerfile:1.4\nFROM scratch\n"
    unreachable = (  # Docker 20.10 with no way to Docker Hub
        'failed to do request: Head "https://registry-1.docker.io/v2/docker/dockerfile/manifests/1.4": dial tcp: '
        "lookup registry-1.docker.io: no such host"
    )
    resolving = FailedStep(1, "resolve image config for docker.io/docker/dockerfile:1.4", unreachable, ())
    message = failure(f"failed to solve with frontend gateway.v0: {unreachable}", resolving, dockerfile)
    assert message.startswith("The Dockerfile's `# syntax=docker/dockerfile:1.4` line makes BuildKit fetch")
    assert message.endswith("Remove the line to build with the engine's built-in frontend.")
    no_session = "failed to solve with frontend gateway.v0: no active sessions"
    assert failure(no_session, dockerfile=dockerfile).endswith(
        "or build with a BuildKit session, which carries the registry credentials."
    )


def test_a_step_failing_under_a_syntax_frontend_is_the_steps_failure() -> None:
    dockerfile = "# syntax=docker/dockerfile:1.4\nFROM scratch\nRUN exit 3\n"
    error = "failed to solve with frontend gateway.v0: rpc error: code = Unknown desc = exit code: 3"
    message = failure(error, FailedStep(2, "[2/2] RUN exit 3", "exit code: 3", ()), dockerfile)
    assert message == "The build failed at step #2 [2/2] RUN exit 3: exit code: 3."


def test_a_missing_session_without_a_syntax_line_says_what_needs_one() -> None:
    message = failure("failed to load cache key: no active sessions")
    assert message.startswith("BuildKit asked for the client's session and this build has none")


def test_no_build_arg_value_reaches_an_error() -> None:
    step = FailedStep(2, "[2/2] RUN echo s3cr3t-value && exit 1", "exit code: 1", ("s3cr3t-value",))
    message = failure("exit code: 1", step, secrets=["s3cr3t-value"])
    assert "s3cr3t-value" not in message
    assert "RUN echo *** && exit 1" in message


def test_a_platform_the_engine_cannot_run_names_the_platform_and_the_fix() -> None:
    error = BuildError("The build failed at step #2 [2/2] RUN uname -m: exec /bin/sh: exec format error.")
    message = platform_failure(error, "linux/arm64", several=True).message
    assert message.startswith("The build for linux/arm64 could not run its steps: this machine cannot run linux/arm64")
    assert "docker/setup-qemu-action" in message and "merge-digests" in message


def test_one_platform_s_failure_among_several_says_which() -> None:
    error = BuildError("The build failed at step #3 [3/3] RUN false: exit code 1.")
    assert platform_failure(error, "linux/amd64", several=True).message.startswith(
        "The build for linux/amd64 failed. The build failed at step #3"
    )
    assert platform_failure(error, None, several=False) is error
