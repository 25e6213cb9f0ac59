from __future__ import annotations

import datetime

import pytest

from ecr_action.findings import Finding, Severity
from ecr_action.gate import evaluate
from ecr_action.ignores import IgnoreEntry, resolve_ignores

TODAY = datetime.date(2025, 6, 1)

# One finding per severity; the letter is how the table below names it.
FINDINGS = {
    "C": Finding("CVE-1", Severity.CRITICAL, package="openssl", installed_version="3.0.1", fixed_version="3.0.2"),
    "H": Finding("CVE-2", Severity.HIGH, package="bash", installed_version="5.1"),
    "M": Finding("CVE-3", Severity.MEDIUM, package="curl", installed_version="8.0", fixed_version="8.1"),
    "L": Finding("CVE-4", Severity.LOW, package="tar", installed_version="1.34"),
    "I": Finding("CVE-5", Severity.INFORMATIONAL, package="zlib", installed_version="1.2", fixed_version="1.3"),
    "U": Finding("CVE-6", Severity.UNTRIAGED, package="perl", installed_version="5.36", fixed_version="5.38"),
}

SCENARIOS = {
    "plain": {},
    "ignored": {"ignores": resolve_ignores([], [IgnoreEntry("CVE-1", "accepted")], today=TODAY)},
    "expired ignore": {"ignores": resolve_ignores([], [IgnoreEntry("CVE-1", "accepted", expires=TODAY)], today=TODAY)},
    "fixable only": {"fixable_only": True},
    # Same vulnerability and package in the baseline image, at another version: not new.
    "baseline": {"baseline": [Finding("CVE-2", Severity.HIGH, package="bash", installed_version="5.0")]},
}

# Findings that fail the gate, per threshold (rows) and scenario (columns, in SCENARIOS order).
# UNTRIAGED ranks below INFORMATIONAL, so no threshold counts it.
MATRIX = {
    None: ("", "", "", "", ""),
    Severity.INFORMATIONAL: ("CHMLI", "HMLI", "CHMLI", "CMI", "CMLI"),
    Severity.LOW: ("CHML", "HML", "CHML", "CM", "CML"),
    Severity.MEDIUM: ("CHM", "HM", "CHM", "CM", "CM"),
    Severity.HIGH: ("CH", "H", "CH", "C", "C"),
    Severity.CRITICAL: ("C", "", "C", "C", "C"),
}


@pytest.mark.parametrize(
    ("fail_on", "scenario", "failing"),
    [
        (fail_on, scenario, failing)
        for fail_on, row in MATRIX.items()
        for scenario, failing in zip(SCENARIOS, row, strict=True)
    ],
)
def test_gate_matrix(fail_on: Severity | None, scenario: str, failing: str) -> None:
    verdict = evaluate(FINDINGS.values(), fail_on=fail_on, baseline_tag="main", **SCENARIOS[scenario])

    assert verdict.counted == tuple(FINDINGS[letter] for letter in failing)
    assert verdict.passed == (not failing)
    assert all(verdict.fails(FINDINGS[letter]) == (letter in failing) for letter in FINDINGS)
    ignored = scenario == "ignored"
    assert [item.finding for item in verdict.ignored] == ([FINDINGS["C"]] if ignored else [])
    assert verdict.counts[Severity.CRITICAL] == (0 if ignored else 1)
    assert verdict.total == (5 if ignored else 6)


def test_reason_names_the_numbers() -> None:
    new = [
        Finding("CVE-10", Severity.CRITICAL, package="a"),
        Finding("CVE-11", Severity.HIGH, package="b"),
        Finding("CVE-12", Severity.HIGH, package="c"),
    ]
    old = [Finding(f"CVE-2{number}", Severity.HIGH, package="d") for number in range(4)]
    ignored = [Finding("CVE-30", Severity.CRITICAL, package=package) for package in ("e", "f")]

    verdict = evaluate(
        [*new, *old, *ignored, Finding("CVE-40", Severity.LOW, package="g")],
        fail_on=Severity.HIGH,
        ignores=resolve_ignores(["CVE-30"], [], today=TODAY),
        baseline=old,
        baseline_tag="main",
    )

    assert not verdict.passed
    assert verdict.reason == (
        "3 findings at or above HIGH (1 CRITICAL, 2 HIGH) after 2 ignored and 4 already in baseline 'main'"
    )
    assert verdict.baseline_suppressed == 4
    # Counts are after ignores only: the baseline decides the gate, not what the image contains.
    assert dict(verdict.counts) == {
        Severity.CRITICAL: 1,
        Severity.HIGH: 6,
        Severity.MEDIUM: 0,
        Severity.LOW: 1,
        Severity.INFORMATIONAL: 0,
        Severity.UNTRIAGED: 0,
    }


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        ({"fail_on": Severity.CRITICAL}, "1 finding at or above CRITICAL (1 CRITICAL)"),
        ({"fail_on": Severity.LOW}, "2 findings at or above LOW (1 CRITICAL, 1 HIGH)"),
        (
            {"fail_on": Severity.HIGH, "fixable_only": True},
            "1 fixable finding at or above HIGH (1 CRITICAL) after 1 without a fix",
        ),
        (
            {"fail_on": Severity.HIGH, "baseline": list(FINDINGS.values())[:2]},
            "no findings at or above HIGH after 2 already in baseline 'release'",
        ),
        (
            {"fail_on": Severity.CRITICAL, "fixable_only": True, "baseline": [FINDINGS["C"]]},
            "no fixable findings at or above CRITICAL after 1 already in baseline 'release'",
        ),
        ({"fail_on": None}, "gate off (fail-on: none); 2 findings"),
    ],
)
def test_reasons(options: dict, reason: str) -> None:
    verdict = evaluate([FINDINGS["C"], FINDINGS["H"]], baseline_tag="release", **options)

    assert verdict.reason == reason


def test_baseline_matches_vulnerability_and_package_only() -> None:
    current = Finding("CVE-1", Severity.CRITICAL, package="openssl", installed_version="3.0.9")
    elsewhere = Finding("CVE-1", Severity.CRITICAL, package="libssl3", installed_version="3.0.9")

    verdict = evaluate([current, elsewhere], fail_on=Severity.CRITICAL, baseline=[FINDINGS["C"]], baseline_tag="main")

    assert verdict.counted == (elsewhere,)
    assert verdict.reason == "1 finding at or above CRITICAL (1 CRITICAL) after 1 already in baseline 'main'"


def test_an_empty_baseline_makes_every_finding_new() -> None:
    verdict = evaluate([FINDINGS["C"]], fail_on=Severity.CRITICAL, baseline=[], baseline_tag="main")

    assert verdict.counted == (FINDINGS["C"],)


def test_no_findings_passes() -> None:
    verdict = evaluate([], fail_on=Severity.INFORMATIONAL)

    assert (verdict.passed, verdict.total, verdict.reason) == (True, 0, "no findings at or above INFORMATIONAL")
