from __future__ import annotations

import datetime
from pathlib import Path

import pytest

from ecr_action.errors import InputError
from ecr_action.findings import Finding, Severity
from ecr_action.ignores import (
    IGNORE_INPUT_REASON,
    IgnoreEntry,
    load_ignore_file,
    parse_ignore_file,
    resolve_ignores,
)

TODAY = datetime.date(2025, 6, 1)

IGNORE_FILE = """\
# accepted risks, reviewed monthly
- id: CVE-2024-0001
  reason: "not reachable: we never parse untrusted archives"
  expires: 2025-12-31
- id: ghsa-abcd-efgh-ijkl
  reason: dev dependency only
- id: CVE-2023-0002
  reason: waiting for upstream
  expires: "2025-06-01"
"""


def test_parse_ignore_file() -> None:
    assert parse_ignore_file(IGNORE_FILE, source=".ecr-ignore.yml") == [
        IgnoreEntry("CVE-2024-0001", "not reachable: we never parse untrusted archives", datetime.date(2025, 12, 31)),
        IgnoreEntry("ghsa-abcd-efgh-ijkl", "dev dependency only"),
        IgnoreEntry("CVE-2023-0002", "waiting for upstream", datetime.date(2025, 6, 1)),
    ]


@pytest.mark.parametrize("text", ["", "# nothing ignored yet\n", "[]"])
def test_empty_ignore_file(text: str) -> None:
    assert parse_ignore_file(text, source="f.yml") == []


def test_every_problem_is_reported_at_once() -> None:
    text = """\
- id: CVE-1
- reason: no id
- id: CVE-3
  reason: r
  expire: 2025-01-01
- id: CVE-4
  reason: r
  expires: next week
- id: CVE-5
  reason: r
  expires: 2025-01-01T10:00:00
- just a string
- id: CVE-7
  reason: r
- id: cve-7
  reason: again
"""
    with pytest.raises(InputError) as raised:
        parse_ignore_file(text, source="ignores.yml")

    assert raised.value.problems == [
        "input 'ignore-file': ignores.yml, entry 1: `reason` is missing or empty",
        "input 'ignore-file': ignores.yml, entry 2: `id` is missing or empty",
        "input 'ignore-file': ignores.yml, entry 3: unknown key `expire` (allowed: expires, id, reason)",
        "input 'ignore-file': ignores.yml, entry 4: `expires` must be a date written YYYY-MM-DD, not 'next week'",
        "input 'ignore-file': ignores.yml, entry 5: `expires` must be a date written YYYY-MM-DD, "
        "not datetime.datetime(2025, 1, 1, 10, 0)",
        "input 'ignore-file': ignores.yml, entry 6: must be a mapping with `id`, `reason` and optionally `expires`",
        "input 'ignore-file': ignores.yml: cve-7 is listed more than once",
    ]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("- id: [unclosed", "input 'ignore-file': f.yml is not valid YAML"),
        ("id: CVE-1\nreason: r\n", "input 'ignore-file': f.yml must be a YAML list of entries"),
    ],
)
def test_ignore_file_that_is_not_a_list(text: str, problem: str) -> None:
    with pytest.raises(InputError) as raised:
        parse_ignore_file(text, source="f.yml")

    assert raised.value.problems[0].startswith(problem)


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        pytest.param("expires: 2099-02-30", "`expires` must be a real date, not '2099-02-30'", id="no-such-day"),
        pytest.param('expires: "2025-13-01"', "`expires` must be a real date, not '2025-13-01'", id="quoted"),
        pytest.param(
            "expires: null",
            "`expires` is empty: remove the key to ignore without expiry, or give a date written YYYY-MM-DD",
            id="null",
        ),
        pytest.param(
            "expires:",
            "`expires` is empty: remove the key to ignore without expiry, or give a date written YYYY-MM-DD",
            id="empty",
        ),
        pytest.param(
            "id: CVE-2",
            "`id` is given more than once (YAML would keep only the last): one id per entry, "
            "so write another entry for CVE-2",
            id="two-ids",
        ),
        pytest.param(
            "reason: again",
            "`reason` is given more than once (YAML would keep only the last): give it once",
            id="two-reasons",
        ),
    ],
)
def test_entries_yaml_would_misread_are_problems(entry: str, problem: str) -> None:
    text = f"- id: CVE-0\n  reason: fine\n- id: CVE-1\n  reason: r\n  {entry}\n"

    with pytest.raises(InputError) as raised:
        parse_ignore_file(text, source="ignores.yml")

    assert raised.value.problems == [f"input 'ignore-file': ignores.yml, entry 2: {problem}"]


def test_keys_merged_from_an_anchor_may_be_overridden() -> None:
    text = "- &base {id: CVE-1, reason: shared}\n- <<: *base\n  id: CVE-2\n"

    assert [entry.vulnerability_id for entry in parse_ignore_file(text, source="f.yml")] == ["CVE-1", "CVE-2"]


def test_an_ignore_file_that_is_not_utf8_is_one_problem(tmp_path: Path) -> None:
    path = tmp_path / "ignores.yml"
    path.write_bytes("- id: CVE-1\n  reason: café\n".encode("latin-1"))

    with pytest.raises(InputError) as raised:
        load_ignore_file(path)

    assert raised.value.problems == [
        f"input 'ignore-file': {path} is not UTF-8 text (line 2 has a byte UTF-8 does not allow): save it as UTF-8"
    ]


def test_load_ignore_file(tmp_path: Path) -> None:
    path = tmp_path / "ignores.yml"
    path.write_text(IGNORE_FILE, encoding="utf-8")

    assert len(load_ignore_file(path)) == 3
    with pytest.raises(InputError, match="input 'ignore-file': cannot read"):
        load_ignore_file(tmp_path / "missing.yml")


def finding(vulnerability_id: str) -> Finding:
    return Finding(vulnerability_id, Severity.HIGH, package="pkg")


def test_expired_entries_stop_ignoring_and_warn() -> None:
    ignores = resolve_ignores(["CVE-2099-0009"], parse_ignore_file(IGNORE_FILE, source="f.yml"), today=TODAY)

    assert ignores.reason_for(finding("CVE-2024-0001")) == "not reachable: we never parse untrusted archives"
    assert ignores.reason_for(finding("GHSA-ABCD-EFGH-IJKL")) == "dev dependency only"
    assert ignores.reason_for(finding("CVE-2099-0009")) == IGNORE_INPUT_REASON
    # An entry stops ignoring on its expires date.
    assert ignores.reason_for(finding("CVE-2023-0002")) is None
    assert ignores.warnings(".ecr-ignore.yml") == [
        "The ignore of CVE-2023-0002 in .ecr-ignore.yml expired on 2025-06-01 (reason given: waiting for "
        "upstream); it counts again. Fix it, or set a later `expires` if the risk is still accepted."
    ]


def test_the_day_before_expiry_still_ignores() -> None:
    entry = IgnoreEntry("CVE-1", "r", expires=TODAY + datetime.timedelta(days=1))

    ignores = resolve_ignores([], [entry], today=TODAY)

    assert ignores.reason_for(finding("CVE-1")) == "r"
    assert ignores.warnings() == []


def test_input_ids_do_not_expire_with_a_file_entry() -> None:
    expired = IgnoreEntry("CVE-1", "r", expires=TODAY)

    ignores = resolve_ignores(["CVE-1"], [expired], today=TODAY)

    assert ignores.reason_for(finding("CVE-1")) == IGNORE_INPUT_REASON
    assert ignores.expired == (expired,)
