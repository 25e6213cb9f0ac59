"""The build cache's images (`cache-from`), checked in ECR before the build: one that is missing or that
the role cannot read is left out with a warning, never a failure.

BuildKit itself goes on without a cache it cannot import, but says only `ERROR: … not found` in the
middle of the log; the check says which image, why, and what to do, and keeps that line out of the log.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ecr_action import aws, scan
from ecr_action.errors import AccessDeniedError
from ecr_action.inputs import Inputs

# <account>.dkr.ecr.<region>.amazonaws.com/<repository>[:<tag>][@<digest>]
_ECR_IMAGE = re.compile(
    r"(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com/(?P<repository>[^:@]+)"
    r"(?::(?P<tag>[^@]+))?(?:@(?P<digest>sha256:[0-9a-f]{64}))?"
)


@dataclass(frozen=True, slots=True)
class EcrImage:
    account: str
    region: str
    repository: str
    image_id: dict[str, str]  # BatchGetImage's imageId: the digest when given, else the tag ("latest" unset)


def ecr_image(reference: str) -> EcrImage | None:
    """The ECR image `reference` names; None for an image elsewhere."""
    found = _ECR_IMAGE.fullmatch(reference)
    if found is None:
        return None
    digest, tag = found.group("digest"), found.group("tag")
    image_id = {"imageDigest": digest} if digest else {"imageTag": tag or "latest"}
    return EcrImage(found.group("account"), found.group("region"), found.group("repository"), image_id)


def cache_accounts(references: Iterable[str], region: str) -> tuple[str, ...]:
    """Accounts of the ECR registries in `region` that the cache images are in (each needs a login)."""
    images = (ecr_image(reference) for reference in references)
    return tuple(dict.fromkeys(image.account for image in images if image and image.region == region))


def unusable(ecr: Any, reference: str) -> str | None:
    """Why the build cannot import the cache image `reference` (None: it can, or it is not an ECR image of
    the client's region, which BuildKit alone tries). Asked with BatchGetImage, the permission the build's
    pull of it needs."""
    image = ecr_image(reference)
    if image is None or image.region != ecr.meta.region_name:
        return None
    try:
        reply = aws.ecr_call(
            ecr.batch_get_image,
            image.repository,
            image.account,
            resource=reference,
            none_on={"RepositoryNotFoundException"},
            imageIds=[image.image_id],
        )
    except AccessDeniedError as error:
        return f"this role may not read it ({error.message})"
    if reply is None:
        return f"the repository {image.repository} does not exist in the registry {image.account}"
    if not reply.get("images"):
        return "no image in ECR has that " + ("digest" if "imageDigest" in image.image_id else "tag")
    return None


def cache_from(ecr: Any, inputs: Inputs, registry_id: str, repository_uri: str) -> tuple[tuple[str, ...], list[str]]:
    """(the images the build may import its cache from, a warning for each one left out).

    `cache-from` as given, each checked; unset, the repository's image under the first tag, when there is
    one (known to exist, so not checked again).
    """
    if inputs.cache_from is None:
        if inputs.no_cache or scan.tagged_digest(ecr, inputs.repository, registry_id, inputs.tags[0]) is None:
            return (), []
        return (f"{repository_uri}:{inputs.tags[0]}",), []
    usable, warnings = [], []
    for reference in inputs.cache_from:
        problem = unusable(ecr, reference)
        if problem is None:
            usable.append(reference)
        else:
            warnings.append(f"cache-from {reference} is not used: {problem}.")
    return tuple(usable), warnings
