"""Push an image the engine built to ECR through the registry API, untagged, by digest.

The engine's own push needs a tag, and in ECR a child's last tag cannot be removed once an index refers
to it; so, as buildx and crane do, the children of a multi-platform image go up untagged: the image's
layers and config, exported by the engine (`docker save`), each layer gzipped here, uploaded with the
ECR token (HTTP Basic), then the manifest `PUT` by digest. The caller puts the index with ECR PutImage.

Re-runs upload nothing: the gzip stream is deterministic (no mtime, no file name, fixed level), so the
same image gives the same blob digests, and a blob the repository has is skipped (`HEAD`).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import posixpath
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import urljoin

import docker.errors
import requests
import requests.exceptions

from ecr_action.build import engine_error_text
from ecr_action.errors import (
    AccessDeniedError,
    DockerEngineError,
    PushError,
    RegistryLoginError,
    RepositoryMissingError,
)
from ecr_action.retries import RetryPolicy, attempts_made
from ecr_action.secrets import RegistryCredentials

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
# Blobs uploaded at once: the Docker Engine's default (max-concurrent-uploads) is 5.
UPLOAD_WORKERS = 4
# (connect, read) seconds: the read timeout is the wait for the registry's answer after a whole blob.
TIMEOUT = (10, 300)
_CHUNK = 1024 * 1024
_ACCESS_HINT = (
    "allow ecr:BatchCheckLayerAvailability, ecr:InitiateLayerUpload, ecr:UploadLayerPart, "
    "ecr:CompleteLayerUpload and ecr:PutImage on the repository (see the README's 'IAM permissions')"
)


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
        return _sha256(self.document.encode())

    @property
    def size(self) -> int:
        return len(self.document.encode())


@dataclass(frozen=True, slots=True)
class PushedImage:
    digest: str
    manifest: str  # the manifest's JSON, exactly as put
    media_type: str
    size: int
    uploaded_bytes: int  # blob bytes sent by this push (0: the repository had every blob)
    uploaded_blobs: int

    def descriptor(self) -> Descriptor:
        return Descriptor(self.media_type, self.digest, self.size)


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
    image_hex = _image_digest(image_id).removeprefix("sha256:")
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
    config = Blob(Descriptor(DOCKER_CONFIG, _sha256(config_bytes), len(config_bytes)), config_path)
    if config.descriptor.digest != _image_digest(image_id):
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


# The registry API ------------------------------------------------------------------------------------


class _Transient(Exception):
    """A failure a second try can fix; its text names the failure without any URL."""


def push_by_digest(
    engine_api: docker.APIClient,
    image_id: str,
    *,
    repository: str,
    login: RegistryCredentials,
    retry: RetryPolicy,
    log: Callable[[str], None],
    sleep: Callable[[float], None] = time.sleep,
    ca_bundle: str | bool = True,
    tag: str | None = None,
    workers: int = UPLOAD_WORKERS,
    work_dir: Path | None = None,
) -> PushedImage:
    """Push the engine's image `image_id` to `login.registry`/`repository` untagged (or as `tag`).

    `ca_bundle` is requests' `verify`: True for the system's CAs, or a CA file's path. Each blob upload
    is retried on its own (5xx, 429, connection failures) under `retry`.
    """
    registry = _Registry(login, repository, ca_bundle)
    retrying = _Retry(retry, log, sleep)

    def upload(blob: Blob) -> int | None:
        """The bytes sent, None when the repository had the blob."""
        sent = retrying(f"upload of {blob.descriptor.digest} to {repository}", lambda: registry.upload_blob(blob))
        return blob.descriptor.size if sent else None

    with (
        tempfile.TemporaryDirectory(prefix="ecr-action-push-", dir=work_dir) as directory,
        ThreadPoolExecutor(max_workers=workers, thread_name_prefix="blob-upload") as pool,
    ):
        uploads: list[Future[int | None]] = []
        try:
            config, layers = export_image(
                _engine_export(engine_api, image_id),
                image_id,
                _diff_ids(engine_api, image_id),
                Path(directory),
                on_blob=lambda blob: uploads.append(pool.submit(upload, blob)),
            )
            # result() raises the first failure (an ActionError) in the order the blobs came.
            sent = [size for size in (done.result() for done in uploads) if size is not None]
        except BaseException:
            for pending in uploads:
                pending.cancel()  # those not started; the running ones end with the pool
            raise
    manifest = image_manifest(config.descriptor, [layer.descriptor for layer in layers])
    retrying(
        f"upload of manifest {manifest.digest} to {repository}",
        lambda: registry.put_manifest(manifest, tag or manifest.digest),
    )
    return PushedImage(
        manifest.digest,
        manifest.document,
        manifest.media_type,
        manifest.size,
        sum(sent),
        len(sent),
    )


def _engine_export(engine_api: docker.APIClient, image_id: str) -> Iterator[bytes]:
    try:
        yield from engine_api.get_image(image_id)
    except (docker.errors.APIError, requests.exceptions.RequestException) as error:
        raise _engine_failure(image_id, error) from None


def _diff_ids(engine_api: docker.APIClient, image_id: str) -> list[str]:
    try:
        return list(engine_api.inspect_image(image_id)["RootFS"]["Layers"] or [])
    except (docker.errors.APIError, requests.exceptions.RequestException) as error:
        raise _engine_failure(image_id, error) from None


def _engine_failure(image_id: str, error: Exception) -> DockerEngineError:
    return DockerEngineError(f"The Docker Engine could not export image {image_id}: {engine_error_text(error)}")


class _Retry:
    """Runs one registry operation under the run's retry policy; past it, one PushError."""

    def __init__(self, policy: RetryPolicy, log: Callable[[str], None], sleep: Callable[[float], None]) -> None:
        self.policy, self.log, self.sleep = policy, log, sleep

    def __call__(self, what: str, operation: Callable[[], bool | None]) -> bool | None:
        retrying = self.policy.retrying(what, _Transient, log=self.log, sleep=self.sleep)
        try:
            return retrying(operation)
        except _Transient as error:
            raise PushError(
                f"The {what} failed after {attempts_made(retrying)} attempts ({error}). The registry kept failing; "
                "re-run the job, or raise 'retries'/'retry-max-seconds'."
            ) from None


