"""What the user reads about a scan: annotations, the job summary and output values (SARIF: `sarif`).

Pure: everything here returns strings, dicts or dataclasses; `ecr_action.github` writes them. Finding text
comes from ECR and the package metadata of the image, so it is treated as hostile data everywhere.
"""

from __future__ import annotations

import html
import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit

from ecr_action.findings import Finding, Severity
from ecr_action.gate import SEVERITIES_DESCENDING, GateVerdict, plural
from ecr_action.github import AnnotationLevel
from ecr_action.outputs import Output
from ecr_action.scan import PlatformScan

# GitHub shows at most this many annotations of each level per step and drops the rest silently.
ANNOTATIONS_PER_LEVEL = 10
# GitHub refuses a step summary over 1 MiB; the margin leaves room for an error section in the same step.
SUMMARY_LIMIT_BYTES = 1_000_000
# GitHub's code scanning rejects a SARIF run with more results than this.
SARIF_MAX_RESULTS = 25_000
# ECR can send a finding without a vulnerability id or a package; these stand in for them in text.
UNNAMED_VULNERABILITY = "(unnamed vulnerability)"
UNKNOWN_PACKAGE = "(unknown package)"


@dataclass(frozen=True, slots=True)
class Annotation:
    level: AnnotationLevel
    title: str
    message: str
    file: str | None
    line: int | None


@dataclass(frozen=True, slots=True)
class ScanReport:
    """Everything the job summary shows about one pushed image."""

    image_uri: str
    digest: str
    scan_status: str
    findings: tuple[Finding, ...]  # as ECR reported them, ignored ones included
    verdict: GateVerdict
    tags: tuple[str, ...] = ()
    timings: Mapping[str, float] = field(default_factory=dict)  # stage -> seconds, in run order
    warnings: tuple[str, ...] = ()  # e.g. expired ignores; the verdict's own warnings are shown too
    platforms: tuple[PlatformScan, ...] = ()  # of an image index: a row each; () for a single-platform image


def most_severe_first(findings: Iterable[Finding], verdict: GateVerdict | None = None) -> list[Finding]:
    """Severity, then those failing the gate, then CVSS, then those with a name and a package (an empty one
    would sort first); ids and packages make the order stable."""
    return sorted(
        findings,
        key=lambda finding: (
            -finding.severity,
            not (verdict and verdict.fails(finding)),
            -(finding.cvss_score or 0.0),
            not finding.vulnerability_id,
            not finding.package,
            finding.vulnerability_id,
            finding.package,
            finding.installed_version,
        ),
    )


# Dockerfile reading: just enough to find the last `FROM` instruction.
_PARSER_DIRECTIVE = re.compile(r"#\s*([A-Za-z]+)\s*=\s*(\S+)\s*$")
_FROM_INSTRUCTION = re.compile(r"FROM(\s|$)", re.IGNORECASE)


def final_stage_line(dockerfile: str) -> int:
    """1-based line of the final stage's `FROM`: where annotations about the image belong.

    Follows Docker's reading: parser directives (a custom `escape`), comments, and continuation
    lines, inside which comment and blank lines do not end the instruction. 1 if there is no `FROM`.
    """
    lines = dockerfile.removeprefix("\ufeff").splitlines()
    escape = "\\"
    for text in lines:
        directive = _PARSER_DIRECTIVE.match(text.strip())
        if directive is None:
            break
        if directive.group(1).lower() == "escape":
            escape = directive.group(2)
    last_from = 1
    continuing = False
    for number, text in enumerate(lines, start=1):
        stripped = text.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if not continuing and _FROM_INSTRUCTION.match(stripped):
            last_from = number
        continuing = stripped.endswith(escape)
    return last_from


def annotations(
    findings: Iterable[Finding], verdict: GateVerdict, *, dockerfile: str, line: int, limit: int
) -> list[Annotation]:
    """The most severe findings as annotations on the Dockerfile, within `limit` and GitHub's per-level caps,
    plus one annotation saying how many more there are when any are left out. A `limit` of 0 turns them off.
    """
    if limit <= 0:
        return []
    ranked = most_severe_first(findings, verdict)
    shown: list[Annotation] = []
    per_level = dict.fromkeys(("error", "warning", "notice"), 0)
    for finding in ranked:
        if len(shown) == limit:
            break
        level = _annotation_level(finding, verdict)
        if per_level[level] < ANNOTATIONS_PER_LEVEL:
            per_level[level] += 1
            shown.append(_finding_annotation(finding, level, dockerfile, line))
    if len(shown) < len(ranked) and per_level["notice"] == ANNOTATIONS_PER_LEVEL:
        # The "more findings" notice needs a notice slot of its own, or GitHub would drop it.
        last_notice = max(index for index, annotation in enumerate(shown) if annotation.level == "notice")
        del shown[last_notice]
    more = len(ranked) - len(shown)
    if more:
        shown.append(
            Annotation(
                level="notice",
                title=plural(more, "more finding"),
                message=f"{plural(more, 'more finding')} not shown as annotations: "
                "see the job summary and the SARIF file.",
                file=dockerfile or None,
                line=line if dockerfile else None,
            )
        )
    return shown


