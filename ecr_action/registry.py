"""Push an image the engine built to ECR through the registry API, untagged, by digest.

The engine's own push needs a tag, and in ECR a child's last tag cannot be removed once an index refers
to it; so, as buildx and crane do, the children of a multi-platform image go up untagged: the image's
layers and config, exported by the engine (`ecr_action.imagelayout`), uploaded with the ECR token (HTTP
Basic), then the manifest `PUT` by digest. The caller puts the index with ECR PutImage. A blob the
repository has already is skipped (`HEAD`).
"""

from __future__ import annotations

import json
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
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
from ecr_action.imagelayout import (
    Blob,
    Descriptor,
    Manifest,
    Platform,
    export_image,
    image_manifest,
)
from ecr_action.retries import RetryPolicy, attempts_made
from ecr_action.secrets import RegistryCredentials

# Blobs uploaded at once: the Docker Engine's default (max-concurrent-uploads) is 5.
UPLOAD_WORKERS = 4
# (connect, read) seconds: the read timeout is the wait for the registry's answer after a whole blob.
TIMEOUT = (10, 300)
_ACCESS_HINT = (
    "allow ecr:BatchCheckLayerAvailability, ecr:InitiateLayerUpload, ecr:UploadLayerPart, "
    "ecr:CompleteLayerUpload and ecr:PutImage on the repository (see the README's 'IAM permissions')"
)


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
