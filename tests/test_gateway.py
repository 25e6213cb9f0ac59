"""The stack's gateway evaluates trust policies as IAM does for GitHub's tokens (the cases the tests use)."""

from __future__ import annotations

import pytest

from stack.gateway import trust_allows

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
