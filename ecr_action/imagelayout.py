"""An image as a registry stores it: blobs named by their digests, a manifest listing them, an index
listing the manifests of each platform; and the engine's export (`docker save`) turned into those blobs.

Re-runs upload nothing: the gzip stream is deterministic (no mtime, no file name, fixed level), so the
same image gives the same blob digests.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import posixpath
import tarfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ecr_action.errors import DockerEngineError

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"

# zlib level 1. Measured on 50 MiB (zlib 1.2.13, 2 cores): a tar of /usr/lib (binaries and text) took
# 0.6 s at level 1 for 21.9 MiB, 1.9 s at the default 6 for 20.5 MiB, 7.7 s at 9 for 20.4 MiB; random
# data stays 50 MiB at any level, ~1 s. Compression holds up the upload on the runner's few cores, and
# ~7 % more bytes upload faster than 3x the CPU time. Changing the level changes every layer's digest:
# the next run would upload every layer once more.
GZIP_LEVEL = 1
_CHUNK = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Descriptor:
    """A blob or manifest as a manifest or index refers to it (OCI descriptor)."""

    media_type: str
    digest: str
    size: int

    def document(self) -> dict[str, Any]:
        return {"mediaType": self.media_type, "size": self.size, "digest": self.digest}


@dataclass(frozen=True, slots=True)
class Platform:
    os: str
    architecture: str
    variant: str | None = None

    @classmethod
    def parse(cls, text: str) -> Platform:
        """`os/arch[/variant]`, e.g. `linux/arm64` or `linux/arm/v7`."""
        parts = text.strip().split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise ValueError(f"not a platform (os/arch[/variant]): {text!r}")
        return cls(*parts)

    def __str__(self) -> str:
        return "/".join(part for part in (self.os, self.architecture, self.variant) if part)


@dataclass(frozen=True, slots=True)
class Manifest:
    """A manifest or index as the registry stores it: its exact bytes name it."""

    document: str
    media_type: str

    @property
    def digest(self) -> str:
        return sha256_digest(self.document.encode())

    @property
    def size(self) -> int:
        return len(self.document.encode())


def image_manifest(config: Descriptor, layers: Sequence[Descriptor]) -> Manifest:
    """The Docker v2 schema 2 manifest of a config and its layers (gzipped), as `docker push` makes it."""
    document = {
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": config.document(),
        "layers": [layer.document() for layer in layers],
    }
    return Manifest(json.dumps(document, indent=3), DOCKER_MANIFEST)


def image_index(children: Sequence[tuple[Descriptor, Platform]]) -> Manifest:
    """The index of single-platform images: a Docker manifest list over Docker manifests, else an OCI index.

    A Docker manifest list may only refer to Docker manifests; an OCI index may refer to either (the OCI
    spec allows any manifest media type), so children of mixed kinds get an OCI index.
    """
    if not children:
        raise ValueError("an image index needs at least one child")
    seen: dict[str, str] = {}
    for child, platform in children:
        if child.media_type not in (DOCKER_MANIFEST, OCI_MANIFEST):
            raise ValueError(f"{child.digest} is a {child.media_type}, not a single-platform image manifest")
        if str(platform) in seen:
            raise ValueError(f"two children for {platform}: {seen[str(platform)]} and {child.digest}")
        seen[str(platform)] = child.digest
    docker_only = all(child.media_type == DOCKER_MANIFEST for child, _ in children)
    media_type = DOCKER_MANIFEST_LIST if docker_only else OCI_INDEX
    entries = []
    for child, platform in children:
        described = {"os": platform.os, "architecture": platform.architecture}
        if platform.variant:
            described["variant"] = platform.variant
        entries.append({**child.document(), "platform": described})
    document = {"schemaVersion": 2, "mediaType": media_type, "manifests": entries}
    return Manifest(json.dumps(document, indent=3), media_type)


# The engine's export ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Blob:
    descriptor: Descriptor
    path: Path  # the bytes to upload, in a temporary file


@dataclass(frozen=True, slots=True)
class _Layer:
    blob: Blob
    diff_id: str  # sha256 of the uncompressed tar: the config's rootfs.diff_ids entry


def gzip_layer(source: IO[bytes], target: Path, level: int = GZIP_LEVEL) -> tuple[Descriptor, str]:
    """(descriptor of the gzipped blob written to `target`, diff id of `source`), in one streaming pass.

    Deterministic for a given zlib: mtime 0 and no file name in the gzip header.
    """
    plain = hashlib.sha256()
    with target.open("wb") as raw:
        hashing = _HashingWriter(raw)
        with gzip.GzipFile(filename="", mode="wb", fileobj=hashing, compresslevel=level, mtime=0) as packed:
            while chunk := source.read(_CHUNK):
                plain.update(chunk)
                packed.write(chunk)
    descriptor = Descriptor(DOCKER_LAYER, f"sha256:{hashing.sha256.hexdigest()}", hashing.size)
    return descriptor, f"sha256:{plain.hexdigest()}"


def export_image(
    chunks: Iterable[bytes],
    image_id: str,
    diff_ids: Sequence[str],
    directory: Path,
    *,
    on_blob: Callable[[Blob], None] = lambda _: None,
) -> tuple[Blob, list[Blob]]:
    """(config, layers in order) of the `docker save` stream `chunks` of `image_id`, written into `directory`.

    `diff_ids` (the engine's RootFS.Layers) tell the layers from the rest before they are read, so each
    blob is passed to `on_blob` as soon as it is complete and its upload starts while the next layer is
    compressed. Two layouts: `<id>/layer.tar` (engines before 25) and the OCI layout's
    `blobs/sha256/<diff id>` (engines from 25 with their own image store: uncompressed layers). The
    export must hold this image (config digest `image_id`) with exactly its layers.
    """
    image_hex = image_digest(image_id).removeprefix("sha256:")
    wanted = {diff_id.removeprefix("sha256:") for diff_id in diff_ids}
    layers: dict[str, _Layer] = {}
    links: dict[str, str] = {}  # engines before 25 save a layer seen twice once, and link the second to it
    config_name, config_bytes, listing = "", b"", b""
    try:
        with tarfile.open(fileobj=_ChunkReader(chunks), mode="r|", bufsize=_CHUNK) as tar:
            for member in tar:
                name = posixpath.normpath(member.name)
                folder, base = posixpath.split(name)
                if member.issym():
                    links[name] = posixpath.normpath(posixpath.join(folder, member.linkname))
                elif not member.isfile():
                    continue
                elif base == "layer.tar" or (folder == "blobs/sha256" and base in wanted):
                    source = tar.extractfile(member)
                    assert source is not None
                    path = directory / f"layer-{len(layers)}.tar.gz"
                    descriptor, diff_id = gzip_layer(source, path)
                    layers[name] = _Layer(Blob(descriptor, path), diff_id)
                    on_blob(layers[name].blob)
                elif name == "manifest.json":
                    listing = _read(tar, member)
                elif base.removesuffix(".json") == image_hex:
                    config_name, config_bytes = name, _read(tar, member)
    except tarfile.TarError as error:
        raise DockerEngineError(f"The Docker Engine's export of {image_id} is not a readable tar: {error}") from None
    entries = json.loads(listing or b"[]")
    if len(entries) != 1 or posixpath.normpath(entries[0]["Config"]) != config_name:
        raise DockerEngineError(f"The Docker Engine's export of {image_id} does not hold that one image.")
    config_path = directory / "config.json"
    config_path.write_bytes(config_bytes)
    config = Blob(Descriptor(DOCKER_CONFIG, sha256_digest(config_bytes), len(config_bytes)), config_path)
    if config.descriptor.digest != image_digest(image_id):
        raise DockerEngineError(
            f"The Docker Engine exported image {config.descriptor.digest} when asked for {image_id}."
        )
    on_blob(config)
    ordered = []
    for listed in map(posixpath.normpath, entries[0]["Layers"]):
        layer = layers.get(links.get(listed, listed))
        if layer is None:
            raise DockerEngineError(
                f"The Docker Engine's export of {image_id} has layer {listed}, which is not one of the image's "
                "uncompressed layers: an engine that uses the containerd image store exports layers compressed, "
                "which this push does not read yet."
            )
        ordered.append(layer)
    if [layer.diff_id for layer in ordered] != list(diff_ids):
        raise DockerEngineError(f"The Docker Engine's export of {image_id} does not match its layer list.")
    return config, [layer.blob for layer in ordered]


def sha256_digest(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def image_digest(image_id: str) -> str:
    return image_id if image_id.startswith("sha256:") else f"sha256:{image_id}"


def _read(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    source = tar.extractfile(member)
    assert source is not None
    return source.read()


class _HashingWriter(io.RawIOBase):
    """A file that hashes and counts what is written through it."""

    def __init__(self, target: IO[bytes]) -> None:
        self.target, self.sha256, self.size = target, hashlib.sha256(), 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data)
        self.sha256.update(view)
        self.size += view.nbytes
        return self.target.write(view)


class _ChunkReader(io.RawIOBase):
    """A readable file over an iterator of byte chunks (the engine's streamed export)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            chunk = next(self._chunks, b"")
            if not chunk:
                return 0
            self._pending = memoryview(chunk)
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size
