"""The whole action under faults, run as the runner runs it against the local stack: what it retries,
how long, and what it says when it gives up.

Three layers of retry are at work, and the tests aim at each:
- botocore (standard mode) retries every AWS API call on throttling, 5xx and connection errors, with
  exponential backoff and jitter, `retries` attempts in all (STS's own calls: 3);
- dockerd retries each layer upload itself, 5 attempts with 5, 10, 15, 20 s pauses, but neither the
  image config blob (uploaded after the layers) nor the manifest;
- the action (tenacity) retries the whole push on what dockerd reports as transient, `retries` attempts
  within `retry-max-seconds`.
Registry faults therefore hit the config blob (`skip=1` lets the one layer of the app through) and the
manifest, so the action's own retry is what they exercise, without dockerd's pauses.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from stack.apps import write_app
from stack.client import StackClient
from stack.config import REPO_ROOT
from stack.faults import server_error, throttling
from stack.runner import RunnerStep, run_action
from tests.helpers import app_inputs

pytestmark = pytest.mark.stack

CONFIG_BLOB_CHUNK = {"method": "PATCH", "path": "/blobs/uploads/"}
CONFIG_BLOB_COMMIT = {"method": "PUT", "path": "/blobs/uploads/"}
MANIFEST_PUT = {"method": "PUT", "path": "/manifests/"}
REGISTRY_5XX = {"status": 500, "headers": {"Content-Type": "text/plain"}, "body": "injected failure"}
RESET = {"reset": True}
LIFECYCLE = {
    "rules": [
        {
            "rulePriority": 1,
            "description": "keep 30 images",
            "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 30},
            "action": {"type": "expire"},
        }
    ]
}


@dataclass
class TimedRun:
    """A run of the action with the moment each line of its stdout arrived (seconds from the start)."""

    returncode: int
    lines: list[tuple[float, str]]
    stderr: str

    @property
    def stdout(self) -> str:
        return "".join(line + "\n" for _, line in self.lines)

    def errors(self) -> list[str]:
        return [line for _, line in self.lines if line.startswith("::error")]

    def at(self, prefix: str) -> float:
        """When the first line starting with `prefix` arrived."""
        return next(moment for moment, line in self.lines if line.startswith(prefix))


def run_timed(environment: dict[str, str], *, timeout: float = 240) -> TimedRun:
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, str(REPO_ROOT / "entrypoint.py")],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stderr is not None
    lines = []
    for line in process.stdout:
        lines.append((time.monotonic() - started, line.rstrip("\n")))
        assert time.monotonic() - started < timeout, "the action ran too long"
    stderr = process.stderr.read()
    return TimedRun(process.wait(timeout=timeout), lines, stderr)


def write_one_layer_app(directory: Path) -> Path:
    """FROM scratch and 2 MiB of random bytes: one layer, streamed to the registry in chunks."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "payload.bin").write_bytes(os.urandom(2 * 1024 * 1024))
    (directory / "Dockerfile").write_text("FROM scratch\nCOPY payload.bin /payload.bin\n")
    return directory


@pytest.fixture
def faults(stack: StackClient) -> Iterator[StackClient]:
    stack.clear_faults()
    yield stack
    stack.clear_faults()


@pytest.fixture
def step(tmp_path: Path) -> RunnerStep:
    step = RunnerStep.in_directory(tmp_path / "runner")
    write_one_layer_app(step.workspace / "app")
    return step


@pytest.fixture
def role(stack: StackClient, unique_name: str) -> str:
    return stack.github_role(unique_name.replace("/", "-"))


def through_fault_proxy(stack: StackClient, environment: dict[str, str]) -> dict[str, str]:
    return {**environment, "AWS_ENDPOINT_URL": stack.config.fault_proxy_url}


def hits(stack: StackClient) -> list[int]:
    return [rule["hits"] for rule in stack.faults()["rules"]]


def seen(stack: StackClient, proxy: str, **facts: str) -> list[dict[str, str]]:
    return [
        request
        for request in stack.faults()["requests"]
        if request["proxy"] == proxy and all(request.get(key) == value for key, value in facts.items())
    ]


def assert_no_success_claimed(step: RunnerStep) -> None:
    outputs = step.outputs()
    for name in ("image-digest", "image-uri", "repository-uri", "tags"):
        assert name not in outputs, f"output {name} claims a push that did not happen"


