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


class EncryptionType(enum.StrEnum):
    AES256 = "AES256"
    KMS = "KMS"


class IfTagExists(enum.StrEnum):
    FAIL = "fail"
    SKIP_SAME_DIGEST = "skip-same-digest"
    OVERWRITE = "overwrite"


class ScanMode(enum.StrEnum):
    ON_PUSH = "on-push"
    MANUAL = "manual"
    SKIP = "skip"


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
