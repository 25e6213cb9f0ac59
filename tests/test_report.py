from __future__ import annotations

import datetime
import gzip
import hashlib
import io
import json
import re
from collections import Counter
from dataclasses import replace
from pathlib import Path

import jsonschema
import pytest

from ecr_action.findings import Finding, ScanKind, Severity, findings_from_page
from ecr_action.gate import evaluate
from ecr_action.github import Workflow
from ecr_action.ignores import IgnoreEntry, resolve_ignores
from ecr_action.report import (
    SARIF_MAX_RESULTS,
    Annotation,
    ScanReport,
    annotations,
    final_stage_line,
    output_values,
    summary_markdown,
)
from ecr_action.sarif import sarif
from ecr_action.scan import PlatformScan

FIXTURES = Path(__file__).parent / "fixtures"
SARIF_SCHEMA = json.loads((Path("/work/shared/schemas/sarif-schema-2.1.0.json")).read_text(encoding="utf-8"))
DIGEST = "sha256:" + "1" * 64
IMAGE_URI = f"123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/app@{DIGEST}"
SEVERITY_CYCLE = list(Severity)


def fixture_findings(name: str) -> list[Finding]:
    return findings_from_page(json.loads((FIXTURES / name).read_text(encoding="utf-8")))


HOSTILE = fixture_findings("ecr_basic_findings.json")
ENHANCED = fixture_findings("ecr_enhanced_findings.json")


def many_findings(count: int) -> list[Finding]:
    return [
        Finding(
            f"CVE-2024-{number:05d}",
            SEVERITY_CYCLE[number % len(SEVERITY_CYCLE)],
            package=f"package-{number}",
            installed_version="1.0.0-1",
            fixed_version="1.0.1-1" if number % 2 else "",
            uri=f"https://nvd.nist.gov/vuln/detail/CVE-2024-{number:05d}",
            title=f"CVE-2024-{number:05d} - package-{number}",
            description="A long description of the problem. " * 5,
            cvss_score=5.0,
            kind=ScanKind.ENHANCED,
        )
        for number in range(count)
    ]


# Dockerfile: the final stage's FROM.


@pytest.mark.parametrize(
    ("dockerfile", "line"),
    [
        ("FROM python:3.12-slim\nRUN true\n", 1),
        (
            "# syntax=docker/dockerfile:1\nFROM golang AS build\nRUN go build\n\nfrom scratch\nCOPY --from=build / /\n",
            5,
        ),
        # A comment that mentions FROM, and text continued onto a line starting with "from".
        ("FROM a AS one\n# FROM not-this\nRUN echo \\\n  from the past\n", 1),
        # Comment and blank lines inside a continuation do not end the instruction.
        ("FROM a\nRUN apt-get install \\\n# FROM comment\n\n    from-package\n  FROM b\n", 6),
        # A parser directive changes the escape character (Windows Dockerfiles).
        ("# escape=`\nFROM a\nRUN dir c:\\ `\n  FROM-looking text\nFROM b\n", 5),
        ("\ufeffFROM a\nFROM\tb\n", 2),
        ("", 1),
        ("RUN no from at all\n", 1),
    ],
)
def test_final_stage_line(dockerfile: str, line: int) -> None:
    assert final_stage_line(dockerfile) == line


# Annotations.


def test_annotation_lines_for_hostile_findings_are_exact() -> None:
    verdict = evaluate(HOSTILE, fail_on=Severity.HIGH)
    stream = io.StringIO()
    workflow = Workflow(stream)

    for annotation in annotations(HOSTILE, verdict, dockerfile="docker/app,v2/Dockerfile", line=5, limit=3):
        workflow.annotate(
            annotation.level, annotation.message, title=annotation.title, file=annotation.file, line=annotation.line
        )

    assert stream.getvalue().splitlines() == [
        "::error file=docker/app%2Cv2/Dockerfile,line=5,"
        "title=CVE-2024-0001 in evil%2Cpkg%3Aname%0D%0A%3A%3Aerror%3A%3Aowned"
        "::CRITICAL (CVSS 10): evil,pkg:name%0D%0A::error::owned 1.0%250A::warning::x → no fix yet"
        "%0Ahttps://security-tracker.debian.org/tracker/CVE-2024-0001",
        "::error file=docker/app%2Cv2/Dockerfile,line=5,title=CVE-2024-0002 in openssl"
        "::HIGH (CVSS 7.5): openssl 3.0.2-0ubuntu1 → no fix yet"
        "%0Ahttps://security-tracker.debian.org/tracker/CVE-2024-0002",
        # Not a web address: no link.
        "::notice file=docker/app%2Cv2/Dockerfile,line=5,title=CVE-2024-0003 in libc6"
        "::MEDIUM: libc6 2.36-9 → no fix yet",
        "::notice file=docker/app%2Cv2/Dockerfile,line=5,title=1 more finding"
        "::1 more finding not shown as annotations: see the job summary and the SARIF file.",
    ]