# Registry ------------------------------------------------------------------------------------------
def test_registry_failures_in_a_row_are_retried_until_the_push_completes(
    faults: StackClient, step: RunnerStep, role: str, unique_name: str
) -> None:
    stack = faults
    # Four failures in a row, one per attempt: 5xx and a reset on the config blob, then on the manifest.
    stack.registry_fault({**CONFIG_BLOB_CHUNK, "repository": unique_name}, REGISTRY_5XX, skip=1)
    stack.registry_fault({**CONFIG_BLOB_COMMIT, "repository": unique_name}, RESET, skip=1)
    stack.registry_fault({**MANIFEST_PUT, "repository": unique_name}, REGISTRY_5XX)
    stack.registry_fault({**MANIFEST_PUT, "repository": unique_name}, RESET)
    environment = step.environment(
        stack,
        stack.github_job(),
        {
            "aws-region": stack.fault_region,
            "role-to-assume": role,
            "repository": unique_name,
            "context": "app",
            "network": "none",
            "tags": "v1",
            "scan": "skip",
            "retries": "5",
        },
    )

    result = run_timed(environment)

    assert result.returncode == 0, result.stdout + result.stderr
    assert hits(stack) == [1, 1, 1, 1]
    for attempt in range(1, 5):
        assert f"attempt {attempt} of 5 failed" in result.stdout
    digest = step.outputs()["image-digest"]
    served = stack.registry_manifest(unique_name, "v1", region=stack.fault_region)
    assert served.status_code == 200 and served.headers["Docker-Content-Digest"] == digest
    images = stack.ecr(region=stack.fault_region).describe_images(repositoryName=unique_name)["imageDetails"]
    assert [image["imageDigest"] for image in images] == [digest]


@pytest.mark.parametrize(
    ("fault", "skip", "retry_inputs", "attempts"),
    [
        (MANIFEST_PUT, 0, {"retries": "2"}, 2),
        (CONFIG_BLOB_CHUNK, 1, {"retries": "3"}, 3),
    ],
    ids=["manifest-5xx", "blob-reset"],
)
def test_past_the_retry_budget_one_error_and_no_success_output(
    faults: StackClient,
    step: RunnerStep,
    role: str,
    unique_name: str,
    fault: dict[str, str],
    skip: int,
    retry_inputs: dict[str, str],
    attempts: int,
) -> None:
    stack = faults
    respond = REGISTRY_5XX if fault is MANIFEST_PUT else RESET
    stack.registry_fault({**fault, "repository": unique_name}, respond, times=None, skip=skip)
    environment = step.environment(
        stack,
        stack.github_job(),
        {
            "aws-region": stack.fault_region,
            "role-to-assume": role,
            "repository": unique_name,
            "context": "app",
            "network": "none",
            "scan": "skip",
            **retry_inputs,
        },
    )

    result = run_timed(environment)

    assert result.returncode == 1
    assert hits(stack) == [attempts]
    [error] = result.errors()
    assert error.startswith(f"::error title=Push failed::Pushing {stack.default_account}.dkr.ecr.")
    assert f"failed after {attempts} attempts" in error
    assert_no_success_claimed(step)


def test_the_time_budget_stops_retrying_on_time(
    faults: StackClient, step: RunnerStep, role: str, unique_name: str
) -> None:
    stack = faults
    budget = 4
    stack.registry_fault({**MANIFEST_PUT, "repository": unique_name}, REGISTRY_5XX, times=None)
    environment = step.environment(
        stack,
        stack.github_job(),
        {
            "aws-region": stack.fault_region,
            "role-to-assume": role,
            "repository": unique_name,
            "context": "app",
            "network": "none",
            "scan": "skip",
            "retries": "20",
            "retry-max-seconds": str(budget),
        },
    )

    result = run_timed(environment)

    assert result.returncode == 1
    [error] = result.errors()
    assert error.startswith("::error title=Push failed::")
    # No attempt starts after the budget: the last one ends within a push's time of it.
    pushing = result.at("::error") - result.at("::group::Push")
    assert pushing < budget + 2, f"the push stage took {pushing:.1f} s for a {budget} s budget"
    assert 1 < hits(stack)[0] < 20
    assert_no_success_claimed(step)


# AWS API -------------------------------------------------------------------------------------------
# Every ECR operation the action may call; the test checks that each call it made was faulted.
ECR_OPERATIONS = (
    "DescribeRepositories",
    "CreateRepository",
    "GetLifecyclePolicy",
    "PutLifecyclePolicy",
    "GetAuthorizationToken",
    "BatchGetImage",
    "DescribeImages",
    "PutImage",
    "StartImageScan",
    "DescribeImageScanFindings",
    "GetSigningConfiguration",
)
# What any push of a new repository with two tags and a scan calls, whatever the implementation.
ESSENTIAL_OPERATIONS = {
    "AssumeRoleWithWebIdentity",
    "DescribeRepositories",
    "CreateRepository",
    "PutLifecyclePolicy",
    "GetAuthorizationToken",
    "PutImage",
    "DescribeImageScanFindings",
}


