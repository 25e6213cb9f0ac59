"""The build's inputs that need more than one line of reading: platforms and build secrets.

Secret values are read here, once (`secret-files` from the workspace, `secret-envs` from the
environment), and never appear in a problem line: problems name the line and the id only.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Protocol

from ecr_action.inputs.forms import Form, shown

# What BuildKit builds Linux images for; an arch outside this list is a typo, not a platform.
PLATFORMS = frozenset(
    {
        "linux/amd64", "linux/amd64/v2", "linux/amd64/v3", "linux/amd64/v4",
        "linux/arm64", "linux/arm64/v8", "linux/arm/v6", "linux/arm/v7",
        "linux/386", "linux/ppc64le", "linux/s390x", "linux/riscv64", "linux/mips64le",
    }
)  # fmt: skip
PLATFORM_EXPECTED = "platforms such as linux/amd64, linux/arm64 or linux/arm/v7"
DIGEST = Form(re.compile(r"sha256:[0-9a-f]{64}"), "image digests such as sha256:<64 hex digits>")
# BuildKit's secret ids: what `RUN --mount=type=secret,id=…` can name.
_SECRET_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class Reader(Protocol):
    def text(self, name: str) -> str | None: ...
    def report(self, name: str, message: str) -> None: ...
    def path(self, name: str, value: str) -> Path | None: ...


def platforms(reader: Reader, name: str = "platforms") -> tuple[str, ...] | None:
    """`os/arch[/variant]` values, in the order given, duplicates dropped; None (reported) if any is unknown."""
    value = reader.text(name) or ""
    items = tuple(dict.fromkeys(item.strip().lower() for item in re.split(r"[,\n]", value) if item.strip()))
    unknown = [item for item in items if item not in PLATFORMS]
    if unknown:
        reader.report(name, f"got {', '.join(shown(item) for item in unknown)}; expected {PLATFORM_EXPECTED}")
        return None
    return items


def secrets(reader: Reader, environ: Mapping[str, str]) -> tuple[tuple[str, bytes], ...] | None:
    """Every build secret from `secrets`, `secret-files` and `secret-envs`, by id; None when any is bad."""
    found: dict[str, bytes] = {}
    ok = True
    for name, value_of in (
        ("secrets", lambda value, _: value.encode()),
        ("secret-files", lambda value, report: _file_value(reader, value, report)),
        ("secret-envs", lambda value, report: _env_value(environ, value, report)),
    ):
        faults: list[str] = []
        for number, line in enumerate((reader.text(name) or "").splitlines(), start=1):
            if not line.strip():
                continue
            secret_id, equals, value = line.partition("=")
            secret_id = secret_id.strip()
            if not equals or not _SECRET_ID.fullmatch(secret_id):
                faults.append(f"line {number} is not id=… with an id of letters, digits and ._-")
            elif secret_id in found:
                faults.append(f"line {number} repeats the secret id {shown(secret_id)}")
            else:
                # A secret's value is kept exactly (a trailing newline may matter), except in `secrets`,
                # where the line's own end cannot be part of it.
                content = value_of(value if name == "secrets" else value.strip(), faults.append)
                if content is not None:
                    found[secret_id] = content
        if faults:
            reader.report(name, "; ".join(faults))
            ok = False
    return tuple(found.items()) if ok else None


def _file_value(reader: Reader, value: str, report: Callable[[str], None]) -> bytes | None:
    path = reader.path("secret-files", value)
    if path is None:
        return None
    try:
        return path.read_bytes()
    except OSError as error:
        report(f"cannot read {shown(value)} ({error.strerror})")
        return None


def _env_value(environ: Mapping[str, str], value: str, report: Callable[[str], None]) -> bytes | None:
    if not _ENV_NAME.fullmatch(value):
        report(f"{shown(value)} is not an environment variable name")
        return None
    if value not in environ:
        report(f"the environment variable {value} is not set: set it in the step's `env:`")
        return None
    return environ[value].encode()