def test_annotation_levels_follow_the_gate() -> None:
    verdict = evaluate(ENHANCED, fail_on=Severity.CRITICAL, fixable_only=True)

    shown = annotations(ENHANCED, verdict, dockerfile="Dockerfile", line=1, limit=10)

    assert [(annotation.level, annotation.title) for annotation in shown] == [
        ("error", "CVE-2022-37434 in zlib1g"),
        # CRITICAL, but without a fix it does not fail a fixable-only gate.
        ("warning", "CVE-2022-37434 in zlib,dev:headers"),
        ("notice", "GHSA-abcd-efgh-ijkl in left-pad"),
        ("notice", "CVE-2023-5555"),
    ]
    assert shown[0].message == (
        "CRITICAL (CVSS 9.8): zlib1g 1:1.2.13.dfsg-3 → 1:1.2.13.dfsg-4\nhttps://nvd.nist.gov/vuln/detail/CVE-2022-37434"
    )


def test_annotations_stay_within_githubs_caps() -> None:
    findings = many_findings(10_000)
    verdict = evaluate(findings, fail_on=Severity.CRITICAL)

    shown = annotations(findings, verdict, dockerfile="Dockerfile", line=3, limit=50)

    levels = Counter(annotation.level for annotation in shown)
    assert levels == {"error": 10, "warning": 10, "notice": 10}
    assert shown[-1] == Annotation(
        "notice",
        "9,971 more findings",
        "9,971 more findings not shown as annotations: see the job summary and the SARIF file.",
        "Dockerfile",
        3,
    )


def test_annotations_limit_and_off() -> None:
    findings = many_findings(30)
    verdict = evaluate(findings, fail_on=Severity.HIGH)

    assert len(annotations(findings, verdict, dockerfile="Dockerfile", line=1, limit=5)) == 6
    # 10 errors and 20 notices: GitHub would drop 10 notices, and one more makes room for the count.
    shown = annotations(findings, verdict, dockerfile="Dockerfile", line=1, limit=30)
    assert Counter(annotation.level for annotation in shown) == {"error": 10, "notice": 10}
    assert shown[-1].title == "11 more findings"
    assert annotations(findings, verdict, dockerfile="Dockerfile", line=1, limit=0) == []


# Findings without a name or a package (ECR can send either empty).

UNNAMED = Finding("", Severity.CRITICAL, title="Heap overflow in the parser", uri="https://example.test/advisory/7")
NAMELESS_PACKAGE = Finding("CVE-2024-0007", Severity.CRITICAL, installed_version="1.2")
NAMED = Finding("CVE-2024-0008", Severity.CRITICAL, package="zlib", installed_version="1.3")


def test_unnamed_findings_get_placeholders_and_sort_after_named_ones() -> None:
    findings = [UNNAMED, NAMELESS_PACKAGE, NAMED]
    verdict = evaluate(findings, fail_on=Severity.CRITICAL)
    stream = io.StringIO()
    workflow = Workflow(stream)

    for annotation in annotations(findings, verdict, dockerfile="Dockerfile", line=2, limit=10):
        workflow.annotate(
            annotation.level, annotation.message, title=annotation.title, file=annotation.file, line=annotation.line
        )

    assert stream.getvalue().splitlines() == [
        "::error file=Dockerfile,line=2,title=CVE-2024-0008 in zlib::CRITICAL: zlib 1.3 → no fix yet",
        "::error file=Dockerfile,line=2,title=CVE-2024-0007::CRITICAL: (unknown package) 1.2 → no fix yet",
        "::error file=Dockerfile,line=2,title=(unnamed vulnerability)"
        "::CRITICAL: (unknown package) → no fix yet%0Ahttps://example.test/advisory/7",
    ]


