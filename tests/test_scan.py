"""Waiting for ECR's scan: every status, the deadline, pages, OCI indexes, the baseline.

Unit tests drive `wait_for_scan` with a scripted fake ECR and a fake clock; the tests marked `stack`
run it against the local ECR with real sleeps.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from ecr_action.errors import AccessDeniedError, AwsCallError, ScanFailedError, ScanTimeoutError
from ecr_action.findings import ScanKind, Severity, findings_from_page
from ecr_action.inputs.choices import ScanMode, ScanUnavailable
from ecr_action.scan import (
    FINDINGS_PAGE_SIZE,
    ON_PUSH_GRACE_SECONDS,
    SKIPPED,
    PlatformScan,
    ScanRequest,
    baseline_findings,
    tagged_digest,
    wait_for_scan,
)
from stack.apps import write_app
from stack.client import StackClient
from tests.helpers import build_and_push

FIXTURES = Path(__file__).parent / "fixtures"
DIGEST = "sha256:" + "a" * 64
INDEX_DIGEST = "sha256:" + "1" * 64
AMD64_DIGEST = "sha256:" + "2" * 64
ARM64_DIGEST = "sha256:" + "3" * 64
ATTESTATION_DIGEST = "sha256:" + "4" * 64
IMAGE_TYPE = "application/vnd.oci.image.manifest.v1+json"
INDEX_TYPE = "application/vnd.oci.image.index.v1+json"


def basic_finding(cve: str, severity: str = "HIGH", package: str = "openssl") -> dict[str, Any]:
    return {"name": cve, "severity": severity, "attributes": [{"key": "package_name", "value": package}]}


def scan_page(status: str, findings: list[dict] | None = None, **extra: Any) -> dict[str, Any]:
    page: dict[str, Any] = {"imageScanStatus": {"status": status, "description": f"ECR says {status}"}}
    if findings is not None:
        page["imageScanFindings"] = {"findings": findings}
    return {**page, **extra}


IN_PROGRESS = scan_page("IN_PROGRESS")
COMPLETE = scan_page("COMPLETE", [basic_finding("CVE-2024-0001")])


class FakeEcr:
    """ECR answering from a script: each DescribeImageScanFindings of a digest takes that digest's next
    answer (the last one repeats); an answer that is a string is raised as that AWS error code."""

    def __init__(
        self,
        scans: dict[str, list[Any]],
        *,
        media_types: dict[str, str] | None = None,
        tags: dict[str, str] | None = None,
        manifests: dict[str, dict] | None = None,
        start_error: str = "",
    ) -> None:
        self.scans = {digest: list(answers) for digest, answers in scans.items()}
        self.media_types = media_types or {}
        self.tags = tags or {}
        self.manifests = manifests or {}
        self.start_error = start_error
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def count(self, operation: str) -> int:
        return sum(1 for name, _ in self.calls if name == operation)

    @staticmethod
    def _error(code: str, operation: str) -> ClientError:
        return ClientError({"Error": {"Code": code, "Message": f"{code} from the fake"}}, operation)

    def describe_images(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("describe_images", kwargs))
        image_id = kwargs["imageIds"][0]
        digest = image_id.get("imageDigest") or self.tags.get(image_id.get("imageTag", ""))
        if digest is None:
            raise self._error("ImageNotFoundException", "DescribeImages")
        media_type = self.media_types.get(digest, IMAGE_TYPE)
        return {"imageDetails": [{"imageDigest": digest, "imageManifestMediaType": media_type}]}

    def batch_get_image(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("batch_get_image", kwargs))
        digest = kwargs["imageIds"][0]["imageDigest"]
        return {"images": [{"imageManifest": json.dumps(self.manifests[digest])}], "failures": []}

    def describe_image_scan_findings(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("describe_image_scan_findings", kwargs))
        answers = self.scans[kwargs["imageId"]["imageDigest"]]
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        if isinstance(answer, str):
            raise self._error(answer, "DescribeImageScanFindings")
        return answer

    def start_image_scan(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("start_image_scan", kwargs))
        if self.start_error:
            raise self._error(self.start_error, "StartImageScan")
        return {"imageScanStatus": {"status": "IN_PROGRESS"}}


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def request(
    mode: ScanMode = ScanMode.ON_PUSH,
    *,
    digest: str = DIGEST,
    timeout: float = 600,
    poll: float = 5,
    registry_id: str | None = None,
) -> ScanRequest:
    return ScanRequest("team/app", registry_id, digest, mode, timeout, poll)


def wait(ecr: Any, scan_request: ScanRequest, fake_time: FakeTime | None = None) -> Any:
    fake_time = fake_time or FakeTime()
    return wait_for_scan(ecr, scan_request, sleep=fake_time.sleep, clock=fake_time.clock)


# Unit tests --------------------------------------------------------------------------------------------
def test_in_progress_then_complete_waits_and_reads_the_findings() -> None:
    ecr = FakeEcr({DIGEST: [IN_PROGRESS, scan_page("PENDING"), COMPLETE]})
    fake_time = FakeTime()

    outcome = wait(ecr, request(), fake_time)

    assert outcome.status == "COMPLETE"
    assert outcome.kind is ScanKind.BASIC
    assert [(f.vulnerability_id, f.severity, f.package) for f in outcome.findings] == [
        ("CVE-2024-0001", Severity.HIGH, "openssl")
    ]
    assert outcome.description == "ECR says COMPLETE"
    assert fake_time.sleeps == [5, 7.5]
    assert outcome.seconds_waited == 12.5
    assert not outcome.started_by_action
    assert ecr.count("start_image_scan") == 0


def test_the_scan_is_found_by_digest_with_the_largest_page() -> None:
    ecr = FakeEcr({DIGEST: [COMPLETE]})
    wait(ecr, request(registry_id="210987654321"))
    assert (
        "describe_image_scan_findings",
        {
            "repositoryName": "team/app",
            "registryId": "210987654321",
            "imageId": {"imageDigest": DIGEST},
            "maxResults": FINDINGS_PAGE_SIZE,
        },
    ) in ecr.calls


def test_active_enhanced_scan_is_ready() -> None:
    enhanced = json.loads((FIXTURES / "ecr_enhanced_findings.json").read_text())
    last_page = {
        "imageScanStatus": enhanced["imageScanStatus"],
        "imageScanFindings": {
            "enhancedFindings": [
                {"packageVulnerabilityDetails": {"vulnerabilityId": "CVE-2025-0002"}, "severity": "LOW"}
            ]
        },
    }
    outcome = wait(FakeEcr({DIGEST: [enhanced, last_page]}), request())
    assert outcome.status == "ACTIVE"
    assert outcome.kind is ScanKind.ENHANCED
    assert outcome.findings == (*findings_from_page(enhanced), *findings_from_page(last_page))


# Every status ECR documents, and one it may add: waited for, read, or no findings to be had.
STATUS_CASES = [
    pytest.param("IN_PROGRESS", "wait", "", id="IN_PROGRESS"),
    pytest.param("PENDING", "wait", "", id="PENDING"),
    pytest.param("COMPLETE", "ready", "", id="COMPLETE"),
    pytest.param("ACTIVE", "ready", "", id="ACTIVE"),
    pytest.param("FAILED", "unavailable", "Push the image again", id="FAILED"),
    pytest.param("UNSUPPORTED_IMAGE", "unavailable", "turn on enhanced scanning", id="UNSUPPORTED_IMAGE"),
    pytest.param(
        "FINDINGS_UNAVAILABLE", "unavailable", "Amazon Inspector no longer holds findings", id="FINDINGS_UNAVAILABLE"
    ),
    pytest.param(
        "SCAN_ELIGIBILITY_EXPIRED", "unavailable", "continuous scanning period", id="SCAN_ELIGIBILITY_EXPIRED"
    ),
    pytest.param("LIMIT_EXCEEDED", "unavailable", "scan quota is used up", id="LIMIT_EXCEEDED"),
    pytest.param("IMAGE_SIZE_EXCEEDED", "unavailable", "larger than ECR can scan", id="IMAGE_SIZE_EXCEEDED"),
    pytest.param("IMAGE_ARCHIVED", "unavailable", "restore the image first", id="IMAGE_ARCHIVED"),
    pytest.param("SOMETHING_NEW", "unavailable", "Check the image in the ECR console", id="unknown"),
]


@pytest.mark.parametrize(("status", "outcome", "advice"), STATUS_CASES)
def test_each_status_fails_closed_unless_warn_is_asked(status: str, outcome: str, advice: str) -> None:
    """fail (the default): a status without findings fails with ECR's words and the fix; warn: it passes
    with no findings and says why; statuses that wait or have findings behave the same either way."""
    for unavailable in ScanUnavailable:
        scan_request = dataclasses.replace(request(timeout=20), unavailable=unavailable)
        ecr = FakeEcr({DIGEST: [IN_PROGRESS, scan_page(status, [] if status in ("COMPLETE", "ACTIVE") else None)]})
        if outcome == "wait":
            with pytest.raises(ScanTimeoutError, match=f"the scan was still {status}"):
                wait(ecr, scan_request)
        elif outcome == "ready":
            assert (wait(ecr, scan_request).status, wait(ecr, scan_request).unavailable) == (status, "")
        elif unavailable is ScanUnavailable.FAIL:
            with pytest.raises(ScanFailedError) as failure:
                wait(ecr, scan_request)
            assert failure.value.status == status
            assert f"team/app@{DIGEST} ended with status {status}: ECR says {status}." in failure.value.message
            assert advice in failure.value.message
            assert failure.value.message.endswith("set `scan-unavailable: warn`.")
        else:
            result = wait(ecr, scan_request)
            assert (result.status, result.kind, result.findings) == (status, None, ())
            assert result.unavailable.startswith(
                f"ECR's scan of team/app@{DIGEST} ended with status {status}: ECR says {status}. No findings to "
                "gate on; passed as `scan-unavailable: warn` asks."
            )
            assert advice in result.unavailable


def test_one_platform_without_findings_leaves_the_index_without_findings() -> None:
    ecr = index_ecr({AMD64_DIGEST: [COMPLETE], ARM64_DIGEST: [scan_page("UNSUPPORTED_IMAGE")]})
    scan_request = dataclasses.replace(request(ScanMode.MANUAL, digest=INDEX_DIGEST), unavailable=ScanUnavailable.WARN)
    outcome = wait(ecr, scan_request)
    assert (outcome.status, outcome.findings) == ("UNSUPPORTED_IMAGE", ())
    assert ARM64_DIGEST in outcome.unavailable


def test_the_deadline_ends_the_wait_with_one_last_look() -> None:
    ecr = FakeEcr({DIGEST: [IN_PROGRESS]})
    fake_time = FakeTime()

    with pytest.raises(ScanTimeoutError) as timeout:
        wait(ecr, request(timeout=60, poll=5), fake_time)

    # 5 + 7.5 + 11.25 + 16.875, then only the 19.375 s left before the deadline.
    assert fake_time.sleeps == [5, 7.5, 11.25, 16.875, 19.375]
    assert fake_time.now == 1060
    assert ecr.count("describe_image_scan_findings") == 6
    message = timeout.value.message
    assert f"Waited 60 s for ECR's scan of team/app@{DIGEST}, and the scan was still IN_PROGRESS" in message
    assert "Raise `scan-timeout` (now 60 s)" in message


def test_the_interval_grows_to_30_seconds_and_never_sleeps_past_the_deadline() -> None:
    fake_time = FakeTime()
    with pytest.raises(ScanTimeoutError):
        wait(FakeEcr({DIGEST: [IN_PROGRESS]}), request(timeout=600, poll=5), fake_time)
    assert fake_time.sleeps[:7] == [5, 7.5, 11.25, 16.875, 25.3125, 30, 30]
    assert max(fake_time.sleeps) == 30
    assert sum(fake_time.sleeps) == 600


def test_manual_mode_starts_a_scan_when_there_is_none() -> None:
    ecr = FakeEcr({DIGEST: ["ScanNotFoundException", IN_PROGRESS, COMPLETE]})
    outcome = wait(ecr, request(ScanMode.MANUAL))
    assert outcome.started_by_action
    assert outcome.status == "COMPLETE"
    assert [call for call in ecr.calls if call[0] == "start_image_scan"] == [
        ("start_image_scan", {"repositoryName": "team/app", "imageId": {"imageDigest": DIGEST}})
    ]


def test_on_push_gives_ecr_a_grace_period_before_starting_the_scan_itself() -> None:
    fake_time = FakeTime()
    started_at: list[float] = []
    ecr = FakeEcr({DIGEST: ["ScanNotFoundException"] * 5 + [COMPLETE]})
    ecr.start_image_scan = lambda **kwargs: started_at.append(fake_time.now) or {}

    outcome = wait(ecr, request(ScanMode.ON_PUSH), fake_time)

    assert outcome.started_by_action
    assert len(started_at) == 1
    assert started_at[0] - 1000 >= ON_PUSH_GRACE_SECONDS


def test_on_push_scan_that_appears_late_is_not_started_again() -> None:
    ecr = FakeEcr({DIGEST: ["ScanNotFoundException", "ScanNotFoundException", IN_PROGRESS, COMPLETE]})
    outcome = wait(ecr, request(ScanMode.ON_PUSH))
    assert not outcome.started_by_action
    assert ecr.count("start_image_scan") == 0


def test_a_scan_already_used_up_today_is_the_one_read() -> None:
    ecr = FakeEcr({DIGEST: ["ScanNotFoundException", COMPLETE]}, start_error="LimitExceededException")
    outcome = wait(ecr, request(ScanMode.MANUAL))
    assert not outcome.started_by_action
    assert outcome.status == "COMPLETE"
    assert ecr.count("start_image_scan") == 1


def test_a_scan_that_never_starts_times_out_saying_so() -> None:
    ecr = FakeEcr({DIGEST: ["ScanNotFoundException"]}, start_error="LimitExceededException")
    with pytest.raises(ScanTimeoutError, match="ECR had not started a scan of it"):
        wait(ecr, request(ScanMode.MANUAL, timeout=30))
    assert ecr.count("start_image_scan") == 1


def test_other_aws_errors_become_the_actions_errors() -> None:
    ecr = FakeEcr({DIGEST: ["AccessDeniedException"]})
    with pytest.raises(AccessDeniedError, match="ecr:DescribeImageScanFindings"):
        wait(ecr, request())


def test_findings_are_read_from_every_page_not_from_the_counts() -> None:
    pages = [
        scan_page(
            "COMPLETE",
            [basic_finding("CVE-1"), basic_finding("CVE-2")],
            nextToken="page-2",
        ),
        scan_page("COMPLETE", [basic_finding("CVE-3", "CRITICAL")], nextToken="page-3"),
        scan_page("COMPLETE", [basic_finding("CVE-4", "LOW")]),
    ]
    pages[0]["imageScanFindings"]["findingSeverityCounts"] = {"HIGH": 2}
    ecr = FakeEcr({DIGEST: pages})

    outcome = wait(ecr, request())

    assert [f.vulnerability_id for f in outcome.findings] == ["CVE-1", "CVE-2", "CVE-3", "CVE-4"]
    tokens = [kwargs.get("nextToken") for name, kwargs in ecr.calls if name == "describe_image_scan_findings"]
    assert tokens == [None, "page-2", "page-3"]


def test_ecrs_own_counts_are_kept_for_the_gate() -> None:
    first = scan_page("COMPLETE", [basic_finding("CVE-1")], nextToken="page-2")
    # ECR's spelling, any case; UNDEFINED and severities it may add are UNTRIAGED.
    first["imageScanFindings"]["findingSeverityCounts"] = {"CRITICAL": 5, "high": 1, "UNDEFINED": 2, "NEW": 1}
    last = scan_page("COMPLETE", [])
    last["imageScanFindings"]["findingSeverityCounts"] = {"LOW": 7}  # only the first page's counts are read

    outcome = wait(FakeEcr({DIGEST: [first, last]}), request())

    assert outcome.declared_counts == {Severity.CRITICAL: 5, Severity.HIGH: 1, Severity.UNTRIAGED: 3}


def test_no_counts_declared() -> None:
    assert wait(FakeEcr({DIGEST: [COMPLETE]}), request()).declared_counts == {}
    assert wait(FakeEcr({}), request(ScanMode.SKIP)).declared_counts == {}


def test_a_repeated_page_token_stops_the_reading() -> None:
    ecr = FakeEcr({DIGEST: [scan_page("COMPLETE", [basic_finding("CVE-1")], nextToken="again")]})
    with pytest.raises(AwsCallError, match="repeated a page token"):
        wait(ecr, request())


def test_skip_makes_no_call() -> None:
    ecr = FakeEcr({})
    outcome = wait(ecr, request(ScanMode.SKIP))
    assert outcome.status == SKIPPED
    assert outcome.findings == ()
    assert outcome.kind is None
    assert ecr.calls == []


AMD64 = {"digest": AMD64_DIGEST, "platform": {"os": "linux", "architecture": "amd64"}}
ARM64 = {"digest": ARM64_DIGEST, "platform": {"os": "linux", "architecture": "arm64"}}
ATTESTATION = {
    "digest": ATTESTATION_DIGEST,
    "platform": {"os": "unknown", "architecture": "unknown"},
    "annotations": {"vnd.docker.reference.type": "attestation-manifest"},
}


def index_ecr(scans: dict[str, list[Any]], manifests: list[dict] | None = None) -> FakeEcr:
    index = {"schemaVersion": 2, "mediaType": INDEX_TYPE, "manifests": manifests or [AMD64, ARM64, ATTESTATION]}
    return FakeEcr(
        scans, media_types={INDEX_DIGEST: INDEX_TYPE}, manifests={INDEX_DIGEST: index}, tags={"main": INDEX_DIGEST}
    )


def looked_at(ecr: FakeEcr) -> list[str]:
    """The digests whose scan was asked for, in order."""
    return [kwargs["imageId"]["imageDigest"] for name, kwargs in ecr.calls if name == "describe_image_scan_findings"]


def test_manual_scan_of_an_index_scans_each_platform_and_merges_the_findings() -> None:
    shared = basic_finding("CVE-SHARED")
    ecr = index_ecr(
        {
            AMD64_DIGEST: ["ScanNotFoundException", scan_page("COMPLETE", [shared, basic_finding("CVE-AMD")])],
            ARM64_DIGEST: ["ScanNotFoundException", scan_page("COMPLETE", [shared, basic_finding("CVE-ARM")])],
        }
    )

    outcome = wait(ecr, request(ScanMode.MANUAL, digest=INDEX_DIGEST))

    assert [f.vulnerability_id for f in outcome.findings] == ["CVE-SHARED", "CVE-AMD", "CVE-ARM"]
    assert outcome.started_by_action
    started = [kwargs["imageId"]["imageDigest"] for name, kwargs in ecr.calls if name == "start_image_scan"]
    assert started == [AMD64_DIGEST, ARM64_DIGEST]


@pytest.mark.parametrize("mode", [ScanMode.ON_PUSH, ScanMode.MANUAL])
def test_an_index_has_a_result_per_platform_and_each_finding_once_with_its_platforms(mode: ScanMode) -> None:
    amd64 = scan_page("COMPLETE", [basic_finding("CVE-SHARED", "CRITICAL"), basic_finding("CVE-AMD")])
    amd64["imageScanFindings"]["findingSeverityCounts"] = {"CRITICAL": 1, "HIGH": 1}
    arm64 = scan_page("COMPLETE", [basic_finding("CVE-ARM", "LOW"), basic_finding("CVE-SHARED", "CRITICAL")])
    arm64["imageScanFindings"]["findingSeverityCounts"] = {"CRITICAL": 1, "LOW": 1}
    ecr = index_ecr({AMD64_DIGEST: [amd64], ARM64_DIGEST: [arm64]})

    outcome = wait(ecr, request(mode, digest=INDEX_DIGEST))

    assert [(f.vulnerability_id, f.severity, f.platforms) for f in outcome.findings] == [
        ("CVE-SHARED", Severity.CRITICAL, ("linux/amd64", "linux/arm64")),
        ("CVE-AMD", Severity.HIGH, ("linux/amd64",)),
        ("CVE-ARM", Severity.LOW, ("linux/arm64",)),
    ]
    assert outcome.platforms == (
        PlatformScan("linux/amd64", AMD64_DIGEST, "COMPLETE", {Severity.CRITICAL: 1, Severity.HIGH: 1}),
        PlatformScan("linux/arm64", ARM64_DIGEST, "COMPLETE", {Severity.CRITICAL: 1, Severity.LOW: 1}),
    )
    # ECR counts nothing for an index: each platform's counts are checked against its own findings.
    assert outcome.declared_counts == {}
    assert (outcome.status, outcome.kind) == ("COMPLETE", ScanKind.BASIC)
    assert ATTESTATION_DIGEST not in looked_at(ecr)
    assert ecr.count("start_image_scan") == 0


def test_on_push_waits_for_each_platforms_scan_at_once() -> None:
    """ECR scans each platform image on push; both are looked at every round, the finished one no more."""
    ecr = index_ecr(
        {
            AMD64_DIGEST: [IN_PROGRESS, COMPLETE],
            ARM64_DIGEST: [IN_PROGRESS, IN_PROGRESS, IN_PROGRESS, COMPLETE],
        }
    )
    fake_time = FakeTime()

    outcome = wait(ecr, request(ScanMode.ON_PUSH, digest=INDEX_DIGEST), fake_time)

    assert looked_at(ecr) == [AMD64_DIGEST, ARM64_DIGEST, AMD64_DIGEST, ARM64_DIGEST, ARM64_DIGEST, ARM64_DIGEST]
    assert fake_time.sleeps == [5, 7.5, 11.25]
    assert outcome.seconds_waited == 23.75
    assert not outcome.started_by_action
    assert ecr.count("start_image_scan") == 0
    assert [scanned.status for scanned in outcome.platforms] == ["COMPLETE", "COMPLETE"]


def test_manual_mode_starts_every_platforms_scan_before_waiting() -> None:
    ecr = index_ecr(
        {AMD64_DIGEST: ["ScanNotFoundException", COMPLETE], ARM64_DIGEST: ["ScanNotFoundException", COMPLETE]}
    )
    fake_time = FakeTime()

    wait(ecr, request(ScanMode.MANUAL, digest=INDEX_DIGEST), fake_time)

    assert [name for name, _ in ecr.calls if name != "describe_images"][:5] == [
        "batch_get_image",
        "describe_image_scan_findings",
        "start_image_scan",
        "describe_image_scan_findings",
        "start_image_scan",
    ]
    assert fake_time.sleeps == [5]


def test_on_push_starts_a_platforms_scan_itself_only_after_the_grace_period() -> None:
    ecr = index_ecr({AMD64_DIGEST: [COMPLETE], ARM64_DIGEST: ["ScanNotFoundException"] * 6 + [COMPLETE]})
    fake_time = FakeTime()
    started_at: list[tuple[str, float]] = []
    ecr.start_image_scan = lambda **kwargs: started_at.append((kwargs["imageId"]["imageDigest"], fake_time.now)) or {}

    outcome = wait(ecr, request(ScanMode.ON_PUSH, digest=INDEX_DIGEST), fake_time)

    assert [digest for digest, _ in started_at] == [ARM64_DIGEST]
    assert started_at[0][1] - 1000 >= ON_PUSH_GRACE_SECONDS
    assert outcome.started_by_action


@pytest.mark.parametrize("mode", [ScanMode.ON_PUSH, ScanMode.MANUAL])
def test_a_platform_whose_scan_fails_fails_the_whole_scan_naming_it(mode: ScanMode) -> None:
    ecr = index_ecr({AMD64_DIGEST: [COMPLETE], ARM64_DIGEST: [IN_PROGRESS, scan_page("UNSUPPORTED_IMAGE")]})

    with pytest.raises(ScanFailedError) as failure:
        wait(ecr, request(mode, digest=INDEX_DIGEST))

    assert failure.value.status == "UNSUPPORTED_IMAGE"
    assert failure.value.message.startswith(
        f"ECR's scan of team/app@{ARM64_DIGEST} (linux/arm64) ended with status UNSUPPORTED_IMAGE: "
        "ECR says UNSUPPORTED_IMAGE. Basic scanning needs an operating system"
    )


def test_the_deadline_names_each_platform_still_waited_for() -> None:
    ecr = index_ecr({AMD64_DIGEST: [COMPLETE], ARM64_DIGEST: [IN_PROGRESS]})
    with pytest.raises(ScanTimeoutError) as timeout:
        wait(ecr, request(ScanMode.ON_PUSH, digest=INDEX_DIGEST, timeout=60))
    assert timeout.value.message.startswith(
        f"Waited 60 s for ECR's scan of team/app@{ARM64_DIGEST} (linux/arm64), and the scan was still IN_PROGRESS. "
    )

    ecr = index_ecr({AMD64_DIGEST: ["ScanNotFoundException"], ARM64_DIGEST: [IN_PROGRESS]})
    with pytest.raises(ScanTimeoutError) as timeout:
        wait(ecr, request(ScanMode.ON_PUSH, digest=INDEX_DIGEST, timeout=10))
    assert timeout.value.message.startswith(
        f"Waited 10 s for ECR's scan of team/app@{AMD64_DIGEST} (linux/amd64), and ECR had not started a scan of "
        f"it (is scan on push on for the repository?); of team/app@{ARM64_DIGEST} (linux/arm64), and the scan was "
        "still IN_PROGRESS. Raise `scan-timeout`"
    )


OTHER_DIGEST = "sha256:" + "5" * 64


@pytest.mark.parametrize(
    ("entry", "platform"),
    [
        pytest.param(ARM64, "linux/arm64", id="platform"),
        pytest.param(
            {"digest": OTHER_DIGEST, "platform": {"os": "linux", "architecture": "arm", "variant": "v7"}},
            "linux/arm/v7",
            id="variant",
        ),
        pytest.param(ATTESTATION, None, id="attestation"),
        # An attestation without BuildKit's annotation still has the platform `unknown/unknown`.
        pytest.param(
            {"digest": OTHER_DIGEST, "platform": {"os": "unknown", "architecture": "unknown"}}, None, id="unknown"
        ),
        # A runtime picks a child by its platform: one without a platform is never run.
        pytest.param({"digest": OTHER_DIGEST}, None, id="no-platform"),
    ],
)
def test_index_entries_that_are_platform_images(entry: dict, platform: str | None) -> None:
    ecr = index_ecr({digest: [COMPLETE] for digest in (AMD64_DIGEST, ARM64_DIGEST, OTHER_DIGEST)}, [AMD64, entry])

    outcome = wait(ecr, request(ScanMode.MANUAL, digest=INDEX_DIGEST))

    expected = {"linux/amd64": AMD64_DIGEST} | ({platform: entry["digest"]} if platform else {})
    assert {scanned.platform: scanned.digest for scanned in outcome.platforms} == expected
    assert set(looked_at(ecr)) == set(expected.values())


def test_an_index_without_a_platform_image_cannot_be_scanned() -> None:
    ecr = index_ecr({}, [ATTESTATION])
    with pytest.raises(ScanFailedError, match="lists no platform image to scan") as failure:
        wait(ecr, request(ScanMode.ON_PUSH, digest=INDEX_DIGEST))
    assert failure.value.status == "UNSUPPORTED_IMAGE"


def test_a_single_platform_image_has_no_platforms() -> None:
    outcome = wait(FakeEcr({DIGEST: [COMPLETE]}), request())
    assert outcome.platforms == ()
    assert [f.platforms for f in outcome.findings] == [()]


def test_baseline_is_the_finished_scan_of_the_tagged_image() -> None:
    ecr = FakeEcr(
        {
            DIGEST: [
                scan_page("COMPLETE", [basic_finding("CVE-OLD")], nextToken="2"),
                scan_page("COMPLETE", [basic_finding("CVE-OLDER")]),
            ]
        },
        tags={"main": DIGEST},
    )
    assert tagged_digest(ecr, "team/app", None, "main") == DIGEST
    findings = baseline_findings(ecr, "team/app", None, DIGEST)
    assert findings is not None
    assert [f.vulnerability_id for f in findings] == ["CVE-OLD", "CVE-OLDER"]


@pytest.mark.parametrize("answer", ["ScanNotFoundException", IN_PROGRESS, scan_page("FAILED")])
def test_no_baseline_without_a_finished_scan(answer: Any) -> None:
    ecr = FakeEcr({DIGEST: [answer]}, tags={"main": DIGEST})
    assert baseline_findings(ecr, "team/app", None, DIGEST) is None


def test_no_baseline_without_the_tag() -> None:
    assert tagged_digest(FakeEcr({}), "team/app", None, "main") is None


def test_baseline_of_an_index_merges_its_platforms() -> None:
    ecr = index_ecr(
        {
            AMD64_DIGEST: [scan_page("COMPLETE", [basic_finding("CVE-AMD")])],
            ARM64_DIGEST: [scan_page("COMPLETE", [basic_finding("CVE-ARM")])],
        }
    )
    findings = baseline_findings(ecr, "team/app", None, tagged_digest(ecr, "team/app", None, "main") or "")
    assert findings is not None
    assert [(f.vulnerability_id, f.platforms) for f in findings] == [
        ("CVE-AMD", ("linux/amd64",)),
        ("CVE-ARM", ("linux/arm64",)),
    ]


# Against the local stack --------------------------------------------------------------------------------
@pytest.fixture
def ecr(stack: StackClient) -> Any:
    """ECR as the action's own client sees it: the default account through the gateway."""
    session = boto3.Session(aws_access_key_id="AKIATEST", aws_secret_access_key="x", region_name=stack.region)
    return session.client("ecr", endpoint_url=stack.config.gateway_url)