def _annotation_level(finding: Finding, verdict: GateVerdict) -> AnnotationLevel:
    if verdict.fails(finding):
        return "error"
    return "warning" if finding.severity >= Severity.HIGH else "notice"


def finding_name(finding: Finding) -> str:
    return finding.vulnerability_id or UNNAMED_VULNERABILITY


def installed_text(finding: Finding) -> str:
    """`package version`, as far as ECR said."""
    return " ".join(part for part in (finding.package or UNKNOWN_PACKAGE, finding.installed_version) if part)


def platforms_text(finding: Finding) -> str:
    """` (linux/amd64, linux/arm64)`: the platforms of an index whose images have it; "" for a single image."""
    return f" ({', '.join(finding.platforms)})" if finding.platforms else ""


def _finding_annotation(finding: Finding, level: AnnotationLevel, dockerfile: str, line: int) -> Annotation:
    title = f"{finding_name(finding)} in {finding.package}" if finding.package else finding_name(finding)
    title += platforms_text(finding)
    cvss = f" (CVSS {finding.cvss_score:g})" if finding.cvss_score is not None else ""
    installed = installed_text(finding)
    message = f"{finding.severity.name}{cvss}: {installed} → {finding.fixed_version or 'no fix yet'}"
    if web_url(finding.uri):
        message += f"\n{finding.uri}"
    return Annotation(level, title, message, dockerfile or None, line if dockerfile else None)


# Job summary.


def summary_markdown(report: ScanReport, *, limit_bytes: int = SUMMARY_LIMIT_BYTES) -> str:
    """GitHub-flavoured Markdown; past `limit_bytes` (UTF-8) it stops before a whole line and says so."""
    ignored = {item.finding for item in report.verdict.ignored}
    kept = [finding for finding in report.findings if finding not in ignored]
    head = [
        *_summary_head(report),
        *_platforms_section(report.platforms, kept, report.verdict),
        *_ignored_section(report.verdict),
        *_timings_section(report.timings),
    ]
    shown = most_severe_first(kept, report.verdict)
    rows = [_finding_row(finding, report.verdict, platforms=bool(report.platforms)) for finding in shown]
    columns = ("Severity", "Vulnerability", "Package", "Installed", "Fixed in", "CVSS")
    columns += ("Platforms", "Gate") if report.platforms else ("Gate",)
    table = ["### Findings, most severe first", "", _row(*columns), _row(*["---"] * len(columns))] if rows else []

    budget = limit_bytes - 1024  # room for the truncation note
    kept: list[str] = []
    used = 0
    for line in [*head, *table, *rows]:
        used += len(line.encode("utf-8")) + 1
        if used > budget:
            break
        kept.append(line)
    dropped_rows = len(head) + len(table) + len(rows) - len(kept)
    if dropped_rows:
        dropped_findings = min(dropped_rows, len(rows))
        if len(report.findings) > SARIF_MAX_RESULTS:
            elsewhere = (
                f"The SARIF file (`sarif-file`) lists the {SARIF_MAX_RESULTS:,} most severe, as GitHub's code "
                "scanning takes no more; the ECR console lists them all."
            )
        else:
            elsewhere = "The SARIF file (`sarif-file`) and the ECR console list them all."
        kept += [
            "",
            f"_Summary truncated to stay under GitHub's 1 MiB limit: "
            f"{plural(dropped_findings, 'more finding')} not shown. {elsewhere}_",
        ]
    return "\n".join(kept) + "\n"


def _summary_head(report: ScanReport) -> list[str]:
    verdict = report.verdict
    outcome = "gate off" if verdict.fail_on is None else ("gate passed ✅" if verdict.passed else "gate failed ❌")
    kinds = sorted({finding.kind.value for finding in report.findings})
    scan = f"{_text(report.scan_status)}" + (f" ({', '.join(kinds)} scanning)" if kinds else "")
    lines = [
        f"## ecr-action: {outcome}",
        "",
        f"- **Image:** {_code(report.image_uri)}",
        f"- **Digest:** {_code(report.digest)}",
    ]
    if report.tags:
        lines.append(f"- **Tags:** {', '.join(_code(tag) for tag in report.tags)}")
    lines += [f"- **Scan:** {scan}", ""]
    lines += [f"> [!WARNING]\n> {_text(warning)}\n" for warning in (*report.warnings, *verdict.warnings)]
    lines += [
        "### Findings after ignores",
        "",
        _row(*(severity.name for severity in SEVERITIES_DESCENDING), "Total"),
        _row(*["---:"] * (len(SEVERITIES_DESCENDING) + 1)),
        _row(*(str(verdict.counts[severity]) for severity in SEVERITIES_DESCENDING), str(verdict.total)),
        "",
        f"**Gate** (fail-on: {verdict.fail_on.name if verdict.fail_on else 'none'}): {_text(verdict.reason)}",
        "",
    ]
    return lines


