"""Keeping values that may be secret out of what the action prints.

The runner masks what `::add-mask::` registered, but only in the form registered: a value that reaches
a message URL-encoded or JSON-escaped (a request URL, an engine's JSON error) is not caught. `scrub`
removes each value in every form the engine or an HTTP library may have written it in.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass, field

REDACTED = "***"
# Shorter values (a build-arg of "1") would blank out ordinary text and hide nothing worth hiding.
MIN_SECRET_LENGTH = 3


@dataclass(frozen=True, slots=True)
class RegistryCredentials:
    """A registry's login (from ECR's GetAuthorizationToken), for the build's base images and the push."""

    registry: str  # host, e.g. 123456789012.dkr.ecr.us-east-1.amazonaws.com
    username: str
    password: str = field(repr=False)

    def for_engine(self) -> dict[str, str]:
        return {"username": self.username, "password": self.password, "serveraddress": self.registry}


def forms(value: str) -> set[str]:
    """`value` raw and JSON-escaped (as the engine quotes it), each also URL-encoded both ways (as a
    request URL carries it: the `buildargs` query parameter is URL-encoded JSON)."""
    escaped = {value, json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]}
    return {
        encoded
        for form in escaped
        for encoded in (form, urllib.parse.quote(form, safe=""), urllib.parse.quote_plus(form, safe=""))
    }


def scrub(text: str, secrets: Iterable[str]) -> str:
    """`text` with every form of every secret replaced by `***`, longest first."""
    found = {form for secret in secrets if len(secret) >= MIN_SECRET_LENGTH for form in forms(secret)}
    for form in sorted(found, key=len, reverse=True):
        text = text.replace(form, REDACTED)
    return text
