"""The accepted forms of text inputs, and how a problem line shows the value it got."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Form:
    """A pattern a text input must match, with the accepted form as a problem line states it."""

    pattern: re.Pattern[str]
    expected: str
    min_length: int = 1
    max_length: int | None = None

    def accepts(self, value: str) -> bool:
        fits = self.min_length <= len(value) <= (self.max_length or len(value))
        return fits and self.pattern.fullmatch(value) is not None


REGION = Form(re.compile(r"[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d"), "an AWS region such as us-east-1")
ROLE_ARN = Form(
    re.compile(r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+", re.ASCII),
    "an IAM role ARN such as arn:aws:iam::123456789012:role/deploy",
    max_length=2048,
)
ACCOUNT_ID = Form(re.compile(r"\d{12}", re.ASCII), "a 12-digit AWS account id")
REPOSITORY_NAME = Form(
    re.compile(r"(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*"),
    "an ECR repository name: 2 to 256 lowercase letters, digits and ._-/ such as team/app",
    min_length=2,
    max_length=256,
)
IMAGE_TAG = Form(
    re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"),
    "image tags of letters, digits and _.- (not starting with . or -), at most 128 characters",
)
# A registry image reference, loosely: the registry says more when it cannot resolve one.
IMAGE_REFERENCE = Form(
    re.compile(r"[a-z0-9][a-z0-9._:/-]*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[0-9a-f]{64})?"),
    "image references such as 123456789012.dkr.ecr.us-east-1.amazonaws.com/app:main",
    max_length=512,
)
TAG_FILTER = Form(
    re.compile(r"[0-9a-zA-Z._*-]{1,128}"),
    "wildcard tag filters of letters, digits and ._-* (`*` matches any characters), at most 128 characters",
)
SESSION_NAME = Form(
    re.compile(r"[\w+=,.@-]+", re.ASCII),
    "2 to 64 characters of letters, digits and _+=,.@-",
    min_length=2,
    max_length=64,
)
_CVE_ID = re.compile(r"CVE-\d{4}-\d{4,}")
_GHSA_ID = re.compile(r"GHSA(?:-[0-9a-z]{4}){3}")
_VENDOR_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]*")
VULNERABILITY_IDS = "vulnerability ids such as CVE-2024-1234, GHSA-xxxx-xxxx-xxxx or a vendor's id"

BOOLEANS = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_SHOWN_CHARACTERS = 60
_SHOWN_ITEMS = 3


def is_vulnerability_id(value: str) -> bool:
    # A CVE or GHSA prefix promises that format: a typo there must not pass as some vendor's id.
    if value[:4].upper() == "CVE-":
        return _CVE_ID.fullmatch(value) is not None
    if value[:5].upper() == "GHSA-":
        return _GHSA_ID.fullmatch(value) is not None
    return _VENDOR_ID.fullmatch(value) is not None


def shown(value: str) -> str:
    """`value` quoted on one line, cut short: problem lines stay one line and readable."""
    flat = value.replace("\r", "").replace("\n", "\\n")
    if len(flat) > _SHOWN_CHARACTERS:
        flat = flat[: _SHOWN_CHARACTERS - 3] + "..."
    return f"'{flat}'"


def shown_items(items: Sequence[str]) -> str:
    listed = ", ".join(shown(item) for item in items[:_SHOWN_ITEMS])
    more = len(items) - _SHOWN_ITEMS
    return listed + (f" and {more} more" if more > 0 else "")