def fixture_result(name: str, repository: str, digest: str) -> dict[str, Any]:
    """A fixture's DescribeImageScanFindings response, as ECR gives it for this image."""
    result = json.loads((FIXTURES / name).read_text())
    return {**result, "repositoryName": repository, "imageId": {"imageDigest": digest}}


def pushed(stack: StackClient, app_dir: Path, repository: str, *, scan_on_push: bool) -> str:
    stack.ecr().create_repository(repositoryName=repository, imageScanningConfiguration={"scanOnPush": scan_on_push})
    return build_and_push(stack, app_dir, repository, "v1")


def stack_request(repository: str, digest: str, mode: ScanMode, timeout: float = 20) -> ScanRequest:
    return ScanRequest(repository, None, digest, mode, timeout_seconds=timeout, poll_interval_seconds=0.5)


@pytest.mark.stack
@pytest.mark.parametrize(
    ("fixture", "status", "kind"),
    [
        ("ecr_basic_findings.json", "COMPLETE", ScanKind.BASIC),
        ("ecr_enhanced_findings.json", "ACTIVE", ScanKind.ENHANCED),
    ],
)
def test_stack_scan_on_push_findings_in_both_formats(
    stack: StackClient, ecr: Any, app_dir: Path, unique_name: str, fixture: str, status: str, kind: ScanKind
) -> None:
    digest = pushed(stack, app_dir, unique_name, scan_on_push=True)
    result = fixture_result(fixture, unique_name, digest)
    stack.scan_results(result)

    outcome = wait_for_scan(ecr, stack_request(unique_name, digest, ScanMode.ON_PUSH))

    assert (outcome.status, outcome.kind, outcome.started_by_action) == (status, kind, False)
    assert outcome.findings == tuple(findings_from_page(result))
    assert len(outcome.findings) == 4


