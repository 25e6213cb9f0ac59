"""The manifest media types the action reads from ECR: single-platform images and multi-platform indexes."""

from __future__ import annotations

# A multi-platform image: a list of per-platform manifests, which ECR cannot scan as one image.
INDEX_MEDIA_TYPES = frozenset(
    {"application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json"}
)
# Every manifest BatchGetImage may return to the action (its `acceptedMediaTypes`).
MANIFEST_MEDIA_TYPES = [
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.index.v1+json",
]
