"""The stack's gateway evaluates trust policies as IAM does for GitHub's tokens (the cases the tests use),
and answers with the lifecycle policies that archive, which moto refuses, through stand-ins moto accepts."""

from __future__ import annotations

import json
from typing import Any

import pytest
from moto.ecr.exceptions import InvalidParameterException
from moto.ecr.policy_validation import EcrLifecyclePolicyValidator

from stack.gateway import lifecycle_stand_in, restore_lifecycle_policy, trust_allows, with_lifecycle_stand_in

PROVIDER = "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"
CLAIMS = {
    "aud": "sts.amazonaws.com",
    "sub": "repo:octo-org/app:ref:refs/heads/main",
    "job_workflow_ref": "platform/shared/.github/workflows/build.yml@refs/tags/v1.2",
}


def policy(conditions: dict, *, provider: str = PROVIDER, action: str = "sts:AssumeRoleWithWebIdentity") -> dict:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Federated": provider}, "Action": action, "Condition": conditions}
        ],
    }


AUD = {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"}


@pytest.mark.parametrize(
    ("document", "allowed"),
    [
        (policy({"StringEquals": {**AUD, "token.actions.githubusercontent.com:sub": CLAIMS["sub"]}}), True),
        (
            policy({"StringEquals": AUD, "StringLike": {"token.actions.githubusercontent.com:sub": "repo:octo-org/*"}}),
            True,
        ),
        (
            policy({"StringLike": {"token.actions.githubusercontent.com:sub": ["repo:x/*", "repo:octo-org/app:*"]}}),
            True,
        ),
        (policy({"StringLike": {"token.actions.githubusercontent.com:sub": "repo:octo-org/app:pull_request"}}), False),
        (policy({"StringEquals": {"token.actions.githubusercontent.com:aud": "api://other"}}), False),
        (
            policy(
                {
                    "StringLike": {
                        "token.actions.githubusercontent.com:job_workflow_ref": "platform/shared/*@refs/tags/v1*"
                    }
                }
            ),
            True,
        ),
        (
            policy(
                {
                    "StringLike": {
                        "token.actions.githubusercontent.com:job_workflow_ref": "platform/shared/*@refs/heads/*"
                    }
                }
            ),
            False,
        ),
        (policy({"ForAnyValue:StringLike": {"token.actions.githubusercontent.com:sub": "*"}}), False),
        (policy(AUD, provider="arn:aws:iam::123456789012:oidc-provider/other.example"), False),
        (policy(AUD, action="sts:AssumeRole"), False),
        (policy({}), True),
    ],
    ids=[
        "sub-equals",
        "sub-like",
        "sub-any-of",
        "sub-mismatch",
        "aud-mismatch",
        "workflow-ref",
        "workflow-ref-mismatch",
        "unmodelled-operator-refuses",
        "other-provider",
        "other-action",
        "no-condition",
    ],
)
def test_trust_policy_evaluation(document: dict, allowed: bool) -> None:
    assert trust_allows(document, PROVIDER, CLAIMS) is allowed


def lifecycle(*rules: dict[str, Any]) -> str:
    return json.dumps({"rules": list(rules)})


def rule(priority: int, selection: dict[str, Any], action: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"rulePriority": priority, "selection": selection, "action": action or {"type": "expire"}}


ARCHIVE = {"type": "transition", "targetStorageClass": "archive"}
NOT_PULLED = {"tagStatus": "any", "countType": "sinceImagePulled", "countUnit": "days", "countNumber": 90}
ARCHIVING = lifecycle(rule(1, NOT_PULLED, ARCHIVE))
EXPIRING = lifecycle(rule(1, {"tagStatus": "untagged", "countType": "imageCountMoreThan", "countNumber": 5}))


def moto_accepts(text: str) -> bool:
    try:
        EcrLifecyclePolicyValidator(text).validate()
    except InvalidParameterException:
        return False
    return True


@pytest.mark.parametrize(
    "policy",
    [
        ARCHIVING,
        lifecycle(
            rule(
                1,
                {
                    "tagStatus": "any",
                    "storageClass": "archive",
                    "countType": "sinceImageTransitioned",
                    "countUnit": "days",
                    "countNumber": 365,
                },
            )
        ),
        lifecycle(
            rule(
                1,
                {
                    "tagStatus": "tagged",
                    "tagPatternList": ["v*"],
                    "countType": "imageCountMoreThan",
                    "countNumber": 3,
                    "storageClass": "standard",
                },
            ),
            rule(2, NOT_PULLED, ARCHIVE),
        ),
    ],
    ids=["transition-since-pulled", "expire-archived-since-transitioned", "standard-then-archive"],
)
def test_moto_accepts_the_stand_in_of_a_policy_that_archives(policy: str) -> None:
    assert not moto_accepts(policy)
    stand_in = lifecycle_stand_in(policy)
    assert stand_in is not None and moto_accepts(stand_in)
    assert [r["rulePriority"] for r in json.loads(stand_in)["rules"]] == [
        r["rulePriority"] for r in json.loads(policy)["rules"]
    ]


@pytest.mark.parametrize(
    "policy",
    [EXPIRING, "not json", '{"rules": "none"}'],
    ids=["known-to-moto", "not-json", "rules-not-a-list"],
)
def test_a_policy_without_archive_fields_goes_to_moto_as_it_is(policy: str) -> None:
    assert lifecycle_stand_in(policy) is None
    body = json.dumps({"repositoryName": "app", "lifecyclePolicyText": policy}).encode()
    assert with_lifecycle_stand_in(body) == body


@pytest.mark.parametrize(
    "policy",
    [
        lifecycle(rule(1, NOT_PULLED, {"type": "transition"})),
        lifecycle(rule(1, NOT_PULLED, {"type": "transition", "targetStorageClass": "glacier"})),
        lifecycle(rule(1, {**NOT_PULLED, "storageClass": "glacier"}, ARCHIVE)),
        lifecycle(rule(1, {**NOT_PULLED, "countNumber": 0}, ARCHIVE)),
    ],
    ids=["transition-without-target", "unknown-target", "unknown-storage-class", "mistake-elsewhere"],
)
def test_moto_refuses_the_stand_in_of_a_policy_ecr_refuses(policy: str) -> None:
    stand_in = lifecycle_stand_in(policy)
    assert not moto_accepts(stand_in or policy)


def moto_reply(text: str, repository: str = "app", registry: str = "123456789012") -> dict[str, Any]:
    return {"registryId": registry, "repositoryName": repository, "lifecyclePolicyText": text}


def test_the_gateway_answers_with_the_policy_wherever_moto_holds_its_stand_in() -> None:
    stand_ins: dict[tuple[str, str, str], tuple[str, str]] = {}
    put_request = {"repositoryName": "app", "lifecyclePolicyText": ARCHIVING}
    held = json.loads(with_lifecycle_stand_in(json.dumps(put_request).encode()))["lifecyclePolicyText"]
    assert held != ARCHIVING

    def answer(
        operation: str, moto_text: str, *, policy: str = "", registry: str = "123456789012", region: str = "us-east-1"
    ) -> str:
        """The text the client gets when moto answers `moto_text` (`policy`: the one a Put sent)."""
        reply = {"registryId": registry, "repositoryName": "app", "lifecyclePolicyText": moto_text}
        request = {"repositoryName": "app", "lifecyclePolicyText": policy}
        restore_lifecycle_policy(stand_ins, region, operation, request, reply)
        return reply["lifecyclePolicyText"]

    assert answer("PutLifecyclePolicy", held, policy=ARCHIVING) == ARCHIVING
    assert answer("GetLifecyclePolicy", held) == ARCHIVING
    # The same stand-in in another account's or region's repository stands for nothing there.
    assert answer("GetLifecyclePolicy", held, registry="210987654321") == held
    assert answer("GetLifecyclePolicy", held, region="eu-west-1") == held
    # A policy moto knows replaces it: moto's answers pass as they are.
    assert answer("PutLifecyclePolicy", EXPIRING, policy=EXPIRING) == EXPIRING
    assert stand_ins == {}
    assert answer("GetLifecyclePolicy", EXPIRING) == EXPIRING

    answer("PutLifecyclePolicy", held, policy=ARCHIVING)
    assert answer("DeleteLifecyclePolicy", held) == ARCHIVING
    assert stand_ins == {}