def test_unnamed_findings_in_the_summary() -> None:
    markdown = summary_markdown(scan_report([UNNAMED, NAMELESS_PACKAGE], fail_on=Severity.CRITICAL))

    assert "| CRITICAL | CVE-2024-0007 | (unknown package) | 1.2 | no fix yet |  | fails |" in markdown
    assert (
        "| CRITICAL | [(unnamed vulnerability)](https://example.test/advisory/7) | (unknown package) "
        "|  | no fix yet |  | fails |"
    ) in markdown


def test_unnamed_findings_get_a_stable_sarif_rule_id() -> None:
    other = Finding("", Severity.LOW, package="tar", description="Another one")

    def run(findings: list[Finding]) -> dict:
        log = sarif(findings, dockerfile="Dockerfile", line=1, tool_version="1", image_uri=IMAGE_URI)
        jsonschema.validate(log, SARIF_SCHEMA)
        return log["runs"][0]

    first, again = run([UNNAMED, other, NAMED]), run([NAMED, other, UNNAMED])
    rule_ids = [rule["id"] for rule in first["tool"]["driver"]["rules"]]

    assert rule_ids[0] == "CVE-2024-0008"
    assert all(re.fullmatch(r"unnamed-finding-[0-9a-f]{12}", rule_id) for rule_id in rule_ids[1:])
    assert len(set(rule_ids)) == 3
    # The same finding gets the same id in every run, whatever else the scan found.
    assert rule_ids == [rule["id"] for rule in again["tool"]["driver"]["rules"]]
    assert (
        rule_ids[1]
        == "unnamed-finding-"
        + hashlib.sha256("\0".join((UNNAMED.title, UNNAMED.description, UNNAMED.uri)).encode()).hexdigest()[:12]
    )
    unnamed_rule = first["tool"]["driver"]["rules"][1]
    assert unnamed_rule["shortDescription"] == {"text": "Heap overflow in the parser"}
    unnamed_result = first["results"][1]
    assert unnamed_result["ruleId"] == rule_ids[1]
    assert unnamed_result["message"]["text"] == (
        f"(unnamed vulnerability) (CRITICAL) in (unknown package) of image {IMAGE_URI}: no fix yet."
    )
    fingerprints = [result["partialFingerprints"]["ecrActionFinding/v1"] for result in first["results"]]
    assert len(set(fingerprints)) == 3


# Job summary.


def scan_report(findings: list[Finding], **gate_options: object) -> ScanReport:
    return ScanReport(
        image_uri=IMAGE_URI,
        digest=DIGEST,
        scan_status="COMPLETE",
        findings=tuple(findings),
        verdict=evaluate(findings, **gate_options),  # type: ignore[arg-type]
        tags=("abc1234", "latest"),
        timings={"build": 61.25, "push": 8.0, "scan": 30.5},
        warnings=("The ignore of CVE-1 expired on 2025-01-01 (reason given: a <b>|c</b>); it counts again.",),
    )


