"""ECR's scan of the pushed image: find it, start it when allowed, wait for it, read every finding.

The scan is always looked up by digest, never by tag: a tag can move to another image while we wait.
Findings are read from every page, in both formats (basic `findings`, enhanced `enhancedFindings`), and
counted from the findings themselves; ECR's own counts are kept only for the gate to check that none was
missed. ECR cannot scan a multi-platform image index: each of its platform images is scanned instead, all
of them waited for at once, and a finding they share is one finding naming its platforms.
"""

from __future__ import annotations

import enum
import json
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ecr_action import aws
from ecr_action.errors import AwsCallError, ScanFailedError, ScanTimeoutError
from ecr_action.findings import Finding, ScanKind, Severity, findings_from_page
from ecr_action.inputs.choices import ScanMode, ScanUnavailable
from ecr_action.media_types import INDEX_MEDIA_TYPES, MANIFEST_MEDIA_TYPES

SKIPPED = "SKIPPED"
# Each status ECR returns has one outcome. PENDING: an enhanced scan queued, not begun.
WAITING_STATUSES = frozenset({"IN_PROGRESS", "PENDING"})
# ACTIVE is enhanced (Inspector) continuous scanning: the findings are there and kept up to date.
READY_STATUSES = frozenset({"COMPLETE", "ACTIVE"})
# Every other status, known (below) or not, means ECR has no findings to give for the image: the gate
# fails closed on it unless `scan-unavailable: warn`.
UNAVAILABLE_ADVICE = {
    "FAILED": "Push the image again to get a new scan, or set `scan: skip` to publish without one.",
    "UNSUPPORTED_IMAGE": (
        "Basic scanning needs an operating system ECR knows (an image `FROM scratch` has "
        "none); use such a base image, turn on enhanced scanning for the registry, or set `scan: skip`."
    ),
    "FINDINGS_UNAVAILABLE": (
        "Amazon Inspector no longer holds findings for this image (it stopped monitoring it); push it "
        "again, or check the registry's enhanced scanning settings."
    ),
    "SCAN_ELIGIBILITY_EXPIRED": (
        "Inspector's continuous scanning period for this image has ended; push it again or lengthen the "
        "scan duration in the Amazon Inspector settings."
    ),
    "LIMIT_EXCEEDED": "ECR's scan quota is used up; wait and run the job again, or set `scan: skip`.",
    "IMAGE_SIZE_EXCEEDED": "The image is larger than ECR can scan; make it smaller or set `scan: skip`.",
    "IMAGE_ARCHIVED": "Archived images are not scanned; restore the image first, or set `scan: skip`.",
}
POLL_GROWTH = 1.5
MAX_POLL_INTERVAL_SECONDS = 30.0
# A floor, so that an interval of 0 cannot turn the wait into a stream of API calls.
MIN_POLL_INTERVAL_SECONDS = 0.1
# Scan on push starts a moment after the push, so right after it ECR can answer that there is no scan
# yet. Starting one ourselves in that gap would race the one ECR is about to start; give it this long.
ON_PUSH_GRACE_SECONDS = 20.0
FINDINGS_PAGE_SIZE = 1000  # ECR's maximum: fewer calls for large images


class NoScan(enum.Enum):
    """What the wait sees before ECR has a scan of the digest: not one of ECR's statuses."""

    NOT_STARTED = enum.auto()


@dataclass(frozen=True, slots=True)
class ScanRequest:
    repository: str
    registry_id: str | None  # None: the caller's own registry
    digest: str
    mode: ScanMode
    timeout_seconds: float
    poll_interval_seconds: float
    media_type: str | None = None  # the image's manifest media type, when the push read it already
    unavailable: ScanUnavailable = ScanUnavailable.FAIL  # when ECR can give no findings


@dataclass(frozen=True, slots=True)
class PlatformImage:
    """An image ECR can scan: a single-platform image, on its own or a child of an image index."""

    digest: str
    platform: str = ""  # as the index names it, `os/architecture[/variant]`; "" for an image on its own


@dataclass(frozen=True, slots=True)
class PlatformScan:
    """The finished scan of one platform image of an index (its findings are the outcome's that name it)."""

    platform: str  # `linux/arm64`, `linux/arm/v7`
    digest: str
    status: str  # COMPLETE or ACTIVE
    declared_counts: Mapping[Severity, int] = field(default_factory=dict)  # as ScanOutcome's, for this image