def test_every_aws_call_is_retried_through_throttling_and_server_errors(
    faults: StackClient, step: RunnerStep, role: str, unique_name: str
) -> None:
    stack = faults
    operations = ("AssumeRoleWithWebIdentity", *ECR_OPERATIONS)
    for operation in operations:
        stack.add_fault("aws", {"operation": operation}, throttling(operation))
        stack.add_fault("aws", {"operation": operation}, server_error(operation))
    stack.scan_results(
        {
            "repositoryName": unique_name,
            "imageId": {},
            "imageScanStatus": {"status": "COMPLETE"},
            "imageScanFindings": {"findings": []},
        }
    )
    environment = through_fault_proxy(
        stack,
        step.environment(
            stack,
            stack.github_job(),
            app_inputs(stack, role, unique_name, **{"tags": "v1, latest", "lifecycle-policy": json.dumps(LIFECYCLE)}),
        ),
    )

    result = run_timed(environment)

    assert result.returncode == 0, result.stdout + result.stderr
    called = {request["operation"] for request in seen(stack, "aws")}
    assert called <= set(operations), f"calls the test does not fault: {called - set(operations)}"
    assert called >= ESSENTIAL_OPERATIONS
    # Each operation called met a throttle then a 5xx, and went through on its third attempt.
    fired = hits(stack)
    rule_hits = dict(zip(operations, zip(fired[::2], fired[1::2], strict=True), strict=True))
    assert {operation: rule_hits[operation] for operation in called} == {operation: (1, 1) for operation in called}
    digest = step.outputs()["image-digest"]
    for tag in ("v1", "latest"):
        assert stack.registry_manifest(unique_name, tag).headers["Docker-Content-Digest"] == digest


@pytest.mark.parametrize(
    ("operation", "respond", "retries"),
    [
        ("DescribeRepositories", throttling("DescribeRepositories"), 3),
        ("GetAuthorizationToken", server_error("GetAuthorizationToken"), 2),
    ],
    ids=["throttled", "5xx"],
)
def test_aws_calls_past_the_bound_fail_with_one_clear_error(
    faults: StackClient, step: RunnerStep, role: str, unique_name: str, operation: str, respond: dict, retries: int
) -> None:
    stack = faults
    stack.add_fault("aws", {"operation": operation}, respond, times=None)
    environment = through_fault_proxy(
        stack,
        step.environment(
            stack,
            stack.github_job(),
            app_inputs(stack, role, unique_name, **{"retries": str(retries)}),
        ),
    )

    result = run_timed(environment)

    assert result.returncode == 1
    assert hits(stack) == [retries]
    [error] = result.errors()
    assert error.startswith(f"::error title=AWS call failed::{operation}")
    assert f"after {retries} attempts" in error and "retries" in error
    assert_no_success_claimed(step)


# What cannot succeed on a second try ---------------------------------------------------------------
def test_a_trust_refusal_is_asked_once(faults: StackClient, step: RunnerStep, unique_name: str) -> None:
    stack = faults
    role = stack.github_role(unique_name.replace("/", "-"), subjects=("repo:octo-org/other:*",))
    environment = through_fault_proxy(
        stack,
        step.environment(
            stack,
            stack.github_job(),
            app_inputs(stack, role, unique_name),
        ),
    )

    result = run_timed(environment)

    assert result.returncode == 1
    [error] = result.errors()
    assert error.startswith(f"::error title=Role trust refused::AWS refused to let this workflow assume {role}")
    assert len(seen(stack, "aws", operation="AssumeRoleWithWebIdentity")) == 1
    assert result.lines[-1][0] < 10


@pytest.mark.parametrize(
    ("status", "attempts", "title"),
    [(503, 3, "OIDC token request failed"), (401, 1, "OIDC token request failed")],
    ids=["unavailable-retried", "refused-not-retried"],
)
def test_the_token_endpoint_failing(
    faults: StackClient, step: RunnerStep, role: str, unique_name: str, status: int, attempts: int, title: str
) -> None:
    stack = faults
    stack.add_fault("aws", {"path": "^/idtoken"}, {"status": status, "body": "{}"}, times=None)
    environment = step.environment(
        stack,
        stack.github_job(),
        app_inputs(stack, role, unique_name),
    )
    environment["ACTIONS_ID_TOKEN_REQUEST_URL"] = f"{stack.config.fault_proxy_url}/idtoken?api-version=2.0"

    result = run_timed(environment)

    assert result.returncode == 1
    [error] = result.errors()
    assert error.startswith(f"::error title={title}::")
    assert f"HTTP {status}" in error
    assert hits(stack) == [attempts]
    assert result.lines[-1][0] < 10