def test_summary_shows_image_counts_gate_ignores_and_timings() -> None:
    ignores = resolve_ignores(
        [], [IgnoreEntry("CVE-2024-0003", "not reachable | <b>really</b>")], today=datetime.date(2025, 6, 1)
    )

    markdown = summary_markdown(scan_report(HOSTILE, fail_on=Severity.HIGH, ignores=ignores))

    assert markdown.startswith("## ecr-action: gate failed ❌\n")
    assert f"- **Image:** `{IMAGE_URI}`" in markdown
    assert f"- **Digest:** `{DIGEST}`" in markdown
    assert "- **Tags:** `abc1234`, `latest`" in markdown
    assert "- **Scan:** COMPLETE (basic scanning)" in markdown
    assert (
        "| CRITICAL | HIGH | MEDIUM | LOW | INFORMATIONAL | UNTRIAGED | Total |\n"
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n"
        "| 1 | 1 | 0 | 0 | 0 | 1 | 3 |\n"
    ) in markdown
    assert "**Gate** (fail-on: HIGH): 2 findings at or above HIGH (1 CRITICAL, 1 HIGH) after 1 ignored" in markdown
    assert "| CVE-2024-0003 | libc6 | not reachable \\| &lt;b&gt;really&lt;/b&gt; |" in markdown
    assert "| build | 61.2 |\n| push | 8.0 |\n| scan | 30.5 |\n| **total** | **99.8** |" in markdown
    assert (
        "> [!WARNING]\n> The ignore of CVE-1 expired on 2025-01-01 (reason given: a &lt;b&gt;\\|c&lt;/b&gt;)"
        in markdown
    )


def test_summary_shows_the_gates_warnings() -> None:
    basic = Finding("CVE-1", Severity.CRITICAL, package="openssl", kind=ScanKind.BASIC)
    report = scan_report([basic], fail_on=Severity.HIGH, fixable_only=True, declared_counts={Severity.HIGH: 2})

    markdown = summary_markdown(report)

    assert len(report.verdict.warnings) == 2
    warnings = [line for line in markdown.splitlines() if line.startswith("> ") and "ECR" in line]
    assert warnings[0].startswith("> ECR's basic scanning gives no fix data, so \\`fail-on-fixable-only\\`")
    assert warnings[1].startswith("> ECR's scan summary (findingSeverityCounts) reports 2 HIGH findings, but only 0")
    assert (
        "**Gate** (fail-on: HIGH): 1 finding at or above HIGH (1 CRITICAL); "
        "ECR reported 2 HIGH findings but only 0 could be read"
    ) in markdown


def test_summary_escapes_hostile_finding_text() -> None:
    markdown = summary_markdown(scan_report(HOSTILE, fail_on=Severity.HIGH))

    rows = [line for line in markdown.splitlines() if line.startswith("| CRITICAL |") and "CVE" in line]
    assert rows == [
        "| CRITICAL | [CVE-2024-0001](https://security-tracker.debian.org/tracker/CVE-2024-0001) "
        "| evil,pkg:name ::error::owned | 1.0%0A::warning::x | no fix yet | 10 | fails |"
    ]
    # Every finding row has exactly its 8 cell borders: nothing in the data split a cell.
    finding_rows = [line for line in markdown.splitlines() if "CVE-2024-000" in line and line.startswith("|")]
    assert [len(re.findall(r"(?<!\\)\|", row)) for row in finding_rows] == [8] * 4
    assert "| MEDIUM | CVE-2024-0003 | libc6 |" in markdown  # `javascript:` is no link


def test_summary_of_10000_findings_is_truncated_cleanly_under_1_mib() -> None:
    markdown = summary_markdown(scan_report(many_findings(10_000), fail_on=Severity.HIGH))

    assert len(markdown.encode("utf-8")) < 1024 * 1024
    last_row, blank, note = markdown.splitlines()[-3:]
    assert last_row.startswith("| ") and last_row.endswith(" |")
    assert blank == ""
    shown = sum(1 for line in markdown.splitlines() if line.startswith("| ") and "CVE-2024-" in line)
    assert note == (
        f"_Summary truncated to stay under GitHub's 1 MiB limit: {10_000 - shown:,} more findings not shown. "
        "The SARIF file (`sarif-file`) and the ECR console list them all._"
    )


def test_summary_within_limit_is_not_truncated() -> None:
    markdown = summary_markdown(scan_report(ENHANCED, fail_on=None))

    assert markdown.startswith("## ecr-action: gate off\n")
    assert "truncated" not in markdown
    assert markdown.count("| CVE-2022-37434") == 0  # ids are links
    assert markdown.count("[CVE-2022-37434](https://nvd.nist.gov/vuln/detail/CVE-2022-37434)") == 2


# SARIF.


