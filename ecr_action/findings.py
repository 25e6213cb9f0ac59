"""Vulnerability findings as the rest of the action sees them, whichever ECR scanning produced them."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Severity(enum.IntEnum):
    """ECR's severities, ordered so that `>=` means "at least as severe"."""

    UNTRIAGED = 0
    INFORMATIONAL = 1
    LOW = 2
    MEDIUM = 3
    HIGH = 4
    CRITICAL = 5

    @classmethod
    def parse(cls, text: str) -> Severity:
        """ECR's spelling (any case); unknown values count as UNTRIAGED, as ECR itself does."""
        return cls.__members__.get(text.strip().upper(), cls.UNTRIAGED)


class ScanKind(enum.StrEnum):
    BASIC = "basic"
    ENHANCED = "enhanced"


@dataclass(frozen=True, slots=True)
class Finding:
    """One vulnerability in one package of the image: of each platform image that has it, for an index."""

    vulnerability_id: str  # CVE id or vendor advisory id
    severity: Severity
    package: str = ""
    installed_version: str = ""
    fixed_version: str = ""  # empty: no fix is known
    uri: str = ""
    title: str = ""
    description: str = ""
    cvss_score: float | None = None
    remediation: str = ""
    kind: ScanKind = ScanKind.BASIC
    # The platforms (`linux/arm64`) of an image index whose images have it; empty for a single-platform image.
    platforms: tuple[str, ...] = ()

    @property
    def fixable(self) -> bool:
        return bool(self.fixed_version)


# Inspector writes this instead of leaving `fixedInVersion` out when no fixed release exists.
_NO_FIX = "notavailable"
# Inspector statuses of findings that no longer apply: fixed since, or suppressed by the user's rules.
_INACTIVE_STATUSES = frozenset({"CLOSED", "SUPPRESSED"})


def findings_from_page(page: dict) -> list[Finding]:
    """The findings of one `describe_image_scan_findings` response page, basic and enhanced alike.

    Severities are counted from these findings, never from `findingSeverityCounts`, which is not
    reliable across pages.
    """
    scan_findings = page.get("imageScanFindings") or {}
    basic = [_basic_finding(item) for item in scan_findings.get("findings") or ()]
    enhanced = [
        finding
        for item in scan_findings.get("enhancedFindings") or ()
        if str(item.get("status", "")).upper() not in _INACTIVE_STATUSES
        for finding in _enhanced_findings(item)
    ]
    return basic + enhanced


def _basic_finding(item: dict) -> Finding:
    attributes = {attr.get("key", ""): attr.get("value", "") for attr in item.get("attributes") or ()}
    return Finding(
        vulnerability_id=str(item.get("name", "")),
        severity=Severity.parse(str(item.get("severity", ""))),
        package=attributes.get("package_name", ""),
        installed_version=attributes.get("package_version", ""),
        uri=str(item.get("uri", "")),
        description=str(item.get("description", "")),
        cvss_score=_score(attributes.get("CVSS3_SCORE")) or _score(attributes.get("CVSS2_SCORE")),
        kind=ScanKind.BASIC,
    )


def _enhanced_findings(item: dict) -> list[Finding]:
    """One finding per vulnerable package: each is fixed (or not) on its own."""
    details = item.get("packageVulnerabilityDetails") or {}
    vulnerability_id = str(details.get("vulnerabilityId") or item.get("title", ""))
    reference_urls = details.get("referenceUrls") or []
    uri = str(details.get("sourceUrl") or (reference_urls[0] if reference_urls else ""))
    recommendation = (item.get("remediation") or {}).get("recommendation") or {}
    shared = {
        "vulnerability_id": vulnerability_id,
        "severity": Severity.parse(str(item.get("severity", ""))),
        "uri": uri,
        "title": str(item.get("title", "")),
        "description": str(item.get("description", "")),
        "cvss_score": _enhanced_score(item),
        "remediation": str(recommendation.get("text", "")),
        "kind": ScanKind.ENHANCED,
    }
    packages = details.get("vulnerablePackages") or [{}]
    return [
        Finding(
            package=str(package.get("name", "")),
            installed_version=_full_version(package),
            fixed_version=_fixed_version(package),
            **shared,
        )
        for package in packages
    ]


def _full_version(package: dict) -> str:
    """`epoch:version-release` as the package manager prints it; epoch 0 is left out, as dpkg does."""
    version = str(package.get("version", ""))
    if package.get("release"):
        version = f"{version}-{package['release']}"
    if package.get("epoch"):
        version = f"{package['epoch']}:{version}"
    return version


def _fixed_version(package: dict) -> str:
    fixed = str(package.get("fixedInVersion", "")).strip()
    return "" if fixed.lower() == _NO_FIX else fixed


def _enhanced_score(item: dict) -> float | None:
    """Inspector's own score when given, else the newest CVSS version's base score."""
    scored = ((item.get("scoreDetails") or {}).get("cvss") or {}).get("score", item.get("score"))
    if scored is not None:
        return _score(scored)
    cvss_list = (item.get("packageVulnerabilityDetails") or {}).get("cvss") or []
    if not cvss_list:
        return None
    return _score(max(cvss_list, key=lambda cvss: str(cvss.get("version", ""))).get("baseScore"))


def _score(value: str | float | None) -> float | None:
    """A CVSS score from ECR's text or number; absent or unreadable is None, not 0."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