class _Registry:
    """The distribution API of one repository, with the ECR token as HTTP Basic credentials.

    Nothing here prints a URL: an upload's Location carries the registry's opaque upload state.
    """

    def __init__(self, login: RegistryCredentials, repository: str, ca_bundle: str | bool) -> None:
        self.login, self.repository, self.ca_bundle = login, repository, ca_bundle
        self.base = f"https://{login.registry}/v2/{repository}/"
        self._local = threading.local()

    @property
    def where(self) -> str:
        return f"{self.login.registry}/{self.repository}"

    def _session(self) -> requests.Session:
        # One session a thread: requests does not promise that a Session is safe to share between threads.
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.auth = (self.login.username, self.login.password)
            session.headers["User-Agent"] = "ecr-action/0.1"
            self._local.session = session
        return session

    def _call(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        try:
            # `verify` on each request: a Session's own is overridden by REQUESTS_CA_BUNDLE (psf/requests#3829).
            return self._session().request(method, url, timeout=TIMEOUT, verify=self.ca_bundle, **kwargs)
        except requests.exceptions.SSLError:
            raise PushError(
                f"The TLS certificate of {self.login.registry} could not be verified: the runner's CA "
                "certificates do not trust it (a proxy that intercepts TLS needs its CA installed)."
            ) from None
        except requests.exceptions.Timeout:
            raise _Transient("the registry did not answer in time") from None
        except (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError):
            raise _Transient("the connection to the registry failed") from None

    def upload_blob(self, blob: Blob) -> bool:
        """Whether the blob was sent (False: the repository already had it)."""
        digest = blob.descriptor.digest
        present = self._call("HEAD", urljoin(self.base, f"blobs/{digest}"), allow_redirects=True)
        if present.status_code == 200:
            return False
        if present.status_code != 404:
            raise self.failure(present, f"checking blob {digest}")
        started = self._call("POST", urljoin(self.base, "blobs/uploads/"))
        if started.status_code != 202 or "Location" not in started.headers:
            raise self.failure(started, f"starting the upload of {digest}")
        # Monolithic: one PUT with the whole blob (as containerd does); streamed from the file.
        location = urljoin(self.base, started.headers["Location"])
        separator = "&" if "?" in location else "?"
        with blob.path.open("rb") as body:
            finished = self._call(
                "PUT",
                f"{location}{separator}digest={digest}",
                data=body,
                headers={"Content-Type": "application/octet-stream", "Content-Length": str(blob.descriptor.size)},
            )
        if finished.status_code != 201:
            raise self.failure(finished, f"uploading {digest}")
        return True

    def put_manifest(self, manifest: Manifest, reference: str) -> None:
        reply = self._call(
            "PUT",
            urljoin(self.base, f"manifests/{reference}"),
            data=manifest.document.encode(),
            headers={"Content-Type": manifest.media_type},
        )
        if reply.status_code != 201:
            raise self.failure(reply, f"putting manifest {manifest.digest}")
        stored = reply.headers.get("Docker-Content-Digest", manifest.digest)
        if stored != manifest.digest:
            raise PushError(f"{self.where} stored the manifest {manifest.digest} as {stored}.")

    def blob_json(self, digest: str) -> Any:
        reply = self._call("GET", urljoin(self.base, f"blobs/{digest}"), allow_redirects=True)
        if reply.status_code != 200:
            raise self.failure(reply, f"reading blob {digest}")
        return reply.json()

    def failure(self, reply: requests.Response, doing: str) -> Exception:
        return registry_failure(reply.status_code, _error_codes(reply), self.where, doing)


def image_platform(
    login: RegistryCredentials, repository: str, manifest: str, *, ca_bundle: str | bool = True
) -> Platform | None:
    """The platform of a single-platform image in the repository, from its config; None for an index."""
    document = json.loads(manifest)
    if "config" not in document:
        return None
    config = _Registry(login, repository, ca_bundle).blob_json(document["config"]["digest"])
    return Platform(str(config.get("os", "")), str(config.get("architecture", "")), config.get("variant") or None)


def registry_failure(status: int, errors: Mapping[str, str], where: str, doing: str) -> Exception:
    """A registry's refusal as the user can act on it; `errors` is the body's errors, code → message."""
    said = "; ".join(f"{code}: {message}" if message else code for code, message in errors.items())
    detail = f"HTTP {status}" + (f", {said}" if said else "")
    if status == 401:
        return RegistryLoginError(
            f"The registry refused the login for {where} while {doing} ({detail}). The token from "
            "GetAuthorizationToken was for another registry or has expired: check 'registry-id' and 'aws-region'."
        )
    if status == 403 or "DENIED" in errors:
        return AccessDeniedError(f"The registry denied {doing} in {where} ({detail}): {_ACCESS_HINT}.")
    if status == 404 and ("NAME_UNKNOWN" in errors or "REPOSITORY_UNKNOWN" in errors):
        return RepositoryMissingError(
            f"The registry has no repository {where} ({detail}): set 'create-repository: true' or create it first."
        )
    if status == 429 or status >= 500:
        return _Transient(detail)
    return PushError(f"The registry refused {doing} in {where} ({detail}).")


def _error_codes(reply: requests.Response) -> dict[str, str]:
    """The distribution spec's `{"errors": [{"code", "message"}]}`, as code → message (short)."""
    try:
        errors = reply.json().get("errors", [])
    except ValueError:
        return {}
    return {
        str(error.get("code", "UNKNOWN")): str(error.get("message", ""))[:200]
        for error in errors
        if isinstance(error, dict)
    }


def _sha256(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def _image_digest(image_id: str) -> str:
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
