"""ECR managed signing: which rules cover the repository, the wait, and its failures (a scripted ECR),
then the whole action against the stack, whose gateway answers the signing operations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from ecr_action.errors import SigningError
from ecr_action.signing import (
    NOT_SIGNED,
    UNKNOWN,
    SigningRequest,
    covering_profiles,
    signing_status,
    wait_for_signing,
)
from stack.apps import write_app
from stack.client import StackClient
from stack.gateway import signing_reply
from stack.runner import RunnerStep, run_action
from tests.helpers import app_inputs

PROFILE = "arn:aws:signer:us-east-1:123456789012:/signing-profiles/ecr_images"
OTHER = "arn:aws:signer:us-east-1:123456789012:/signing-profiles/other"
DIGEST = "sha256:" + "b" * 64
IN_PROGRESS = {"signingProfileArn": PROFILE, "status": "IN_PROGRESS"}
COMPLETE = {"signingProfileArn": PROFILE, "status": "COMPLETE"}
FAILED = {
    "signingProfileArn": PROFILE,
    "status": "FAILED",
    "failureCode": "SIGNING_PROFILE_REVOKED",
    "failureReason": "The signing profile was revoked.",
}


def rule(profile: str, *filters: str) -> dict[str, Any]:
    made: dict[str, Any] = {"signingProfileArn": profile}
    if filters:
        made["repositoryFilters"] = [{"filter": entry, "filterType": "WILDCARD_MATCH"} for entry in filters]
    return made


@pytest.mark.parametrize(
    ("rules", "profiles"),
    [
        pytest.param([], (), id="no rules"),
        pytest.param([rule(PROFILE)], (PROFILE,), id="a rule without filters covers every repository"),
        pytest.param([rule(PROFILE, "team/*")], (PROFILE,), id="wildcard match"),
        pytest.param([rule(PROFILE, "*/app")], (PROFILE,), id="wildcard at the start"),
        pytest.param([rule(PROFILE, "other/*", "team/ap")], (), id="no filter matches"),
        pytest.param([rule(PROFILE, "team/*"), rule(OTHER, "*app*")], (PROFILE, OTHER), id="two rules"),
    ],
)
def test_the_rules_covering_the_repository(rules: list[dict[str, Any]], profiles: tuple[str, ...]) -> None:
    assert covering_profiles({"rules": rules}, "team/app") == profiles


@pytest.mark.parametrize(
    ("statuses", "status"),
    [
        pytest.param([], "IN_PROGRESS", id="not started"),
        pytest.param([IN_PROGRESS], "IN_PROGRESS", id="in progress"),
        pytest.param([COMPLETE], "COMPLETE", id="complete"),
        pytest.param([COMPLETE, {**IN_PROGRESS, "signingProfileArn": OTHER}], "IN_PROGRESS", id="one of two"),
        pytest.param([COMPLETE, {**FAILED, "signingProfileArn": OTHER}], "FAILED", id="one failed"),
    ],
)
def test_one_status_from_each_profiles(statuses: list[dict[str, Any]], status: str) -> None:
    assert signing_status(statuses) == status


class FakeEcr:
    def __init__(self, configuration: dict[str, Any] | str, statuses: list[list[dict[str, Any]]]) -> None:
        self.configuration, self.statuses = configuration, statuses
        self.status_calls = 0

    def get_signing_configuration(self) -> dict[str, Any]:
        if isinstance(self.configuration, str):
            raise ClientError(
                {"Error": {"Code": self.configuration, "Message": "from the fake"}}, "GetSigningConfiguration"
            )
        return {"registryId": "123456789012", "signingConfiguration": self.configuration}

    def describe_image_signing_status(self, **kwargs: Any) -> dict[str, Any]:
        assert kwargs == {"repositoryName": "team/app", "imageId": {"imageDigest": DIGEST}}
        self.status_calls += 1
        answer = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        return {"signingStatuses": answer}


class FakeTime:
    def __init__(self) -> None:
        self.now, self.sleeps = 0.0, []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def wait(ecr: FakeEcr, *, timeout: float = 60, own_registry: bool = True) -> Any:
    fake_time = FakeTime()
    request = SigningRequest("team/app", None, own_registry, DIGEST, timeout, 5)
    return wait_for_signing(ecr, request, sleep=fake_time.sleep, clock=fake_time.clock), fake_time


def test_waits_until_every_covering_profile_signed() -> None:
    ecr = FakeEcr({"rules": [rule(PROFILE, "team/*")]}, [[], [IN_PROGRESS], [COMPLETE]])
    outcome, fake_time = wait(ecr)
    assert (outcome.status, outcome.profiles, outcome.note) == ("COMPLETE", (PROFILE,), "")
    assert fake_time.sleeps == [5, 7.5]


def test_a_failed_signature_fails_with_the_profile_and_the_reason() -> None:
    with pytest.raises(SigningError) as raised:
        wait(FakeEcr({"rules": [rule(PROFILE)]}, [[IN_PROGRESS], [FAILED]]))
    assert raised.value.status == "FAILED"
    assert raised.value.message.startswith(
        f"ECR could not sign team/app@{DIGEST}: {PROFILE}: SIGNING_PROFILE_REVOKED (The signing profile was "
        "revoked.). Check the signing profile in AWS Signer"
    )


def test_no_signature_by_the_deadline_times_out() -> None:
    with pytest.raises(SigningError) as raised:
        wait(FakeEcr({"rules": [rule(PROFILE)]}, [[IN_PROGRESS]]), timeout=20)
    assert raised.value.status == "TIMED_OUT"
    assert "Waited 20 s for ECR to sign" in raised.value.message and "Raise `scan-timeout`" in raised.value.message


@pytest.mark.parametrize(
    ("configuration", "status", "note"),
    [
        pytest.param("SigningConfigurationNotFoundException", NOT_SIGNED, "", id="no configuration"),
        pytest.param({"rules": [rule(PROFILE, "other/*")]}, NOT_SIGNED, "", id="the repository is not covered"),
        pytest.param(
            "AccessDeniedException", UNKNOWN, "allow the IAM action 'ecr:GetSigningConfiguration'", id="no permission"
        ),
        pytest.param("UnknownOperationException", UNKNOWN, "GetSigningConfiguration failed", id="no signing API"),
    ],
)
def test_no_wait_without_a_rule_covering_the_repository(configuration: Any, status: str, note: str) -> None:
    ecr = FakeEcr(configuration, [[COMPLETE]])
    outcome, _ = wait(ecr)
    assert (outcome.status, ecr.status_calls) == (status, 0)
    assert note in outcome.note


def test_another_accounts_registry_is_not_read() -> None:
    ecr = FakeEcr("AccessDeniedException", [[COMPLETE]])
    outcome, _ = wait(ecr, own_registry=False)
    assert outcome.status == UNKNOWN and "another account" in outcome.note


# The stack's gateway ---------------------------------------------------------------------------------
def test_the_gateway_answers_signing_from_the_state_tests_set() -> None:
    state: dict[tuple[str, str], dict[str, Any]] = {}
    assert signing_reply(state, "us-east-1", "GetSigningConfiguration", {})[0] == 400
    state[("us-east-1", "team/app")] = {"profile": PROFILE, "statuses": [[IN_PROGRESS], [COMPLETE]]}
    state[("eu-west-1", "team/other")] = {"profile": OTHER, "statuses": [[]]}

    assert signing_reply(state, "us-east-1", "GetSigningConfiguration", {}) == (
        200,
        {"signingConfiguration": {"rules": [rule(PROFILE, "team/app")]}},
    )
    request = {"repositoryName": "team/app", "imageId": {"imageDigest": DIGEST}}
    answers = [signing_reply(state, "us-east-1", "DescribeImageSigningStatus", request)[1] for _ in range(3)]
    assert [answer["signingStatuses"] for answer in answers] == [[IN_PROGRESS], [COMPLETE], [COMPLETE]]
    assert answers[0]["imageId"] == {"imageDigest": DIGEST}


@pytest.fixture
def signing_gateway(stack: StackClient) -> StackClient:
    if "signing" not in stack.gateway_features():
        pytest.skip("the running stack's gateway predates the signing operations: restart the stack")
    return stack


def run_signed(stack: StackClient, tmp_path: Path, repository: str, statuses: list[list[dict[str, Any]]]) -> Any:
    """The action run on a repository whose images the registry signs, going through `statuses`."""
    step = RunnerStep.in_directory(tmp_path / "runner")
    write_app(step.workspace / "app", marker=tmp_path.name)
    stack.scan_results(
        {
            "repositoryName": repository,
            "imageId": {},
            "imageScanStatus": {"status": "COMPLETE"},
            "imageScanFindings": {"findings": []},
        }
    )
    stack.image_signing(repository, PROFILE, statuses)
    role = stack.github_role(repository.replace("/", "-"))
    inputs = app_inputs(stack, role, repository, **{"scan-poll-interval": "1"})
    return step, run_action(step.environment(stack, stack.github_job(), inputs))


def test_stack_the_action_waits_for_the_signature_and_outputs_its_status(
    signing_gateway: StackClient, tmp_path: Path, unique_name: str
) -> None:
    step, result = run_signed(signing_gateway, tmp_path, unique_name, [[IN_PROGRESS], [COMPLETE]])

    assert result.returncode == 0, result.stdout
    assert f"signed by ECR with {PROFILE}" in result.stdout
    assert step.outputs()["signing-status"] == "COMPLETE"


def test_stack_a_failed_signature_fails_the_step(
    signing_gateway: StackClient, tmp_path: Path, unique_name: str
) -> None:
    step, result = run_signed(signing_gateway, tmp_path, unique_name, [[FAILED]])

    assert result.returncode == 1
    errors = [line for line in result.stdout.splitlines() if line.startswith("::error")]
    assert len(errors) == 1 and errors[0].startswith("::error title=Image signing::ECR could not sign")
    assert step.outputs()["signing-status"] == "FAILED"
