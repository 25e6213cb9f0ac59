"""Which `cache-from` references are ECR images, and of which registry (no AWS needed)."""

from __future__ import annotations

import pytest

from ecr_action.cache import EcrImage, cache_accounts, ecr_image

HOST = "210987654321.dkr.ecr.us-east-1.amazonaws.com"
DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        (f"{HOST}/team/app:main", EcrImage("210987654321", "us-east-1", "team/app", {"imageTag": "main"})),
        (f"{HOST}/app", EcrImage("210987654321", "us-east-1", "app", {"imageTag": "latest"})),
        (f"{HOST}/app:v1@{DIGEST}", EcrImage("210987654321", "us-east-1", "app", {"imageDigest": DIGEST})),
        ("ghcr.io/octo/app:cache", None),
        ("public.ecr.aws/docker/library/alpine:3", None),
    ],
)
def test_ecr_image(reference: str, expected: EcrImage | None) -> None:
    assert ecr_image(reference) == expected


def test_cache_accounts_are_those_of_the_region_once_each() -> None:
    references = [f"{HOST}/a:1", f"{HOST}/b:1", "123456789012.dkr.ecr.eu-west-1.amazonaws.com/c:1", "ghcr.io/x:1"]
    assert cache_accounts(references, "us-east-1") == ("210987654321",)