@pytest.mark.stack
def test_stack_every_page_is_read(stack: StackClient, ecr: Any, app_dir: Path, unique_name: str) -> None:
    digest = pushed(stack, app_dir, unique_name, scan_on_push=True)
    count = 2 * FINDINGS_PAGE_SIZE + 500
    many = [
        {"packageVulnerabilityDetails": {"vulnerabilityId": f"CVE-2024-{n:05}"}, "severity": "HIGH"}
        for n in range(count)
    ]
    stack.scan_results(
        {
            "repositoryName": unique_name,
            "imageId": {"imageDigest": digest},
            "imageScanStatus": {"status": "ACTIVE", "description": "fixture"},
            "imageScanFindings": {"enhancedFindings": many, "findingSeverityCounts": {"HIGH": 1}},
        }
    )
    page_calls: list[str] = []
    ecr.meta.events.register("before-call.ecr.DescribeImageScanFindings", lambda **kwargs: page_calls.append("page"))

    outcome = wait_for_scan(ecr, stack_request(unique_name, digest, ScanMode.ON_PUSH))

    assert [f.vulnerability_id for f in outcome.findings] == [f"CVE-2024-{n:05}" for n in range(count)]
    assert len(page_calls) == 3


@pytest.mark.stack
def test_stack_waits_while_the_scan_is_in_progress(
    stack: StackClient, ecr: Any, app_dir: Path, unique_name: str
) -> None:
    stack.ecr().create_repository(repositoryName=unique_name, imageScanningConfiguration={"scanOnPush": True})
    stack.scan_delay(unique_name, 2)
    digest = build_and_push(stack, app_dir, unique_name, "v1")
    stack.scan_results(fixture_result("ecr_basic_findings.json", unique_name, digest))

    outcome = wait_for_scan(ecr, stack_request(unique_name, digest, ScanMode.ON_PUSH))

    assert outcome.status == "COMPLETE"
    assert len(outcome.findings) == 4
    assert 1.5 <= outcome.seconds_waited < 10