@dataclass(frozen=True, slots=True)
class ScanOutcome:
    status: str  # ECR's scan status (COMPLETE or ACTIVE), or SKIPPED
    kind: ScanKind | None  # None when skipped
    findings: tuple[Finding, ...]  # of an index: each once, naming the platforms it is on
    description: str = ""  # ECR's words about the scan
    started_by_action: bool = False
    seconds_waited: float = 0.0
    # ECR's own count of the findings by severity (`findingSeverityCounts`), for the gate to check the
    # findings read against: per vulnerability for enhanced scanning, per finding for basic. Empty for an
    # index, which ECR does not scan: each platform's counts are in `platforms`.
    declared_counts: Mapping[Severity, int] = field(default_factory=dict)
    platforms: tuple[PlatformScan, ...] = ()  # an index's platform images, in its order; () for one image
    # Why there are no findings to gate on (ECR's status said so, and `scan-unavailable: warn`); "" if any.
    unavailable: str = ""


class _Deadline:
    def __init__(self, seconds: float, sleep: Callable[[float], None], clock: Callable[[], float]) -> None:
        self._sleep, self._clock = sleep, clock
        self.started = clock()
        self.at = self.started + seconds

    def waited(self) -> float:
        return self._clock() - self.started

    def remaining(self) -> float:
        return self.at - self._clock()

    def sleep(self, seconds: float) -> None:
        self._sleep(max(0.0, min(seconds, self.remaining())))


