from __future__ import annotations

import json
from pathlib import Path

import pytest

from ecr_action.findings import Finding, ScanKind, Severity, findings_from_page

FIXTURES = Path(__file__).parent / "fixtures"


def page(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def test_basic_findings_keep_hostile_text_verbatim() -> None:
    findings = findings_from_page(page("ecr_basic_findings.json"))

    assert [finding.vulnerability_id for finding in findings] == [
        "CVE-2024-0001",
        "CVE-2024-0002",
        "CVE-2024-0003",
        "CVE-2024-0004",
    ]
    assert findings[0] == Finding(
        vulnerability_id="CVE-2024-0001",
        severity=Severity.CRITICAL,
        package="evil,pkg:name\r\n::error::owned",
        installed_version="1.0%0A::warning::x",
        uri="https://security-tracker.debian.org/tracker/CVE-2024-0001",
        description="Heap overflow.\nLine two with ::error::injected and 100% sure",
        cvss_score=10.0,
        kind=ScanKind.BASIC,
    )


def test_basic_findings_prefer_cvss3_and_have_no_fix() -> None:
    openssl, libc, unknown = findings_from_page(page("ecr_basic_findings.json"))[1:]

    assert openssl.cvss_score == 7.5
    assert not openssl.fixable
    assert (libc.severity, libc.cvss_score) == (Severity.MEDIUM, None)
    assert (unknown.severity, unknown.package) == (Severity.UNTRIAGED, "")


def test_enhanced_findings_one_per_vulnerable_package() -> None:
    findings = findings_from_page(page("ecr_enhanced_findings.json"))

    assert [(finding.vulnerability_id, finding.package) for finding in findings] == [
        ("CVE-2022-37434", "zlib1g"),
        ("CVE-2022-37434", "zlib,dev:headers"),
        ("GHSA-abcd-efgh-ijkl", "left-pad"),
        ("CVE-2023-5555", ""),
    ]
    zlib = findings[0]
    assert zlib == Finding(
        vulnerability_id="CVE-2022-37434",
        severity=Severity.CRITICAL,
        package="zlib1g",
        installed_version="1:1.2.13.dfsg-3",
        fixed_version="1:1.2.13.dfsg-4",
        uri="https://nvd.nist.gov/vuln/detail/CVE-2022-37434",
        title="CVE-2022-37434 - zlib1g, zlib,dev:headers",
        description="A flaw in zlib's inflate.\n::error file=x,line=1::forged\nProgress: 100%",
        cvss_score=9.8,
        remediation="Upgrade zlib1g to 1:1.2.13.dfsg-4.\nThen rebuild.",
        kind=ScanKind.ENHANCED,
    )


@pytest.mark.parametrize(
    ("index", "installed", "fixed", "cvss", "uri"),
    [
        # Epoch 0 is left out; Inspector's "NotAvailable" means no fix.
        (1, "1.2.13", "", 9.8, "https://nvd.nist.gov/vuln/detail/CVE-2022-37434"),
        # No CVSS list: Inspector's own score; no sourceUrl: the first reference.
        (2, "1.1.0", "1.3.0", 5.3, "https://github.com/advisories/GHSA-abcd-efgh-ijkl"),
        # No package details at all: still one finding, so it is counted.
        (3, "", "", None, ""),
    ],
)
def test_enhanced_finding_details(index: int, installed: str, fixed: str, cvss: float | None, uri: str) -> None:
    finding = findings_from_page(page("ecr_enhanced_findings.json"))[index]

    assert (finding.installed_version, finding.fixed_version, finding.cvss_score, finding.uri) == (
        installed,
        fixed,
        cvss,
        uri,
    )


def test_suppressed_enhanced_findings_are_left_out() -> None:
    ids = {finding.vulnerability_id for finding in findings_from_page(page("ecr_enhanced_findings.json"))}

    assert "CVE-2020-9999" not in ids


@pytest.mark.parametrize(
    "response",
    [{}, {"imageScanFindings": {}}, {"imageScanFindings": {"findings": [], "enhancedFindings": []}}],
)
def test_pages_without_findings(response: dict) -> None:
    assert findings_from_page(response) == []


def test_severity_comes_from_each_finding_not_the_page_summary() -> None:
    response = page("ecr_basic_findings.json")
    response["imageScanFindings"]["findingSeverityCounts"] = {"CRITICAL": 99}

    severities = [finding.severity for finding in findings_from_page(response)]

    assert severities.count(Severity.CRITICAL) == 1
