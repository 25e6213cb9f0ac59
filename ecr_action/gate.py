"""The pull-request gate: which findings fail the step, and one line saying why. Pure policy."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ecr_action.findings import Finding, ScanKind, Severity
from ecr_action.ignores import Ignores

# Most severe first: the order of every table, count list and annotation.
SEVERITIES_DESCENDING = tuple(sorted(Severity, reverse=True))
# Nobody (neither ECR nor Inspector) rated an UNTRIAGED finding, so the gate does not assume it harmless.
UNTRIAGED_GATE_RANK = Severity.MEDIUM
BASIC_FIXABLE_ONLY_WARNING = (
    "ECR's basic scanning gives no fix data, so `fail-on-fixable-only` cannot apply: every finding counts as "
    "fixable. Turn on enhanced scanning (Amazon Inspector) for the registry to get fix data, or set "
    "`fail-on-fixable-only: false`."
)


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
    warnings: tuple[str, ...] = ()  # for a `::warning::` each: the gate failed closed on missing data
    _failing: frozenset[Finding] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # A set, so report.py can ask about each of 10,000 findings without a quadratic scan.
        object.__setattr__(self, "_failing", frozenset(self.counted))

    def fails(self, finding: Finding) -> bool:
        return finding in self._failing

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def gate_rank(severity: Severity) -> Severity:
    """The severity a finding counts as against `fail-on`; tables still show and order it as ECR named it."""
    return UNTRIAGED_GATE_RANK if severity is Severity.UNTRIAGED else severity


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
    declared_counts: Mapping[Severity, int] | None = None,
    platform_declared_counts: Mapping[str, Mapping[Severity, int]] | None = None,
) -> GateVerdict:
    """Apply ignores, then (for findings at or above `fail_on`) fixable-only and the baseline.

    `baseline` is None when no baseline tag is set; an empty baseline means every finding is new.
    `declared_counts` are ECR's own counts of the scan's findings: a count at or above `fail_on` that the
    findings read do not reach fails the gate, since what could not be read cannot be shown to be harmless.
    For an image index, `platform_declared_counts` are each platform image's, checked against the findings
    that name that platform. The findings of an index are each listed once, so the gate fails when any
    platform has a failing finding.
    """
    ignores = ignores or Ignores()
    findings = list(findings)
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
    at_threshold = [] if fail_on is None else [finding for finding in kept if gate_rank(finding.severity) >= fail_on]
    # Basic scanning never has fix data: fixable-only would pass every finding, so it does not apply there.
    no_fix_data = fixable_only and fail_on is not None and any(f.kind is ScanKind.BASIC for f in findings)
    candidates = [finding for finding in at_threshold if finding.fixable or not fixable_only or no_fix_data]
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
    reason = _reason(counted, kept, fail_on, fixable_only and not no_fix_data, [text for text in exclusions if text])
    unread = _unread(findings, {"": declared_counts or {}, **(platform_declared_counts or {})}, fail_on)
    if unread:
        reason += "; ECR reported " + ", and ".join(
            f"{plural(item.declared, f'{item.severity.name} finding')}{_on(item.platform)} but only {item.read:,} "
            "could be read"
            for item in unread
        )
    return GateVerdict(
        passed=not counted and not unread,
        fail_on=fail_on,
        counts=counts,
        counted=tuple(counted),
        ignored=tuple(ignored),
        baseline_suppressed=baseline_suppressed,
        reason=reason,
        warnings=(
            *([BASIC_FIXABLE_ONLY_WARNING] if no_fix_data else []),
            *(_unread_warning(item) for item in unread),
        ),
    )


@dataclass(frozen=True, slots=True)
class _Unread:
    platform: str  # "" for the whole image
    severity: Severity
    declared: int
    read: int


def _unread(
    findings: list[Finding], declared_by_platform: Mapping[str, Mapping[Severity, int]], fail_on: Severity | None
) -> list[_Unread]:
    """Each severity that counts against `fail_on` where ECR declared more findings (of a platform image, or
    "" of the whole image) than were read. Enhanced scanning counts a vulnerability once, however many
    packages it is in; basic scanning counts findings."""
    if fail_on is None:
        return []
    unread = []
    for platform, declared_counts in declared_by_platform.items():
        on_platform = [finding for finding in findings if not platform or platform in finding.platforms]
        read = Counter(finding.severity for finding in on_platform if finding.kind is ScanKind.BASIC)
        read.update(
            severity
            for severity, _ in {(f.severity, f.vulnerability_id) for f in on_platform if f.kind is ScanKind.ENHANCED}
        )
        unread += [
            _Unread(platform, severity, declared_counts[severity], read[severity])
            for severity in SEVERITIES_DESCENDING
            if gate_rank(severity) >= fail_on and declared_counts.get(severity, 0) > read[severity]
        ]
    return unread


def _unread_warning(unread: _Unread) -> str:
    return (
        "ECR's scan summary (findingSeverityCounts) reports "
        f"{plural(unread.declared, f'{unread.severity.name} finding')}{_on(unread.platform)}, "
        f"but only {unread.read:,} of them were in the findings ECR returned, so the gate fails rather than pass "
        "on findings it could not read. Run the job again; if this persists, compare with the findings in the "
        "ECR console."
    )


def _on(platform: str) -> str:
    return f" on {platform}" if platform else ""


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
        f"{by_severity[severity]} {severity.name}"
        + (f" counted as {gate_rank(severity).name}" if gate_rank(severity) != severity else "")
        for severity in SEVERITIES_DESCENDING
        if by_severity[severity]
    )
    # The platforms of an index whose images fail, in the index's order.
    failing = {platform for finding in counted for platform in finding.platforms}
    platforms = [platform for platform in dict.fromkeys(p for f in kept for p in f.platforms) if platform in failing]
    where = f" on {_join(platforms)}" if platforms else ""
    return f"{plural(len(counted), kind)} at or above {fail_on.name} ({breakdown}){where}{after}"


def plural(count: int, noun: str) -> str:
    """`1 finding`, `1,234 findings`."""
    return f"{count:,} {noun}" if count == 1 else f"{count:,} {noun}s"


def _join(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])} and {parts[-1]}"