def test_sarif_of_hostile_findings_is_valid_and_complete() -> None:
    log = sarif(
        HOSTILE + ENHANCED, dockerfile="docker/my app/Dockerfile", line=4, tool_version="1.2.3", image_uri=IMAGE_URI
    )

    jsonschema.validate(log, SARIF_SCHEMA)
    run = log["runs"][0]
    assert run["tool"]["driver"]["name"] == "ecr-action"
    assert run["tool"]["driver"]["version"] == "1.2.3"
    rules = {rule["id"]: rule for rule in run["tool"]["driver"]["rules"]}
    assert len(rules) == 7  # one per vulnerability id; CVE-2022-37434 has two packages
    assert len(run["results"]) == 8
    assert rules["CVE-2022-37434"]["properties"] == {
        "security-severity": "9.5",
        "tags": ["security", "vulnerability"],
    }
    assert rules["CVE-2024-0002"]["helpUri"] == "https://security-tracker.debian.org/tracker/CVE-2024-0002"
    assert "helpUri" not in rules["CVE-2024-0003"]  # javascript: is not a help page
    for result in run["results"]:
        assert run["tool"]["driver"]["rules"][result["ruleIndex"]]["id"] == result["ruleId"]
        assert result["locations"][0]["physicalLocation"] == {
            "artifactLocation": {"uri": "docker/my%20app/Dockerfile"},
            "region": {"startLine": 4},
        }
    assert [result["level"] for result in run["results"]] == [
        "error",
        "error",
        "error",
        "error",
        "warning",
        "warning",
        "note",
        "note",
    ]


def test_sarif_fingerprints_are_stable_per_vulnerability_package_and_version() -> None:
    def fingerprints(findings: list[Finding]) -> list[str]:
        log = sarif(findings, dockerfile="Dockerfile", line=1, tool_version="1", image_uri=IMAGE_URI)
        return [result["partialFingerprints"]["ecrActionFinding/v1"] for result in log["runs"][0]["results"]]

    base = Finding("CVE-1", Severity.HIGH, package="openssl", installed_version="3.0.1", description="old")
    same = Finding("CVE-1", Severity.CRITICAL, package="openssl", installed_version="3.0.1", description="new")
    upgraded = Finding("CVE-1", Severity.HIGH, package="openssl", installed_version="3.0.2")

    assert fingerprints([base]) == fingerprints([same])
    assert fingerprints([base]) != fingerprints([upgraded])


def shape(value: object, key: str = "") -> object:
    """What the SARIF schema's verdict depends on: keys, types, and the values of enumerations."""
    if isinstance(value, dict):
        return tuple(sorted((name, shape(item, name)) for name, item in value.items()))
    if isinstance(value, list):
        return tuple(sorted({shape(item) for item in value}, key=repr))
    if isinstance(value, str) and key in {"level", "version", "$schema"}:
        return value
    return type(value).__name__


def test_sarif_of_10000_findings_is_valid() -> None:
    """Schema validation of 10,000 results takes minutes (`uniqueItems` on rules is quadratic), so one
    result and one rule of each shape are validated, and rule ids are checked unique separately."""
    log = sarif(many_findings(10_000), dockerfile="Dockerfile", line=1, tool_version="1", image_uri=IMAGE_URI)
    run = log["runs"][0]
    rules, results = run["tool"]["driver"]["rules"], run["results"]
    sample = {**run, "results": list({shape(result): result for result in results}.values())}
    sample["tool"] = {
        "driver": {**run["tool"]["driver"], "rules": list({shape(rule): rule for rule in rules}.values())}
    }

    jsonschema.validate({**log, "runs": [sample]}, SARIF_SCHEMA)
    assert len(results) == 10_000
    assert len({rule["id"] for rule in rules}) == len(rules) == 10_000
    assert all(rules[result["ruleIndex"]]["id"] == result["ruleId"] for result in results)
    # GitHub's upload limit is 10 MB of gzip-compressed SARIF.
    assert len(gzip.compress(json.dumps(log).encode())) < 10_000_000


