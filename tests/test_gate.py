from __future__ import annotations

import datetime

import pytest

from ecr_action.findings import Finding, ScanKind, Severity
from ecr_action.gate import evaluate, gate_rank
from ecr_action.ignores import IgnoreEntry, resolve_ignores

TODAY = datetime.date(2025, 6, 1)


def enhanced(vulnerability_id: str, severity: Severity, **details: str) -> Finding:
    """A finding of enhanced scanning, the only kind with fix data."""
    return Finding(vulnerability_id, severity, kind=ScanKind.ENHANCED, **details)


# One finding per severity; the letter is how the table below names it.
FINDINGS = {
    "C": enhanced("CVE-1", Severity.CRITICAL, package="openssl", installed_version="3.0.1", fixed_version="3.0.2"),
    "H": enhanced("CVE-2", Severity.HIGH, package="bash", installed_version="5.1"),
    "M": enhanced("CVE-3", Severity.MEDIUM, package="curl", installed_version="8.0", fixed_version="8.1"),
    "L": enhanced("CVE-4", Severity.LOW, package="tar", installed_version="1.34"),
    "I": enhanced("CVE-5", Severity.INFORMATIONAL, package="zlib", installed_version="1.2", fixed_version="1.3"),
    "U": enhanced("CVE-6", Severity.UNTRIAGED, package="perl", installed_version="5.36", fixed_version="5.38"),
}

SCENARIOS = {
    "plain": {},
    "ignored": {"ignores": resolve_ignores([], [IgnoreEntry("CVE-1", "accepted")], today=TODAY)},
    "expired ignore": {"ignores": resolve_ignores([], [IgnoreEntry("CVE-1", "accepted", expires=TODAY)], today=TODAY)},
    "fixable only": {"fixable_only": True},
    # Same vulnerability and package in the baseline image, at another version: not new.
    "baseline": {"baseline": [enhanced("CVE-2", Severity.HIGH, package="bash", installed_version="5.0")]},
}

