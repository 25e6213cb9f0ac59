"""SARIF 2.1.0 for GitHub's code scanning (`github/codeql-action/upload-sarif`), and its file.

Pure but for `write_sarif`, the stage's edge.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import quote

from ecr_action.findings import Finding, Severity
from ecr_action.gate import plural
from ecr_action.report import (
    SARIF_MAX_RESULTS,
    finding_name,
    installed_text,
    most_severe_first,
    platforms_text,
    web_url,
)

# The `id` of the official OASIS schema (errata 01), which GitHub accepts.
SARIF_SCHEMA_URI = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
TOOL_NAME = "ecr-action"
TOOL_INFORMATION_URI = "https://github.com/your-org/ecr-action"  # the repository, as in examples/

# GitHub's code scanning ranks by `security-severity` (critical >= 9.0, high >= 7.0, medium >= 4.0,
# low > 0); a number per ECR severity keeps its ranking the same as ECR's label, which CVSS may not.
_SECURITY_SEVERITY = {
    Severity.CRITICAL: "9.5",
    Severity.HIGH: "8.0",
    Severity.MEDIUM: "5.5",
    Severity.LOW: "2.0",
    Severity.INFORMATIONAL: "0.0",
    Severity.UNTRIAGED: "0.0",
}
_SARIF_LEVEL = {Severity.CRITICAL: "error", Severity.HIGH: "error", Severity.MEDIUM: "warning"}


def sarif(findings: Iterable[Finding], *, dockerfile: str, line: int, tool_version: str, image_uri: str) -> dict:
    """A SARIF 2.1.0 log for `github/codeql-action/upload-sarif`: one rule per vulnerability, one
    result per finding, each located at the Dockerfile's final `FROM`. Past GitHub's cap, the most severe
    findings, and the run says so (its properties, and a tool notification)."""
    ranked = most_severe_first(findings)
    included = ranked[:SARIF_MAX_RESULTS]
    rule_index: dict[str, int] = {}
    rules: list[dict] = []
    for finding in included:
        if sarif_rule_id(finding) not in rule_index:
            # Most severe first, so a vulnerability's rule takes its highest severity.
            rule_index[sarif_rule_id(finding)] = len(rules)
            rules.append(_sarif_rule(finding))
    location = {
        "physicalLocation": {
            "artifactLocation": {"uri": quote(dockerfile.replace("\\", "/"))},
            "region": {"startLine": max(line, 1)},
        }
    }
    results = [_sarif_result(finding, rule_index[sarif_rule_id(finding)], location, image_uri) for finding in included]
    run: dict = {
        "tool": {
            "driver": {
                "name": TOOL_NAME,
                "version": tool_version,
                "informationUri": TOOL_INFORMATION_URI,
                "rules": rules,
            }
        },
        "results": results,
        "properties": {"imageUri": image_uri},
    }
    if len(ranked) > len(included):
        run["properties"] |= {"findingsTotal": len(ranked), "resultsLimit": SARIF_MAX_RESULTS}
        notice = (
            f"{plural(len(ranked), 'finding')}: this file lists the {SARIF_MAX_RESULTS:,} most severe, as GitHub's "
            "code scanning takes no more results per run. The ECR console lists them all."
        )
        run["invocations"] = [
            {
                "executionSuccessful": True,
                "toolExecutionNotifications": [{"level": "warning", "message": {"text": notice}}],
            }
        ]
    return {"$schema": SARIF_SCHEMA_URI, "version": "2.1.0", "runs": [run]}


def _sarif_level(severity: Severity) -> str:
    return _SARIF_LEVEL.get(severity, "note")


def sarif_rule_id(finding: Finding) -> str:
    """The vulnerability id; without one, an id made from what ECR said about the vulnerability (not the
    package, not the severity, which can change), so the same finding keeps its code scanning alert."""
    if finding.vulnerability_id:
        return finding.vulnerability_id
    about = "\0".join((finding.title, finding.description, finding.uri))
    return f"unnamed-finding-{hashlib.sha256(about.encode()).hexdigest()[:12]}"


def _sarif_rule(finding: Finding) -> dict:
    summary = finding.title or finding_name(finding)
    rule = {
        "id": sarif_rule_id(finding),
        "shortDescription": {"text": summary},
        "fullDescription": {"text": finding.description or summary},
        "help": {"text": finding.remediation or finding.uri or summary},
        "defaultConfiguration": {"level": _sarif_level(finding.severity)},
        "properties": {
            "security-severity": _SECURITY_SEVERITY[finding.severity],
            "tags": ["security", "vulnerability"],
        },
    }
    if web_url(finding.uri):
        rule["helpUri"] = finding.uri
    return rule


def _sarif_result(finding: Finding, rule_index: int, location: dict, image_uri: str) -> dict:
    fix = f"fixed in {finding.fixed_version}" if finding.fixed_version else "no fix yet"
    # Without the platforms: the alert stays the same one when a platform is added or dropped.
    fingerprint = "\0".join((sarif_rule_id(finding), finding.package, finding.installed_version))
    properties: dict[str, str | list[str]] = {
        "package": finding.package,
        "installedVersion": finding.installed_version,
        "fixedVersion": finding.fixed_version,
        "scanKind": finding.kind.value,
    }
    if finding.platforms:
        properties["platforms"] = list(finding.platforms)
    return {
        "ruleId": sarif_rule_id(finding),
        "ruleIndex": rule_index,
        "level": _sarif_level(finding.severity),
        "message": {
            "text": f"{finding_name(finding)} ({finding.severity.name}) in {installed_text(finding)} of image "
            f"{image_uri}{platforms_text(finding)}: {fix}."
        },
        "locations": [location],
        "partialFingerprints": {"ecrActionFinding/v1": hashlib.sha256(fingerprint.encode()).hexdigest()},
        "properties": properties,
    }


def write_sarif(path: Path, document: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document), encoding="utf-8")
