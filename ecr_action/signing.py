"""ECR managed signing: whether the registry signs the repository's images, and the wait for the signature.

When a rule of the registry's signing configuration (GetSigningConfiguration) covers the repository, ECR
signs each pushed image with AWS Signer; the image is ready to deploy once every profile's signature is
COMPLETE (DescribeImageSigningStatus). A FAILED signature fails the run, as does no signature by the
deadline. A registry without a configuration, or none covering the repository, is not waited for.
"""

from __future__ import annotations

import fnmatch
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ecr_action import aws
from ecr_action.errors import AccessDeniedError, AwsCallError, SigningError

COMPLETE = "COMPLETE"
FAILED = "FAILED"
TIMED_OUT = "TIMED_OUT"
NOT_SIGNED = "NONE"  # no rule of the registry's signing configuration covers the repository
UNKNOWN = "UNKNOWN"  # the configuration could not be read (permission, API, or another account's registry)
POLL_GROWTH = 1.5
MAX_POLL_INTERVAL_SECONDS = 30.0
MIN_POLL_INTERVAL_SECONDS = 0.1


@dataclass(frozen=True, slots=True)
class SigningRequest:
    repository: str
    registry_id: str | None  # None: the caller's own registry
    own_registry: bool  # GetSigningConfiguration reads only the caller's registry
    digest: str
    timeout_seconds: float  # what is left of the scan deadline
    poll_interval_seconds: float


@dataclass(frozen=True, slots=True)
class SigningOutcome:
    status: str  # COMPLETE, NONE or UNKNOWN (FAILED and TIMED_OUT raise SigningError)
    profiles: tuple[str, ...] = ()  # the signing profiles whose rules cover the repository
    note: str = ""  # why the signature was not checked (UNKNOWN), for a warning


def covering_profiles(configuration: Mapping[str, Any] | None, repository: str) -> tuple[str, ...]:
    """The signing profiles of the rules that cover `repository`: a rule without filters covers every
    repository, one with filters those matching any of them (`*` matches any characters)."""
    profiles = []
    for rule in (configuration or {}).get("rules") or ():
        filters = rule.get("repositoryFilters") or ()
        if not filters or any(fnmatch.fnmatchcase(repository, entry["filter"]) for entry in filters):
            profiles.append(rule["signingProfileArn"])
    return tuple(dict.fromkeys(profiles))


def signing_status(statuses: list[Mapping[str, Any]]) -> str:
    """One status for the image from each profile's: FAILED if any failed, COMPLETE once all are."""
    if any(entry.get("status") == FAILED for entry in statuses):
        return FAILED
    if statuses and all(entry.get("status") == COMPLETE for entry in statuses):
        return COMPLETE
    return "IN_PROGRESS"


def wait_for_signing(
    ecr: Any,
    request: SigningRequest,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> SigningOutcome:
    if not request.own_registry:
        return SigningOutcome(
            UNKNOWN,
            note="the registry belongs to another account, whose signing configuration "
            "these credentials cannot read: its signature was not waited for.",
        )
    try:
        reply = aws.ecr_call(
            ecr.get_signing_configuration, None, None, none_on={"SigningConfigurationNotFoundException"}
        )
    except (AccessDeniedError, AwsCallError) as error:
        # Signing is the registry's feature, which the run only observes: roles made before it lack the
        # permission, and a region or an ECR-compatible endpoint may lack the API. Neither fails the push;
        # only a configuration known to cover the repository is waited for.
        return SigningOutcome(UNKNOWN, note=f"{error.message} The image's signature was not waited for.")
    profiles = covering_profiles((reply or {}).get("signingConfiguration"), request.repository)
    if not profiles:
        return SigningOutcome(NOT_SIGNED)
    started = clock()
    interval = max(request.poll_interval_seconds, MIN_POLL_INTERVAL_SECONDS)
    reference = f"{request.repository}@{request.digest}"
    while True:
        statuses = (
            aws.ecr_call(
                ecr.describe_image_signing_status,
                request.repository,
                request.registry_id,
                resource=reference,
                imageId={"imageDigest": request.digest},
            ).get("signingStatuses")
            or []
        )
        status = signing_status(statuses)
        if status == COMPLETE:
            return SigningOutcome(COMPLETE, profiles)
        if status == FAILED:
            failures = "; ".join(
                f"{entry.get('signingProfileArn', 'a profile')}: {entry.get('failureCode', 'FAILED')} "
                f"({entry.get('failureReason') or 'no reason given'})"
                for entry in statuses
                if entry.get("status") == FAILED
            )
            raise SigningError(
                f"ECR could not sign {reference}: {failures}. Check the signing profile in AWS Signer (active, "
                "and usable by ECR), then push the image again.",
                status=FAILED,
            )
        remaining = started + request.timeout_seconds - clock()
        if remaining <= 0:
            raise SigningError(
                f"Waited {clock() - started:.0f} s for ECR to sign {reference} (profiles {', '.join(profiles)}), "
                "and it was still in progress. Raise `scan-timeout`, which bounds the scan and the signature "
                "together.",
                status=TIMED_OUT,
            )
        sleep(max(0.0, min(interval, remaining)))
        interval = min(interval * POLL_GROWTH, MAX_POLL_INTERVAL_SECONDS)