def test_the_token_endpoint_down_is_a_clear_error_on_time(
    stack: StackClient, step: RunnerStep, role: str, unique_name: str
) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    environment = step.environment(
        stack,
        stack.github_job(),
        app_inputs(stack, role, unique_name),
    )
    environment["ACTIONS_ID_TOKEN_REQUEST_URL"] = f"http://127.0.0.1:{closed_port}/idtoken?api-version=2.0"

    result = run_timed(environment)

    assert result.returncode == 1
    [error] = result.errors()
    assert error.startswith("::error title=OIDC token request failed::GitHub's OIDC token endpoint did not answer")
    assert result.lines[-1][0] < 10


def test_a_refused_registry_login_is_one_specific_error_without_retries(
    faults: StackClient, step: RunnerStep, role: str, unique_name: str
) -> None:
    stack = faults
    host = f"{stack.default_account}.dkr.ecr.{stack.region}.amazonaws.com"
    token = base64.b64encode(b"AWS:not-the-registry-password").decode()
    stale_token = {
        "status": 200,
        "headers": {"Content-Type": "application/x-amz-json-1.1"},
        "body": json.dumps(
            {
                "authorizationData": [
                    {"authorizationToken": token, "expiresAt": time.time() + 3600, "proxyEndpoint": f"https://{host}"}
                ]
            }
        ),
    }
    stack.add_fault("aws", {"operation": "GetAuthorizationToken"}, stale_token, times=None)
    environment = through_fault_proxy(
        stack,
        step.environment(
            stack,
            stack.github_job(),
            app_inputs(stack, role, unique_name),
        ),
    )

    result = run_timed(environment)

    assert result.returncode == 1
    [error] = result.errors()
    assert error.startswith(f"::error title=Registry login refused::The registry refused the login for {host}")
    assert "retrying" not in result.stdout
    assert hits(stack) == [1]
    assert_no_success_claimed(step)


# Scans and races -----------------------------------------------------------------------------------
def test_a_scan_that_never_completes_ends_at_the_deadline(
    stack: StackClient, step: RunnerStep, role: str, unique_name: str
) -> None:
    timeout = 3
    stack.scan_delay(unique_name, 600)
    environment = step.environment(
        stack,
        stack.github_job(),
        app_inputs(stack, role, unique_name, **{"scan-timeout": str(timeout), "scan-poll-interval": "1"}),
    )

    result = run_timed(environment)

    assert result.returncode == 1
    [error] = result.errors()
    assert error.startswith("::error title=Scan timed out::Waited 3 s for ECR's scan of")
    waited = result.at("::error") - result.at("::group::Scan")
    assert timeout <= waited < timeout + 2, f"waited {waited:.1f} s for a {timeout} s scan-timeout"
    # The push itself succeeded, and says so; only the scan is missing.
    assert "image-digest" in step.outputs()
    assert step.outputs()["scan-status"] == "TIMED_OUT"


def test_two_runs_racing_on_a_new_repository_both_succeed(
    stack: StackClient, tmp_path: Path, role: str, unique_name: str
) -> None:
    inputs = {
        "aws-region": stack.region,
        "role-to-assume": role,
        "repository": unique_name,
        "context": "app",
        "network": "none",
        "tags": "v1, latest",
        "image-tag-mutability": "IMMUTABLE",
        "lifecycle-policy": json.dumps(LIFECYCLE),
        "repository-tags": "team=platform",
        "scan": "skip",
    }
    steps = [RunnerStep.in_directory(tmp_path / name) for name in ("first", "second")]
    for runner_step in steps:
        write_app(runner_step.workspace / "app", marker="race")
    # One build ahead, as an earlier job of the same commit would have: both runs then build the same image.
    warm = run_action(steps[0].environment(stack, None, {**inputs, "push": "false"}))
    assert warm.returncode == 0, warm.stdout

    processes = [
        subprocess.Popen(
            [sys.executable, str(REPO_ROOT / "entrypoint.py")],
            env=runner_step.environment(stack, stack.github_job(), inputs),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for runner_step in steps
    ]
    logs = [process.communicate(timeout=240)[0] for process in processes]

    assert [process.returncode for process in processes] == [0, 0], "\n\n".join(logs)
    digests = {runner_step.outputs()["image-digest"] for runner_step in steps}
    assert len(digests) == 1
    [digest] = digests
    for tag in ("v1", "latest"):
        assert stack.registry_manifest(unique_name, tag).headers["Docker-Content-Digest"] == digest
    ecr = stack.ecr()
    settings = ecr.describe_repositories(repositoryNames=[unique_name])["repositories"][0]
    assert settings["imageTagMutability"] == "IMMUTABLE"
    assert settings["imageScanningConfiguration"]["scanOnPush"] is True
    assert json.loads(ecr.get_lifecycle_policy(repositoryName=unique_name)["lifecyclePolicyText"]) == LIFECYCLE
    tags = ecr.list_tags_for_resource(resourceArn=settings["repositoryArn"])["tags"]
    assert {"Key": "team", "Value": "platform"} in tags
