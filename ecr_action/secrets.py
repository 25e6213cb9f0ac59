"""Keeping values that may be secret out of what the action prints.

The runner masks what `::add-mask::` registered, but only in the form registered: a value that reaches
a message URL-encoded or JSON-escaped (a request URL, an engine's JSON error) is not caught. `scrub`
removes each value in every form the engine or an HTTP library may have written it in.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterable

REDACTED = "***"
# Shorter values (a build-arg of "1") would blank out ordinary text and hide nothing worth hiding.
MIN_SECRET_LENGTH = 3


def forms(value: str) -> set[str]:
    """`value` as written raw, URL-encoded (both ways) and JSON-escaped."""
    return {
        value,
        urllib.parse.quote(value, safe=""),
        urllib.parse.quote_plus(value, safe=""),
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
    }


def scrub(text: str, secrets: Iterable[str]) -> str:
    """`text` with every form of every secret replaced by `***`, longest first."""
    found = {form for secret in secrets if len(secret) >= MIN_SECRET_LENGTH for form in forms(secret)}
    for form in sorted(found, key=len, reverse=True):
        text = text.replace(form, REDACTED)
    return text