@pytest.mark.stack
def test_stack_scan_past_the_deadline_times_out(stack: StackClient, ecr: Any, app_dir: Path, unique_name: str) -> None:
    stack.ecr().create_repository(repositoryName=unique_name, imageScanningConfiguration={"scanOnPush": True})
    stack.scan_delay(unique_name, 60)
    digest = build_and_push(stack, app_dir, unique_name, "v1")

    started = time.monotonic()
    with pytest.raises(ScanTimeoutError) as timeout:
        wait_for_scan(ecr, stack_request(unique_name, digest, ScanMode.ON_PUSH, timeout=2))

    assert 2 <= time.monotonic() - started < 6
    assert f"Waited 2 s for ECR's scan of {unique_name}@{digest}" in timeout.value.message
    assert "Raise `scan-timeout`" in timeout.value.message


@pytest.mark.stack
def test_stack_manual_mode_starts_the_scan(stack: StackClient, ecr: Any, app_dir: Path, unique_name: str) -> None:
    digest = pushed(stack, app_dir, unique_name, scan_on_push=False)
    stack.scan_results(fixture_result("ecr_basic_findings.json", unique_name, digest))

    outcome = wait_for_scan(ecr, stack_request(unique_name, digest, ScanMode.MANUAL))

    assert outcome.started_by_action
    assert [f.vulnerability_id for f in outcome.findings] == [
        "CVE-2024-0001",
        "CVE-2024-0002",
        "CVE-2024-0003",
        "CVE-2024-0004",
    ]


