"""A multi-platform image in ECR: each platform's image pushed untagged, by digest, then one image
index put under every tag (or, with `merge-digests`, an index over images pushed by other jobs).

Untagged, because in ECR a child's last tag cannot be removed once an index refers to it, and removing
it earlier deletes the child; the engine's own push needs a tag, so the children go up through the
registry API (`ecr_action.registry`).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from typing import Any

import docker

from ecr_action import aws, registry
from ecr_action.errors import MergeError
from ecr_action.imagelayout import Descriptor, Manifest, Platform, image_index
from ecr_action.media_types import MANIFEST_MEDIA_TYPES
from ecr_action.push import PushResult, PushSpec, existing_tags, plan_tags, put_tags
from ecr_action.secrets import RegistryCredentials


def push_platforms(
    client: docker.DockerClient,
    ecr: Any,
    spec: PushSpec,
    images: Sequence[tuple[str, str]],
    auth: RegistryCredentials,
    *,
    log: Callable[[str], None],
) -> PushResult:
    """Each platform's image (platform, image id) pushed by digest, then one index under every tag."""
    children = []
    for platform, image_id in images:
        pushed = registry.push_by_digest(
            client.api,
            image_id,
            repository=spec.repository,
            login=auth,
            retry=spec.retry,
            log=log,
        )
        log(f"{platform}: {pushed.digest} ({_uploaded(pushed)})")
        children.append((pushed.descriptor(), Platform.parse(platform)))
    index = image_index(children)
    result = push_index(ecr, spec, index, log=log)
    return dataclasses.replace(result, platforms={str(p): d.digest for d, p in children})


def merge_platforms(
    ecr: Any, spec: PushSpec, digests: Sequence[str], auth: RegistryCredentials, *, log: Callable[[str], None]
) -> PushResult:
    """One index over single-platform images already in the repository (`merge-digests`)."""
    found = {
        image["imageId"]["imageDigest"]: image
        for image in aws.ecr_call(
            ecr.batch_get_image,
            spec.repository,
            spec.registry_id,
            imageIds=[{"imageDigest": digest} for digest in digests],
            acceptedMediaTypes=MANIFEST_MEDIA_TYPES,
        )["images"]
    }
    missing = [digest for digest in digests if digest not in found]
    if missing:
        raise MergeError(
            f"merge-digests names {', '.join(missing)}, which {spec.repository} does not have: push each platform's "
            "image to this repository first (the `image-digest` output of its job)."
        )
    children, platforms = [], {}
    for digest in digests:
        image = found[digest]
        manifest = image["imageManifest"]
        platform = registry.image_platform(auth, spec.repository, manifest)
        if platform is None:
            raise MergeError(f"merge-digests: {digest} is itself a multi-platform index; give single-platform images.")
        if str(platform) in platforms:
            raise MergeError(
                f"merge-digests: {platforms[str(platform)]} and {digest} are both {platform} images; give one "
                "image per platform."
            )
        platforms[str(platform)] = digest
        media_type = image.get("imageManifestMediaType") or json.loads(manifest)["mediaType"]
        children.append((Descriptor(media_type, digest, len(manifest.encode())), platform))
        log(f"{platform}: {digest}")
    result = push_index(ecr, spec, image_index(children), log=log)
    return dataclasses.replace(result, platforms=platforms)


def _uploaded(pushed: registry.PushedImage) -> str:
    if not pushed.uploaded_blobs:
        return "every layer already in ECR"
    return f"{pushed.uploaded_blobs} blobs, {pushed.uploaded_bytes / 1e6:.1f} MB uploaded"


def push_index(ecr: Any, spec: PushSpec, index: Manifest, *, log: Callable[[str], None]) -> PushResult:
    """Put a multi-platform index under every tag (its children are in the repository already)."""
    existing = existing_tags(ecr, spec)
    to_write, unchanged = plan_tags(spec, lambda current: current.digest == index.digest, existing)
    if not to_write:
        log(f"every tag already names this index ({index.digest}): nothing to put")
    put_tags(ecr, spec, index.digest, index.document, index.media_type, to_write, log=log)
    return PushResult(index.digest, spec.tags, bool(to_write), to_write, unchanged, index.media_type)
