from __future__ import annotations

import json
from dataclasses import replace

import pytest

from ecr_action.push import PushResult
from ecr_action.results import push_outputs

REPOSITORY_URI = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/app"
INDEX_DIGEST, AMD64_DIGEST, ARM64_DIGEST = ("sha256:" + digit * 64 for digit in "123")
PUSHED = PushResult(INDEX_DIGEST, ("v1",), uploaded=True, added_tags=("v1",), unchanged_tags=())


def test_push_outputs() -> None:
    assert push_outputs(REPOSITORY_URI, PUSHED, "123456789012") == {
        "registry": "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
        "repository-uri": REPOSITORY_URI,
        "image-uri": f"{REPOSITORY_URI}@{INDEX_DIGEST}",
        "image-digest": INDEX_DIGEST,
        "platform-digests": "{}",
        "tags": '["v1"]',
        "aws-account-id": "123456789012",
    }


@pytest.mark.parametrize(
    ("platform_digests", "output"),
    [
        ({}, "{}"),
        (
            {"linux/amd64": AMD64_DIGEST, "linux/arm64": ARM64_DIGEST},
            f'{{"linux/amd64":"{AMD64_DIGEST}","linux/arm64":"{ARM64_DIGEST}"}}',
        ),
    ],
)
def test_platform_digests_is_a_json_object_by_platform(platform_digests: dict, output: str) -> None:
    outputs = push_outputs(REPOSITORY_URI, replace(PUSHED, platforms=platform_digests), "123456789012")

    assert outputs["platform-digests"] == output
    assert json.loads(output) == platform_digests