def put_index(ecr: Any, repository: str, platform_digest: str, tag: str, *more: tuple[str, str]) -> str:
    """An OCI index over pushed images, added through the API; returns its digest. The first image is
    linux/amd64, `more` are (digest, architecture)."""
    manifests = []
    for digest, architecture in ((platform_digest, "amd64"), *more):
        image = ecr.batch_get_image(repositoryName=repository, imageIds=[{"imageDigest": digest}])["images"][0]
        manifests.append(
            {
                "mediaType": image["imageManifestMediaType"],
                "digest": digest,
                "size": len(image["imageManifest"].encode()),
                "platform": {"architecture": architecture, "os": "linux"},
            }
        )
    index = json.dumps({"schemaVersion": 2, "mediaType": INDEX_TYPE, "manifests": manifests})
    reply = ecr.put_image(
        repositoryName=repository, imageManifest=index, imageManifestMediaType=INDEX_TYPE, imageTag=tag
    )
    return reply["image"]["imageId"]["imageDigest"]


@pytest.mark.stack
@pytest.mark.parametrize(("mode", "scan_on_push"), [(ScanMode.MANUAL, False), (ScanMode.ON_PUSH, True)])
def test_stack_scan_of_an_index_scans_its_platform_image(
    stack: StackClient, ecr: Any, app_dir: Path, unique_name: str, mode: ScanMode, scan_on_push: bool
) -> None:
    platform_digest = pushed(stack, app_dir, unique_name, scan_on_push=scan_on_push)
    index_digest = put_index(ecr, unique_name, platform_digest, "multi")
    stack.scan_results(fixture_result("ecr_basic_findings.json", unique_name, platform_digest))

    outcome = wait_for_scan(ecr, stack_request(unique_name, index_digest, mode))

    assert outcome.started_by_action is (mode is ScanMode.MANUAL)
    assert [(scanned.platform, scanned.digest, scanned.status) for scanned in outcome.platforms] == [
        ("linux/amd64", platform_digest, "COMPLETE")
    ]
    assert len(outcome.findings) == 4
    assert {finding.platforms for finding in outcome.findings} == {("linux/amd64",)}