# Findings that fail the gate, per threshold (rows) and scenario (columns, in SCENARIOS order).
# UNTRIAGED counts as MEDIUM for the gate (fail closed), and is listed last, as in every table.
MATRIX = {
    None: ("", "", "", "", ""),
    Severity.INFORMATIONAL: ("CHMLIU", "HMLIU", "CHMLIU", "CMIU", "CMLIU"),
    Severity.LOW: ("CHMLU", "HMLU", "CHMLU", "CMU", "CMLU"),
    Severity.MEDIUM: ("CHMU", "HMU", "CHMU", "CMU", "CMU"),
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


# Severities that cannot be left out of the gate.


def test_untriaged_ranks_as_medium_for_the_gate_only() -> None:
    assert [gate_rank(severity) for severity in Severity] == [
        Severity.MEDIUM,  # UNTRIAGED: nobody rated it, so it is not assumed harmless
        Severity.INFORMATIONAL,
        Severity.LOW,
        Severity.MEDIUM,
        Severity.HIGH,
        Severity.CRITICAL,
    ]
    # Tables keep ECR's order: UNTRIAGED last.
    assert list(evaluate([], fail_on=None).counts)[-1] is Severity.UNTRIAGED


@pytest.mark.parametrize(
    ("fail_on", "reason"),
    [
        (Severity.INFORMATIONAL, "1 finding at or above INFORMATIONAL (1 UNTRIAGED counted as MEDIUM)"),
        (Severity.MEDIUM, "1 finding at or above MEDIUM (1 UNTRIAGED counted as MEDIUM)"),
        (Severity.HIGH, "no findings at or above HIGH"),
    ],
)
def test_an_untriaged_finding_fails_the_gate_as_a_medium_one(fail_on: Severity, reason: str) -> None:
    # ECR's `UNDEFINED`, and any severity it may add, arrive as UNTRIAGED.
    untriaged = Finding("CVE-2024-9", Severity.parse("UNDEFINED"), package="perl")

    verdict = evaluate([untriaged], fail_on=fail_on)

    assert verdict.reason == reason
    assert verdict.passed == (fail_on == Severity.HIGH)


BASIC_WARNING = (
    "ECR's basic scanning gives no fix data, so `fail-on-fixable-only` cannot apply: every finding counts as "
    "fixable. Turn on enhanced scanning (Amazon Inspector) for the registry to get fix data, or set "
    "`fail-on-fixable-only: false`."
)


def test_fixable_only_on_basic_scanning_fails_closed_with_a_warning() -> None:
    basic = Finding("CVE-1", Severity.CRITICAL, package="openssl", installed_version="3.0.1", kind=ScanKind.BASIC)

    verdict = evaluate([basic], fail_on=Severity.CRITICAL, fixable_only=True)

    assert not verdict.passed
    assert verdict.counted == (basic,)
    assert verdict.reason == "1 finding at or above CRITICAL (1 CRITICAL)"
    assert verdict.warnings == (BASIC_WARNING,)


def test_fixable_only_on_enhanced_scanning_has_no_warning() -> None:
    verdict = evaluate([FINDINGS["H"]], fail_on=Severity.HIGH, fixable_only=True)

    assert verdict.passed
    assert verdict.warnings == ()


# ECR's own counts (`findingSeverityCounts`) against the findings read.


def count_warning(declared: str, read: int) -> str:
    return (
        f"ECR's scan summary (findingSeverityCounts) reports {declared}, but only {read} of them were in the "
        "findings ECR returned, so the gate fails rather than pass on findings it could not read. Run the job "
        "again; if this persists, compare with the findings in the ECR console."
    )


TWO_PACKAGES = [enhanced("CVE-1", Severity.CRITICAL, package="a"), enhanced("CVE-1", Severity.CRITICAL, package="b")]


@pytest.mark.parametrize(
    ("findings", "declared", "fail_on", "passed", "reason", "warnings"),
    [
        pytest.param(
            [],
            {Severity.CRITICAL: 5},
            Severity.HIGH,
            False,
            "no findings at or above HIGH; ECR reported 5 CRITICAL findings but only 0 could be read",
            [count_warning("5 CRITICAL findings", 0)],
            id="counts-without-findings",
        ),
        pytest.param(
            [FINDINGS["H"]],
            {Severity.HIGH: 1, Severity.CRITICAL: 2, Severity.LOW: 9},
            Severity.HIGH,
            False,
            "1 finding at or above HIGH (1 HIGH); ECR reported 2 CRITICAL findings but only 0 could be read",
            [count_warning("2 CRITICAL findings", 0)],
            id="below-fail-on-not-compared",
        ),
        pytest.param(
            [],
            {Severity.UNTRIAGED: 1, Severity.HIGH: 1},
            Severity.MEDIUM,
            False,
            "no findings at or above MEDIUM; ECR reported 1 HIGH finding but only 0 could be read, "
            "and 1 UNTRIAGED finding but only 0 could be read",
            [count_warning("1 HIGH finding", 0), count_warning("1 UNTRIAGED finding", 0)],
            id="untriaged-ranks-as-medium",
        ),
        pytest.param(
            # Enhanced scanning counts vulnerabilities: CVE-1 in two packages is one.
            TWO_PACKAGES,
            {Severity.CRITICAL: 2},
            Severity.CRITICAL,
            False,
            "2 findings at or above CRITICAL (2 CRITICAL); ECR reported 2 CRITICAL findings but only 1 could be read",
            [count_warning("2 CRITICAL findings", 1)],
            id="enhanced-counts-vulnerabilities",
        ),
        pytest.param(
            TWO_PACKAGES,
            {Severity.CRITICAL: 1},
            Severity.CRITICAL,
            False,
            "2 findings at or above CRITICAL (2 CRITICAL)",
            [],
            id="enhanced-consistent",
        ),
        pytest.param(
            # Basic scanning counts findings: the same CVE in two packages is two.
            [Finding("CVE-1", Severity.HIGH, package="a"), Finding("CVE-1", Severity.HIGH, package="b")],
            {Severity.HIGH: 2},
            Severity.HIGH,
            False,
            "2 findings at or above HIGH (2 HIGH)",
            [],
            id="basic-consistent",
        ),
        pytest.param(
            [Finding("CVE-1", Severity.HIGH, package="a")],
            {Severity.HIGH: 2},
            Severity.HIGH,
            False,
            "1 finding at or above HIGH (1 HIGH); ECR reported 2 HIGH findings but only 1 could be read",
            [count_warning("2 HIGH findings", 1)],
            id="basic-missing",
        ),
        pytest.param([], {Severity.CRITICAL: 5}, None, True, "gate off (fail-on: none); 0 findings", [], id="gate-off"),
        pytest.param([], {}, Severity.INFORMATIONAL, True, "no findings at or above INFORMATIONAL", [], id="no-counts"),
    ],
)
def test_counts_ecr_declares_but_did_not_return_fail_the_gate(
    findings: list[Finding],
    declared: dict[Severity, int],
    fail_on: Severity | None,
    passed: bool,
    reason: str,
    warnings: list[str],
) -> None:
    verdict = evaluate(findings, fail_on=fail_on, declared_counts=declared)

    assert (verdict.passed, verdict.reason, list(verdict.warnings)) == (passed, reason, warnings)


def test_counts_are_compared_before_ignores() -> None:
    verdict = evaluate(
        [FINDINGS["C"]],
        fail_on=Severity.CRITICAL,
        ignores=resolve_ignores(["CVE-1"], [], today=TODAY),
        declared_counts={Severity.CRITICAL: 1},
    )

    assert (verdict.passed, verdict.reason, verdict.warnings) == (
        True,
        "no findings at or above CRITICAL after 1 ignored",
        (),
    )


# Image indexes: each finding once, naming the platforms whose images have it.

BOTH = ("linux/amd64", "linux/arm64")


def on(platforms: tuple[str, ...], vulnerability_id: str, severity: Severity, package: str = "openssl") -> Finding:
    return Finding(vulnerability_id, severity, package=package, platforms=platforms)


@pytest.mark.parametrize(
    ("findings", "passed", "reason"),
    [
        pytest.param(
            [on(BOTH, "CVE-1", Severity.CRITICAL), on(BOTH[:1], "CVE-2", Severity.LOW)],
            False,
            "1 finding at or above HIGH (1 CRITICAL) on linux/amd64 and linux/arm64",
            id="shared-counts-once",
        ),
        pytest.param(
            [on(BOTH[:1], "CVE-2", Severity.LOW), on(BOTH[1:], "CVE-1", Severity.HIGH)],
            False,
            "1 finding at or above HIGH (1 HIGH) on linux/arm64",
            id="one-platform-fails-all",
        ),
        pytest.param(
            [on(BOTH, "CVE-2", Severity.LOW), on(BOTH[1:], "CVE-3", Severity.MEDIUM)],
            True,
            "no findings at or above HIGH",
            id="none-fails",
        ),
    ],
)
def test_an_index_fails_when_any_platform_fails(findings: list[Finding], passed: bool, reason: str) -> None:
    verdict = evaluate(findings, fail_on=Severity.HIGH)

    assert (verdict.passed, verdict.reason) == (passed, reason)
    assert verdict.total == len(findings)


def test_platforms_are_named_in_the_index_order() -> None:
    findings = [on(BOTH[:1], "CVE-2", Severity.LOW), on(BOTH[1:], "CVE-1", Severity.CRITICAL)]
    findings.append(on(BOTH[:1], "CVE-3", Severity.HIGH))

    verdict = evaluate(findings, fail_on=Severity.HIGH)

    assert verdict.reason == "2 findings at or above HIGH (1 CRITICAL, 1 HIGH) on linux/amd64 and linux/arm64"


def test_ecrs_counts_are_checked_per_platform() -> None:
    """arm64's HIGH finding was not returned: amd64's does not make up for it, as it would on the union."""
    findings = [on(BOTH[:1], "CVE-1", Severity.HIGH), on(BOTH, "CVE-2", Severity.HIGH, package="zlib")]

    verdict = evaluate(
        findings,
        fail_on=Severity.HIGH,
        platform_declared_counts={"linux/amd64": {Severity.HIGH: 2}, "linux/arm64": {Severity.HIGH: 2}},
    )

    assert not verdict.passed
    assert verdict.reason == (
        "2 findings at or above HIGH (2 HIGH) on linux/amd64 and linux/arm64; "
        "ECR reported 2 HIGH findings on linux/arm64 but only 1 could be read"
    )
    assert verdict.warnings == (count_warning("2 HIGH findings on linux/arm64", 1),)


def test_ecrs_counts_per_platform_that_match_pass() -> None:
    findings = [on(BOTH[:1], "CVE-1", Severity.LOW), on(BOTH, "CVE-2", Severity.HIGH)]
    counts = {"linux/amd64": {Severity.HIGH: 1, Severity.LOW: 1}, "linux/arm64": {Severity.HIGH: 1}}

    verdict = evaluate(findings, fail_on=Severity.CRITICAL, platform_declared_counts=counts)

    assert (verdict.passed, verdict.warnings) == (True, ())
