"""The closed sets of values some inputs take, as the rest of the action uses them.

Imports nothing from `ecr_action.inputs`, so stages (push, scan, repository) can use the enums without
importing the input parser.
"""

from __future__ import annotations

import enum

from ecr_action.findings import Severity


class ImageTagMutability(enum.StrEnum):
    MUTABLE = "MUTABLE"
    IMMUTABLE = "IMMUTABLE"
    # The base mode, except for the tags that match the exclusion filters, which behave the other way.
    MUTABLE_WITH_EXCLUSION = "MUTABLE_WITH_EXCLUSION"
    IMMUTABLE_WITH_EXCLUSION = "IMMUTABLE_WITH_EXCLUSION"

    @property
    def has_exclusions(self) -> bool:
        return self.endswith("_WITH_EXCLUSION")


class EncryptionType(enum.StrEnum):
    AES256 = "AES256"
    KMS = "KMS"
    KMS_DSSE = "KMS_DSSE"  # dual-layer encryption with a KMS key

    @property
    def uses_kms(self) -> bool:
        return self is not EncryptionType.AES256


class IfTagExists(enum.StrEnum):
    FAIL = "fail"
    SKIP_SAME_DIGEST = "skip-same-digest"
    OVERWRITE = "overwrite"


class ScanMode(enum.StrEnum):
    ON_PUSH = "on-push"
    MANUAL = "manual"
    SKIP = "skip"


class ScanUnavailable(enum.StrEnum):
    """What the gate does when ECR cannot give findings for the image (e.g. UNSUPPORTED_IMAGE)."""

    FAIL = "fail"
    WARN = "warn"


class FailOn(enum.StrEnum):
    NONE = "none"
    INFORMATIONAL = "informational"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def severity(self) -> Severity | None:
        """The lowest severity that fails the gate; None when nothing does."""
        return None if self is FailOn.NONE else Severity[self.name]


class Builder(enum.StrEnum):
    AUTO = "auto"  # BuildKit where the engine has it, else the classic builder
    BUILDKIT = "buildkit"
    CLASSIC = "classic"


class BuildNetwork(enum.StrEnum):
    """The network of the build's RUN steps (the engine's `networkmode`)."""

    DEFAULT = "default"
    HOST = "host"
    NONE = "none"


class CacheTo(enum.StrEnum):
    INLINE = "inline"  # cache metadata in the pushed image itself (BUILDKIT_INLINE_CACHE)
    NONE = "none"