@pytest.mark.stack
def test_stack_on_push_scan_of_two_platforms_reads_each_with_its_findings(
    stack: StackClient, ecr: Any, tmp_path: Path, unique_name: str
) -> None:
    amd64 = pushed(stack, write_app(tmp_path / "amd64", marker="amd64"), unique_name, scan_on_push=True)
    arm64 = build_and_push(stack, write_app(tmp_path / "arm64", marker="arm64"), unique_name, "arm64")
    index_digest = put_index(ecr, unique_name, amd64, "multi", (arm64, "arm64"))
    stack.scan_results(fixture_result("ecr_basic_findings.json", unique_name, amd64))
    arm64_result = fixture_result("ecr_basic_findings.json", unique_name, arm64)
    shared = arm64_result["imageScanFindings"]["findings"][0]
    arm64_result["imageScanFindings"] = {
        "findingSeverityCounts": {"CRITICAL": 1, "LOW": 1},
        "findings": [shared, {"name": "CVE-2024-0999", "severity": "LOW", "attributes": []}],
    }
    stack.scan_results(arm64_result)

    outcome = wait_for_scan(ecr, stack_request(unique_name, index_digest, ScanMode.ON_PUSH))

    assert not outcome.started_by_action
    assert [(scanned.platform, scanned.digest, dict(scanned.declared_counts)) for scanned in outcome.platforms] == [
        ("linux/amd64", amd64, {Severity.CRITICAL: 1, Severity.HIGH: 1, Severity.MEDIUM: 1, Severity.LOW: 1}),
        ("linux/arm64", arm64, {Severity.CRITICAL: 1, Severity.LOW: 1}),
    ]
    assert [(finding.vulnerability_id, finding.platforms) for finding in outcome.findings] == [
        ("CVE-2024-0001", ("linux/amd64", "linux/arm64")),
        ("CVE-2024-0002", ("linux/amd64",)),
        ("CVE-2024-0003", ("linux/amd64",)),
        ("CVE-2024-0004", ("linux/amd64",)),
        ("CVE-2024-0999", ("linux/arm64",)),
    ]


@pytest.mark.stack
def test_stack_baseline_by_tag(stack: StackClient, ecr: Any, app_dir: Path, unique_name: str) -> None:
    digest = pushed(stack, app_dir, unique_name, scan_on_push=True)
    result = fixture_result("ecr_enhanced_findings.json", unique_name, digest)
    stack.scan_results(result)

    # The baseline is looked up by digest: main resolves the tag first (`tagged_digest`).
    assert tagged_digest(ecr, unique_name, None, "v1") == digest
    assert baseline_findings(ecr, unique_name, None, digest) == tuple(findings_from_page(result))
    assert tagged_digest(ecr, unique_name, None, "no-such-tag") is None
    assert baseline_findings(ecr, unique_name, None, "sha256:" + "0" * 64) is None


@pytest.mark.stack
def test_stack_no_baseline_for_an_image_never_scanned(
    stack: StackClient, ecr: Any, app_dir: Path, unique_name: str
) -> None:
    digest = pushed(stack, app_dir, unique_name, scan_on_push=False)
    assert baseline_findings(ecr, unique_name, None, digest) is None