def test_sarif_past_githubs_cap_says_so() -> None:
    findings = many_findings(SARIF_MAX_RESULTS + 7)
    log = sarif(findings, dockerfile="Dockerfile", line=1, tool_version="1", image_uri=IMAGE_URI)
    run = log["runs"][0]
    notice = (
        "25,007 findings: this file lists the 25,000 most severe, as GitHub's code scanning takes no more results "
        "per run. The ECR console lists them all."
    )

    assert len(run["results"]) == SARIF_MAX_RESULTS
    assert run["properties"] == {
        "imageUri": IMAGE_URI,
        "findingsTotal": SARIF_MAX_RESULTS + 7,
        "resultsLimit": SARIF_MAX_RESULTS,
    }
    assert run["invocations"] == [
        {"executionSuccessful": True, "toolExecutionNotifications": [{"level": "warning", "message": {"text": notice}}]}
    ]
    jsonschema.validate(
        {
            **log,
            "runs": [
                {
                    **run,
                    "results": run["results"][:1],
                    "tool": {"driver": {**run["tool"]["driver"], "rules": run["tool"]["driver"]["rules"][:1]}},
                }
            ],
        },
        SARIF_SCHEMA,
    )
    # Below the cap, nothing is said.
    small = sarif(findings[:3], dockerfile="Dockerfile", line=1, tool_version="1", image_uri=IMAGE_URI)["runs"][0]
    assert "invocations" not in small and small["properties"] == {"imageUri": IMAGE_URI}


def test_summary_says_the_sarif_file_is_capped() -> None:
    markdown = summary_markdown(scan_report(many_findings(SARIF_MAX_RESULTS + 7), fail_on=Severity.HIGH))

    assert markdown.splitlines()[-1].endswith(
        "more findings not shown. The SARIF file (`sarif-file`) lists the 25,000 most severe, as GitHub's code "
        "scanning takes no more; the ECR console lists them all._"
    )


# Outputs.


def test_output_values() -> None:
    verdict = evaluate(HOSTILE, fail_on=Severity.CRITICAL)

    assert output_values(verdict) == {
        "findings": '{"CRITICAL":1,"HIGH":1,"MEDIUM":1,"LOW":0,"INFORMATIONAL":0,"UNTRIAGED":1}',
        "findings-total": "4",
        "gate": "fail",
    }


# Image indexes: a row per platform, and every finding naming its platforms.

AMD64_DIGEST, ARM64_DIGEST = "sha256:" + "2" * 64, "sha256:" + "3" * 64
BOTH = ("linux/amd64", "linux/arm64")
PLATFORM_FINDINGS = [
    Finding("CVE-2024-0100", Severity.CRITICAL, package="openssl", installed_version="3.0.2", platforms=BOTH),
    Finding("CVE-2024-0101", Severity.HIGH, package="glibc", installed_version="2.36", platforms=BOTH[1:]),
    Finding("CVE-2024-0102", Severity.LOW, package="zlib", installed_version="1.2", platforms=BOTH[:1]),
]
PLATFORMS = (
    PlatformScan("linux/amd64", AMD64_DIGEST, "COMPLETE", {Severity.CRITICAL: 1, Severity.LOW: 1}),
    PlatformScan("linux/arm64", ARM64_DIGEST, "COMPLETE", {Severity.CRITICAL: 1, Severity.HIGH: 1}),
)


def test_summary_of_an_index_has_a_row_per_platform() -> None:
    verdict = evaluate(PLATFORM_FINDINGS, fail_on=Severity.HIGH)
    report = ScanReport(IMAGE_URI, DIGEST, "COMPLETE", tuple(PLATFORM_FINDINGS), verdict, platforms=PLATFORMS)

    markdown = summary_markdown(report)

    assert (
        "| CRITICAL | HIGH | MEDIUM | LOW | INFORMATIONAL | UNTRIAGED | Total |\n"
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n"
        "| 1 | 1 | 0 | 1 | 0 | 0 | 3 |\n"
    ) in markdown
    assert (
        "**Gate** (fail-on: HIGH): 2 findings at or above HIGH (1 CRITICAL, 1 HIGH) on linux/amd64 and linux/arm64\n"
        "\n"
        "### Platforms\n"
        "\n"
        "| Platform | Digest | Scan | CRITICAL | HIGH | MEDIUM | LOW | INFORMATIONAL | UNTRIAGED | Total | Gate |\n"
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n"
        f"| linux/amd64 | `{AMD64_DIGEST}` | COMPLETE | 1 | 0 | 0 | 1 | 0 | 0 | 2 | fails |\n"
        f"| linux/arm64 | `{ARM64_DIGEST}` | COMPLETE | 1 | 1 | 0 | 0 | 0 | 0 | 2 | fails |\n"
    ) in markdown
    assert (
        "| Severity | Vulnerability | Package | Installed | Fixed in | CVSS | Platforms | Gate |\n"
        "| --- | --- | --- | --- | --- | --- | --- | --- |\n"
        "| CRITICAL | CVE-2024-0100 | openssl | 3.0.2 | no fix yet |  | linux/amd64, linux/arm64 | fails |\n"
        "| HIGH | CVE-2024-0101 | glibc | 2.36 | no fix yet |  | linux/arm64 | fails |\n"
        "| LOW | CVE-2024-0102 | zlib | 1.2 | no fix yet |  | linux/amd64 |  |\n"
    ) in markdown


