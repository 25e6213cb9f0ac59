from __future__ import annotations

import json

from ecr_action.results import platform_digests_output

AMD64_DIGEST, ARM64_DIGEST = "sha256:" + "2" * 64, "sha256:" + "3" * 64


def test_platform_digests_output_is_a_json_object_by_platform() -> None:
    value = platform_digests_output({"linux/amd64": AMD64_DIGEST, "linux/arm64": ARM64_DIGEST})

    assert value == {"platform-digests": f'{{"linux/amd64":"{AMD64_DIGEST}","linux/arm64":"{ARM64_DIGEST}"}}'}
    assert json.loads(value["platform-digests"]) == {"linux/amd64": AMD64_DIGEST, "linux/arm64": ARM64_DIGEST}


def test_platform_digests_of_a_single_platform_image_is_an_empty_object() -> None:
    assert platform_digests_output({}) == {"platform-digests": "{}"}
