"""The step outputs: declared in one table, spelled as in action.yml (a test checks that they agree)."""

from __future__ import annotations

import enum


class Output(enum.StrEnum):
    """Every output of action.yml, in its order."""

    REGISTRY = "registry"
    REPOSITORY_URI = "repository-uri"
    IMAGE_URI = "image-uri"
    IMAGE_DIGEST = "image-digest"
    PLATFORM_DIGESTS = "platform-digests"
    TAGS = "tags"
    AWS_ACCOUNT_ID = "aws-account-id"
    SCAN_STATUS = "scan-status"
    SIGNING_STATUS = "signing-status"
    FINDINGS = "findings"
    FINDINGS_TOTAL = "findings-total"
    GATE = "gate"
    SARIF_FILE = "sarif-file"