def test_summary_platform_rows_count_after_ignores_and_show_only_failing_platforms() -> None:
    ignores = resolve_ignores(["CVE-2024-0100"], [], today=datetime.date(2025, 6, 1))
    verdict = evaluate(PLATFORM_FINDINGS, fail_on=Severity.HIGH, ignores=ignores)
    report = ScanReport(IMAGE_URI, DIGEST, "COMPLETE", tuple(PLATFORM_FINDINGS), verdict, platforms=PLATFORMS)

    rows = [line for line in summary_markdown(report).splitlines() if line.startswith("| linux/")]

    assert rows == [
        f"| linux/amd64 | `{AMD64_DIGEST}` | COMPLETE | 0 | 0 | 0 | 1 | 0 | 0 | 1 |  |",
        f"| linux/arm64 | `{ARM64_DIGEST}` | COMPLETE | 0 | 1 | 0 | 0 | 0 | 0 | 1 | fails |",
    ]


def test_annotations_name_the_platforms_of_each_finding() -> None:
    verdict = evaluate(PLATFORM_FINDINGS, fail_on=Severity.HIGH)

    shown = annotations(PLATFORM_FINDINGS, verdict, dockerfile="Dockerfile", line=2, limit=10)

    assert shown == [
        Annotation(
            "error",
            "CVE-2024-0100 in openssl (linux/amd64, linux/arm64)",
            "CRITICAL: openssl 3.0.2 → no fix yet",
            "Dockerfile",
            2,
        ),
        Annotation("error", "CVE-2024-0101 in glibc (linux/arm64)", "HIGH: glibc 2.36 → no fix yet", "Dockerfile", 2),
        Annotation("notice", "CVE-2024-0102 in zlib (linux/amd64)", "LOW: zlib 1.2 → no fix yet", "Dockerfile", 2),
    ]


def test_sarif_names_the_platforms_of_each_finding() -> None:
    log = sarif(PLATFORM_FINDINGS, dockerfile="Dockerfile", line=1, tool_version="1", image_uri=IMAGE_URI)

    jsonschema.validate(log, SARIF_SCHEMA)
    results = log["runs"][0]["results"]
    assert [result["message"]["text"] for result in results] == [
        f"CVE-2024-0100 (CRITICAL) in openssl 3.0.2 of image {IMAGE_URI} (linux/amd64, linux/arm64): no fix yet.",
        f"CVE-2024-0101 (HIGH) in glibc 2.36 of image {IMAGE_URI} (linux/arm64): no fix yet.",
        f"CVE-2024-0102 (LOW) in zlib 1.2 of image {IMAGE_URI} (linux/amd64): no fix yet.",
    ]
    assert [result["properties"]["platforms"] for result in results] == [list(BOTH), ["linux/arm64"], ["linux/amd64"]]
    # The alert stays the same one whichever platforms have the finding.
    single = sarif(
        [replace(PLATFORM_FINDINGS[0], platforms=())], dockerfile="D", line=1, tool_version="1", image_uri=""
    )
    assert "platforms" not in single["runs"][0]["results"][0]["properties"]
    assert single["runs"][0]["results"][0]["partialFingerprints"] == results[0]["partialFingerprints"]
