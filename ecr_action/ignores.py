"""Vulnerabilities the user has chosen to accept: the `ignore` input and the `ignore-file`.

An ignore-file is a YAML list of `{id, reason, expires?}`. An entry stops ignoring on its `expires`
date, so an accepted risk is looked at again instead of being forgotten; it then yields a warning.
"""

from __future__ import annotations

import datetime
import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ecr_action.errors import InputError
from ecr_action.findings import Finding

IGNORE_INPUT_REASON = "listed in the `ignore` input"
_ENTRY_KEYS = frozenset({"id", "reason", "expires"})
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True, slots=True)
class IgnoreEntry:
    vulnerability_id: str
    reason: str
    expires: datetime.date | None = None


@dataclass(frozen=True, slots=True)
class Ignores:
    """The ignores in force today, by vulnerability id, and the entries that have expired."""

    reasons: Mapping[str, str] = field(default_factory=dict)  # casefolded id -> reason
    expired: tuple[IgnoreEntry, ...] = ()

    def reason_for(self, finding: Finding) -> str | None:
        """Why `finding` is ignored, or None when it counts."""
        return self.reasons.get(finding.vulnerability_id.casefold())

    def warnings(self, ignore_file: str = "the ignore-file") -> list[str]:
        """One text per expired entry, for a `::warning::` each."""
        return [
            f"The ignore of {entry.vulnerability_id} in {ignore_file} expired on {entry.expires} "
            f"(reason given: {entry.reason}); it counts again. Fix it, or set a later `expires` "
            "if the risk is still accepted."
            for entry in self.expired
        ]


def parse_ignore_file(text: str, *, source: str) -> list[IgnoreEntry]:
    """The entries of an ignore-file's text; every problem is reported at once, naming `source`."""
    import yaml  # only for an ignore file: kept out of every run's start-up (~15 ms)

    try:
        document = yaml.load(text, Loader=_loader())  # a SafeLoader
    except yaml.YAMLError as exc:
        raise InputError([f"input 'ignore-file': {source} is not valid YAML: {' '.join(str(exc).split())}"]) from None
    if document is None:
        return []
    if not isinstance(document, list):
        raise InputError(
            [
                f"input 'ignore-file': {source} must be a YAML list of entries like `- id: CVE-2024-1234`, "
                f"`reason: ...`, `expires: 2025-12-31`; found a {type(document).__name__}"
            ]
        )
    entries: list[IgnoreEntry] = []
    problems: list[str] = []
    for number, item in enumerate(document, start=1):
        entry, entry_problems = _parse_entry(item)
        problems.extend(f"input 'ignore-file': {source}, entry {number}: {problem}" for problem in entry_problems)
        if entry is not None:
            entries.append(entry)
    seen: set[str] = set()
    for entry in entries:
        key = entry.vulnerability_id.casefold()
        if key in seen:
            problems.append(f"input 'ignore-file': {source}: {entry.vulnerability_id} is listed more than once")
        seen.add(key)
    if problems:
        raise InputError(problems)
    return entries


def _parse_entry(item: object) -> tuple[IgnoreEntry | None, list[str]]:
    if not isinstance(item, dict):
        return None, ["must be a mapping with `id`, `reason` and optionally `expires`"]
    problems = [f"unknown key `{key}` (allowed: expires, id, reason)" for key in item if key not in _ENTRY_KEYS]
    problems += [_duplicate_problem(key, item) for key in getattr(item, "duplicate_keys", ())]
    text = {key: str(item.get(key) or "").strip() for key in ("id", "reason")}
    problems += [f"`{key}` is missing or empty" for key, value in text.items() if not value]
    expires, problem = _expires(item)
    if problem:
        problems.append(problem)
    if problems:
        return None, problems
    return IgnoreEntry(text["id"], text["reason"], expires), []


def _duplicate_problem(key: object, item: dict) -> str:
    said = f"`{key}` is given more than once (YAML would keep only the last)"
    if key == "id":
        return f"{said}: one id per entry, so write another entry for {item['id']}"
    return f"{said}: give it once"


def _expires(item: dict) -> tuple[datetime.date | None, str]:
    """The entry's expiry date, or a problem. YAML reads an unquoted 2025-12-31 as a date; a quoted one
    arrives as text and is accepted too."""
    if "expires" not in item:
        return None, ""
    value = item["expires"]
    if value is None:
        # `expires:` or `expires: null` would otherwise ignore forever, which the key was written to prevent.
        return None, "`expires` is empty: remove the key to ignore without expiry, or give a date written YYYY-MM-DD"
    if isinstance(value, datetime.date) and not isinstance(value, datetime.datetime):
        return value, ""
    if isinstance(value, str) and _ISO_DATE.fullmatch(value.strip()):
        try:
            return datetime.date.fromisoformat(value.strip()), ""
        except ValueError:
            return None, f"`expires` must be a real date, not {value!r}"
    return None, f"`expires` must be a date written YYYY-MM-DD, not {value!r}"


class _Mapping(dict):
    """A YAML mapping that remembers the keys it was given more than once."""

    duplicate_keys: tuple[Any, ...] = ()


@functools.cache
def _loader() -> type:
    """PyYAML's SafeLoader, except that a mapping notes its repeated keys (PyYAML keeps the last one
    silently, so `id` twice would ignore one of the two ids unseen) and an impossible date such as
    2099-02-30 stays text to be reported with its entry (PyYAML raises a bare ValueError)."""
    import yaml

    class Loader(yaml.SafeLoader):
        def construct_yaml_map(self, node: yaml.MappingNode) -> Any:
            data = _Mapping()
            yield data
            seen: list[Any] = []
            repeated: list[Any] = []
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue  # keys merged from an anchor (`<<: *base`) may be overridden: that is the point
                key = self.construct_object(key_node)
                if key in seen and key not in repeated:
                    repeated.append(key)
                seen.append(key)
            data.update(self.construct_mapping(node))
            data.duplicate_keys = tuple(repeated)

        def construct_yaml_timestamp(self, node: yaml.ScalarNode) -> Any:
            try:
                return super().construct_yaml_timestamp(node)
            except ValueError:
                return self.construct_scalar(node)

    Loader.add_constructor("tag:yaml.org,2002:map", Loader.construct_yaml_map)
    Loader.add_constructor("tag:yaml.org,2002:timestamp", Loader.construct_yaml_timestamp)
    return Loader


def load_ignore_file(path: Path) -> list[IgnoreEntry]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError([f"input 'ignore-file': cannot read {path}: {exc.strerror}"]) from None
    except UnicodeDecodeError as exc:
        line = exc.object[: exc.start].count(b"\n") + 1
        problem = f"{path} is not UTF-8 text (line {line} has a byte UTF-8 does not allow): save it as UTF-8"
        raise InputError([f"input 'ignore-file': {problem}"]) from None
    return parse_ignore_file(text, source=str(path))


def resolve_ignores(ids: Iterable[str], entries: Iterable[IgnoreEntry], *, today: datetime.date) -> Ignores:
    """The ignores in force on `today`: ids from the `ignore` input never expire; file entries may."""
    reasons = {vulnerability_id.casefold(): IGNORE_INPUT_REASON for vulnerability_id in ids}
    expired: list[IgnoreEntry] = []
    for entry in entries:
        if entry.expires is not None and today >= entry.expires:
            expired.append(entry)
        else:
            # The file's reason says more than the input's generic one.
            reasons[entry.vulnerability_id.casefold()] = entry.reason
    return Ignores(reasons=reasons, expired=tuple(expired))