def _platforms_section(platforms: tuple[PlatformScan, ...], kept: list[Finding], verdict: GateVerdict) -> list[str]:
    """A row per platform image of an index: its scan, its findings after ignores (a finding several
    platforms share counts on each), and whether any of them fails the gate."""
    if not platforms:
        return []
    lines = [
        "### Platforms",
        "",
        _row("Platform", "Digest", "Scan", *(severity.name for severity in SEVERITIES_DESCENDING), "Total", "Gate"),
        _row("---", "---", "---", *["---:"] * (len(SEVERITIES_DESCENDING) + 1), "---"),
    ]
    for scanned in platforms:
        on_platform = [finding for finding in kept if scanned.platform in finding.platforms]
        counts = Counter(finding.severity for finding in on_platform)
        lines.append(
            _row(
                _text(scanned.platform),
                _code(scanned.digest),
                _text(scanned.status),
                *(str(counts[severity]) for severity in SEVERITIES_DESCENDING),
                str(len(on_platform)),
                "fails" if any(verdict.fails(finding) for finding in on_platform) else "",
            )
        )
    return [*lines, ""]


def _ignored_section(verdict: GateVerdict) -> list[str]:
    """One row per ignored vulnerability and reason: an ignore can match many packages."""
    if not verdict.ignored:
        return []
    packages_by_ignore: dict[tuple[str, str], list[str]] = {}
    for item in verdict.ignored:
        key = (finding_name(item.finding), item.reason)
        packages_by_ignore.setdefault(key, []).append(item.finding.package or UNKNOWN_PACKAGE)
    lines = ["### Ignored", "", _row("Vulnerability", "Packages", "Reason"), _row("---", "---", "---")]
    for (vulnerability_id, reason), packages in packages_by_ignore.items():
        listed = ", ".join(_text(package) for package in packages[:5])
        if len(packages) > 5:
            listed += f" and {len(packages) - 5} more"
        lines.append(_row(_text(vulnerability_id), listed, _text(reason)))
    return [*lines, ""]


def _timings_section(timings: Mapping[str, float]) -> list[str]:
    if not timings:
        return []
    rows = [_row(_text(stage), f"{seconds:.1f}") for stage, seconds in timings.items()]
    total = _row("**total**", f"**{sum(timings.values()):.1f}**")
    return ["### Timings", "", _row("Stage", "Seconds"), _row("---", "---:"), *rows, total, ""]


def _finding_row(finding: Finding, verdict: GateVerdict, *, platforms: bool) -> str:
    return _row(
        finding.severity.name,
        _link(finding_name(finding), finding.uri),
        _text(finding.package or UNKNOWN_PACKAGE),
        _text(finding.installed_version),
        _text(finding.fixed_version) or "no fix yet",
        f"{finding.cvss_score:g}" if finding.cvss_score is not None else "",
        *([_text(", ".join(finding.platforms))] if platforms else []),
        "fails" if verdict.fails(finding) else "",
    )


def _row(*cells: str) -> str:
    return f"| {' | '.join(cells)} |"


# Backslash escapes GFM honours for ASCII punctuation; `|` also splits table cells, even in code spans.
_MARKDOWN_PUNCTUATION = re.compile(r"([\\`*_\[\]|~!#])")


# Everything else in a URL is percent-encoded, so that nothing in it can end the link or the table cell.
_URL_SAFE = ":/?#=&%+@;,~.-_!$'*"


def _text(text: str) -> str:
    """Hostile text as inert Markdown on one line: no markup, no HTML, no table cell breaks."""
    one_line = " ".join(text.split())
    return _MARKDOWN_PUNCTUATION.sub(r"\\\1", html.escape(one_line, quote=False))


def _code(text: str) -> str:
    if any(character in text for character in "`|\r\n"):
        return _text(text)
    return f"`{text}`"


def web_url(url: str) -> str:
    """`url` if it is a web address; ECR passes on whatever the advisory had (`javascript:` included)."""
    if url.startswith(("https://", "http://")):
        return url  # what urlsplit would say, without its cost for each of 10,000 findings
    return url if urlsplit(url).scheme in ("http", "https") else ""


def _link(text: str, url: str) -> str:
    if not web_url(url):
        return _text(text)
    return f"[{_text(text)}]({quote(url, safe=_URL_SAFE)})"


def output_values(verdict: GateVerdict) -> dict[Output, str]:
    """Step outputs `findings` (JSON counts by ECR severity), `findings-total` and `gate`."""
    counts = {severity.name: verdict.counts[severity] for severity in SEVERITIES_DESCENDING}
    return {
        Output.FINDINGS: json.dumps(counts, separators=(",", ":")),
        Output.FINDINGS_TOTAL: str(verdict.total),
        Output.GATE: "pass" if verdict.passed else "fail",
    }