def wait_for_scan(
    ecr: Any,
    request: ScanRequest,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> ScanOutcome:
    """The finished scan of `request.digest` with all its findings; of an image index, the scans of every
    platform image it lists.

    Raises ScanFailedError when ECR cannot scan the image (or one platform image of an index, which the
    error names), ScanTimeoutError when the scan does not finish within `request.timeout_seconds`.
    """
    if request.mode == ScanMode.SKIP:
        return ScanOutcome(status=SKIPPED, kind=None, findings=())
    deadline = _Deadline(request.timeout_seconds, sleep, clock)
    media_type = request.media_type
    if not media_type:
        detail = _image_detail(ecr, request.repository, request.registry_id, {"imageDigest": request.digest})
        media_type = detail.get("imageManifestMediaType")
    if media_type not in INDEX_MEDIA_TYPES:
        return _wait(ecr, request, [PlatformImage(request.digest)], deadline)[0]
    images = platform_images(ecr, request.repository, request.registry_id, request.digest)
    outcomes = _wait(ecr, request, images, deadline)
    unavailable = next((outcome for outcome in outcomes if outcome.unavailable), None)
    if unavailable is not None:
        # One platform without findings leaves the index without a complete set: nothing to gate on.
        return replace(unavailable, seconds_waited=deadline.waited())
    # The scan type is the registry's, so every platform image has the same status and kind.
    return ScanOutcome(
        status=outcomes[0].status,
        kind=outcomes[0].kind,
        findings=_merged((image.platform, outcome.findings) for image, outcome in zip(images, outcomes, strict=True)),
        description=f"Scanned the {len(images)} platform images of the index.",
        started_by_action=any(outcome.started_by_action for outcome in outcomes),
        seconds_waited=deadline.waited(),
        platforms=tuple(
            PlatformScan(image.platform, image.digest, outcome.status, outcome.declared_counts)
            for image, outcome in zip(images, outcomes, strict=True)
        ),
    )


def tagged_digest(ecr: Any, repository: str, registry_id: str | None, tag: str) -> str | None:
    """The digest `tag` names now; None when no image has that tag."""
    detail = _image_detail(ecr, repository, registry_id, {"imageTag": tag}, none_on={"ImageNotFoundException"})
    return None if detail is None else str(detail["imageDigest"])


def baseline_findings(ecr: Any, repository: str, registry_id: str | None, digest: str) -> tuple[Finding, ...] | None:
    """The findings of the image `digest`; None when there is no such image or no finished scan."""
    detail = _image_detail(ecr, repository, registry_id, {"imageDigest": digest}, none_on={"ImageNotFoundException"})
    if detail is None:
        return None
    if detail.get("imageManifestMediaType") in INDEX_MEDIA_TYPES:
        images = platform_images(ecr, repository, registry_id, detail["imageDigest"])
    else:
        images = [PlatformImage(detail["imageDigest"])]
    found: list[tuple[str, list[Finding]]] = []
    for image in images:
        first_page = _first_findings_page(ecr, repository, registry_id, image.digest)
        if first_page is None or first_page["imageScanStatus"]["status"] not in READY_STATUSES:
            return None
        pages = _findings_pages(ecr, repository, registry_id, image.digest, first_page)
        found.append((image.platform, [finding for page in pages for finding in findings_from_page(page)]))
    return _merged(found)


def _wait(ecr: Any, request: ScanRequest, images: Sequence[PlatformImage], deadline: _Deadline) -> list[ScanOutcome]:
    """The finished scan of each image, in order. All are looked at each round, so that the scans of an
    index's platform images run at the same time and one deadline bounds them all."""
    watches = [_Watch(ecr, request, image) for image in images]
    interval = max(request.poll_interval_seconds, MIN_POLL_INTERVAL_SECONDS)
    while True:
        for watch in watches:
            if watch.outcome is None:
                watch.look(deadline)
        pending = [watch for watch in watches if watch.outcome is None]
        if not pending:
            return [watch.outcome for watch in watches if watch.outcome is not None]
        if deadline.remaining() <= 0:
            raise ScanTimeoutError(_timeout_message(request, pending, deadline.waited()))
        deadline.sleep(interval)
        interval = min(interval * POLL_GROWTH, MAX_POLL_INTERVAL_SECONDS)


class _Watch:
    """The scan of one image, looked at once per round of the wait: started when allowed, read when done."""

    def __init__(self, ecr: Any, request: ScanRequest, image: PlatformImage) -> None:
        self.ecr, self.request, self.image = ecr, request, image
        self.label = f"{request.repository}@{image.digest}" + (f" ({image.platform})" if image.platform else "")
        self.status: str | NoScan = NoScan.NOT_STARTED
        self.started_by_action = self.start_tried = False
        self.outcome: ScanOutcome | None = None

    def look(self, deadline: _Deadline) -> None:
        """Sets `outcome` once the scan is finished; raises ScanFailedError when ECR could not scan."""
        ecr, request, digest = self.ecr, self.request, self.image.digest
        page = _first_findings_page(ecr, request.repository, request.registry_id, digest)
        if page is None:
            may_start = request.mode == ScanMode.MANUAL or deadline.waited() >= ON_PUSH_GRACE_SECONDS
            if may_start and not self.start_tried:
                self.started_by_action = _start_scan(ecr, request.repository, request.registry_id, digest)
                self.start_tried = True
            return
        self.status = page["imageScanStatus"]["status"]
        description = page["imageScanStatus"].get("description", "")
        if self.status in READY_STATUSES:
            pages = list(_findings_pages(ecr, request.repository, request.registry_id, digest, page))
            self.outcome = ScanOutcome(
                status=self.status,
                kind=_scan_kind(self.status, pages),
                findings=tuple(finding for page in pages for finding in findings_from_page(page)),
                description=description,
                started_by_action=self.started_by_action,
                seconds_waited=deadline.waited(),
                declared_counts=_declared_counts(page),
            )
        elif self.status not in WAITING_STATUSES:
            self.outcome = _unavailable(request, self.label, self.status, description, deadline)


def _unavailable(request: ScanRequest, label: str, status: str, description: str, deadline: _Deadline) -> ScanOutcome:
    """The outcome of a scan that gives no findings: a ScanFailedError, unless the user accepts it."""
    advice = UNAVAILABLE_ADVICE.get(status, "Check the image in the ECR console.")
    said = (
        f"ECR's scan of {label} ended with status {status}: "
        f"{(description or 'no description given').rstrip('.')}."
    )
    if request.unavailable is ScanUnavailable.FAIL:
        raise ScanFailedError(
            f"{said} {advice} To publish the image with a warning instead, set `scan-unavailable: warn`.", status=status
        )
    return ScanOutcome(
        status=status,
        kind=None,
        findings=(),
        description=description,
        seconds_waited=deadline.waited(),
        unavailable=f"{said} No findings to gate on; passed as `scan-unavailable: warn` asks. {advice}",
    )


def _timeout_message(request: ScanRequest, pending: list[_Watch], waited: float) -> str:
    states = "; of ".join(f"{watch.label}, and {_waiting_state(watch.status)}" for watch in pending)
    return (
        f"Waited {waited:.0f} s for ECR's scan of {states}. "
        f"Raise `scan-timeout` (now {request.timeout_seconds:g} s) if scans take this long, or set "
        "`scan: skip` to publish without waiting."
    )


def _waiting_state(status: str | NoScan) -> str:
    if status is NoScan.NOT_STARTED:
        return "ECR had not started a scan of it (is scan on push on for the repository?)"
    return f"the scan was still {status}"


def _start_scan(ecr: Any, repository: str, registry_id: str | None, digest: str) -> bool:
    """Whether this call started the scan; False when ECR already has one for this digest."""
    started = aws.ecr_call(
        ecr.start_image_scan,
        repository,
        registry_id,
        resource=f"{repository}@{digest}",
        # ECR allows one scan per image a day: the scan that used it up is the one to read.
        none_on={"LimitExceededException"},
        imageId={"imageDigest": digest},
    )
    return started is not None


def _first_findings_page(ecr: Any, repository: str, registry_id: str | None, digest: str) -> dict | None:
    """The first page of the scan's findings; None when ECR has no scan of this digest."""
    return aws.ecr_call(
        ecr.describe_image_scan_findings,
        repository,
        registry_id,
        resource=f"{repository}@{digest}",
        none_on={"ScanNotFoundException"},
        imageId={"imageDigest": digest},
        maxResults=FINDINGS_PAGE_SIZE,
    )


def _findings_pages(
    ecr: Any, repository: str, registry_id: str | None, digest: str, first_page: dict
) -> Iterator[dict]:
    yield first_page
    page, seen_tokens = first_page, set()
    while token := page.get("nextToken"):
        # A token seen before would make this loop forever.
        if token in seen_tokens:
            raise AwsCallError(f"DescribeImageScanFindings on {repository}@{digest} repeated a page token.")
        seen_tokens.add(token)
        page = aws.ecr_call(
            ecr.describe_image_scan_findings,
            repository,
            registry_id,
            resource=f"{repository}@{digest}",
            imageId={"imageDigest": digest},
            maxResults=FINDINGS_PAGE_SIZE,
            nextToken=token,
        )
        yield page


def _declared_counts(first_page: dict) -> dict[Severity, int]:
    """ECR's `findingSeverityCounts` by severity; every page repeats the scan's counts."""
    declared: Counter[Severity] = Counter()
    for name, count in ((first_page.get("imageScanFindings") or {}).get("findingSeverityCounts") or {}).items():
        if isinstance(count, int) and count > 0:
            declared[Severity.parse(str(name))] += count
    return dict(declared)


def _scan_kind(status: str, pages: list[dict]) -> ScanKind:
    enhanced = status == "ACTIVE" or any("enhancedFindings" in (page.get("imageScanFindings") or {}) for page in pages)
    return ScanKind.ENHANCED if enhanced else ScanKind.BASIC


def _image_detail(
    ecr: Any, repository: str, registry_id: str | None, image_id: dict[str, str], *, none_on: Collection[str] = ()
) -> Any:
    """The image's `imageDetails` entry; None only when AWS answers with the code `none_on`."""
    reference = f":{image_id['imageTag']}" if "imageTag" in image_id else f"@{image_id['imageDigest']}"
    reply = aws.ecr_call(
        ecr.describe_images,
        repository,
        registry_id,
        resource=repository + reference,
        none_on=none_on,
        imageIds=[image_id],
    )
    return reply["imageDetails"][0] if reply else None


def platform_images(ecr: Any, repository: str, registry_id: str | None, digest: str) -> list[PlatformImage]:
    """The platform images an image index lists, which ECR can scan one by one."""
    reply = aws.ecr_call(
        ecr.batch_get_image,
        repository,
        registry_id,
        resource=f"{repository}@{digest}",
        imageIds=[{"imageDigest": digest}],
        acceptedMediaTypes=MANIFEST_MEDIA_TYPES,
    )
    index = json.loads(reply["images"][0]["imageManifest"]) if reply.get("images") else {}
    images = [
        PlatformImage(manifest["digest"], _platform_name(manifest["platform"]))
        for manifest in index.get("manifests") or ()
        if _is_platform_image(manifest)
    ]
    if not images:
        raise ScanFailedError(
            f"The image index {repository}@{digest} lists no platform image to scan.", status="UNSUPPORTED_IMAGE"
        )
    return images


def _is_platform_image(manifest: Mapping[str, Any]) -> bool:
    """BuildKit lists its provenance and SBOM attestations in the index too, as platform `unknown/unknown`:
    they are not images. An entry without a platform is never what a runtime pulls, so it is not one either."""
    platform = manifest.get("platform") or {}
    attestation = (manifest.get("annotations") or {}).get("vnd.docker.reference.type") == "attestation-manifest"
    return bool(platform.get("os")) and platform["os"] != "unknown" and not attestation


def _platform_name(platform: Mapping[str, Any]) -> str:
    """`os/architecture[/variant]`, as `docker --platform` and buildx spell it."""
    parts = (platform.get("os"), platform.get("architecture"), platform.get("variant"))
    return "/".join(str(part) for part in parts if part)


def _merged(scanned: Iterable[tuple[str, Iterable[Finding]]]) -> tuple[Finding, ...]:
    """Each finding once, naming the platforms (in index order) whose images have it: a package shared by
    several platform images is one vulnerability to fix, and counting it per platform would multiply it."""
    platforms_of: dict[Finding, dict[str, None]] = {}
    for platform, findings in scanned:
        for finding in findings:
            platforms_of.setdefault(finding, {})[platform] = None
    return tuple(
        replace(finding, platforms=tuple(platform for platform in platforms if platform))
        for finding, platforms in platforms_of.items()
    )
