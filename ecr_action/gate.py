"""The pull-request gate: which findings fail the step, and one line saying why. Pure policy."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ecr_action.findings import Finding, Severity
from ecr_action.ignores import Ignores

# Most severe first: the order of every table, count list and annotation.
SEVERITIES_DESCENDING = tuple(sorted(Severity, reverse=True))


@dataclass(frozen=True, slots=True)
class IgnoredFinding:
    finding: Finding
    reason: str


@dataclass(frozen=True, slots=True)
class GateVerdict:
    passed: bool
    fail_on: Severity | None  # None: `fail-on: none`, the gate never fails
    counts: Mapping[Severity, int]  # every severity, after ignores (not after fixable-only or baseline)
    counted: tuple[Finding, ...]  # the findings that fail the gate, most severe first
    ignored: tuple[IgnoredFinding, ...]
    baseline_suppressed: int
    reason: str
    _failing: frozenset[Finding] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # A set, so report.py can ask about each of 10,000 findings without a quadratic scan.
        object.__setattr__(self, "_failing", frozenset(self.counted))

    def fails(self, finding: Finding) -> bool:
        return finding in self._failing

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def baseline_key(finding: Finding) -> tuple[str, str]:
    """What makes a finding "the same" in the baseline image: the vulnerability in the same package."""
    return finding.vulnerability_id.casefold(), finding.package


def evaluate(
    findings: Iterable[Finding],
    *,
    fail_on: Severity | None,
    fixable_only: bool = False,
    ignores: Ignores | None = None,
    baseline: Iterable[Finding] | None = None,
    baseline_tag: str = "",
) -> GateVerdict:
    """Apply ignores, then (for findings at or above `fail_on`) fixable-only and the baseline.

    `baseline` is None when no baseline tag is set; an empty baseline means every finding is new.
    """
    ignores = ignores or Ignores()
    kept: list[Finding] = []
    ignored: list[IgnoredFinding] = []
    for finding in findings:
        reason = ignores.reason_for(finding)
        if reason is None:
            kept.append(finding)
        else:
            ignored.append(IgnoredFinding(finding, reason))

    severity_counts = Counter(finding.severity for finding in kept)
    counts = {severity: severity_counts[severity] for severity in SEVERITIES_DESCENDING}
    at_threshold = [] if fail_on is None else [finding for finding in kept if finding.severity >= fail_on]
    candidates = [finding for finding in at_threshold if finding.fixable or not fixable_only]
    unfixable = len(at_threshold) - len(candidates)
    baseline_keys = {baseline_key(finding) for finding in baseline or ()}
    counted = [finding for finding in candidates if baseline_key(finding) not in baseline_keys]
    counted.sort(key=lambda finding: finding.severity, reverse=True)
    baseline_suppressed = len(candidates) - len(counted)

    exclusions = [
        f"{len(ignored)} ignored" if ignored else "",
        f"{unfixable} without a fix" if unfixable else "",
        f"{baseline_suppressed} already in baseline '{baseline_tag}'" if baseline_suppressed else "",
    ]
    return GateVerdict(
        passed=not counted,
        fail_on=fail_on,
        counts=counts,
        counted=tuple(counted),
        ignored=tuple(ignored),
        baseline_suppressed=baseline_suppressed,
        reason=_reason(counted, kept, fail_on, fixable_only, [text for text in exclusions if text]),
    )


def _reason(
    counted: list[Finding],
    kept: list[Finding],
    fail_on: Severity | None,
    fixable_only: bool,
    exclusions: list[str],
) -> str:
    after = f" after {_join(exclusions)}" if exclusions else ""
    if fail_on is None:
        return f"gate off (fail-on: none); {plural(len(kept), 'finding')}{after}"
    kind = "fixable finding" if fixable_only else "finding"
    if not counted:
        return f"no {kind}s at or above {fail_on.name}{after}"
    by_severity = Counter(finding.severity for finding in counted)
    breakdown = ", ".join(
        f"{by_severity[severity]} {severity.name}" for severity in SEVERITIES_DESCENDING if by_severity[severity]
    )
    return f"{plural(len(counted), kind)} at or above {fail_on.name} ({breakdown}){after}"


def plural(count: int, noun: str) -> str:
    """`1 finding`, `1,234 findings`."""
    return f"{count:,} {noun}" if count == 1 else f"{count:,} {noun}s"


def _join(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])} and {parts[-1]}"
