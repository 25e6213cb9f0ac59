"""BuildKit builds through the Docker Engine API (`POST /build?version=2`), with no buildx binary.

The context goes up as a tar, as docker-py sends it (`.dockerignore` applied here: BuildKit does not
apply it to an uploaded context), the engine's progress is rendered by `ecr_action.buildlog`, and a
failure becomes one error that names the step and says what to do.

Build-arg values never reach an error: the engine's messages and step names can contain them (BuildKit
names a step after its command with the build arguments expanded), and so do the exceptions of
requests and docker-py (the request URL carries them URL-encoded). Those exceptions are never shown;
every text taken from the engine goes through `scrub` first.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import socket
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar

import docker
import docker.errors
import requests.exceptions
import urllib3.exceptions
from docker.utils.build import exclude_paths

from ecr_action import buildlog
from ecr_action.buildfailures import buildkit_failure
from ecr_action.buildlog import BuildOutcome, BuildWarning
from ecr_action.buildplan import OUTSIDE_DOCKERFILE, PlatformBuild, dockerfile_name
from ecr_action.errors import BuildError, DockerEngineError
from ecr_action.secrets import scrub

BUILDKIT = "buildkit"
CLASSIC = "classic"
# The first API version with BuildKit outside the engine's experimental mode (Docker 18.09).
_BUILDKIT_API = (1, 39)
_TRANSPORT_ERRORS = (
    docker.errors.DockerException,
    docker.errors.StreamParseError,
    requests.exceptions.RequestException,
    urllib3.exceptions.HTTPError,
    OSError,
)
T = TypeVar("T")
# USTAR's name field; a longer (or non-ASCII) name needs an extended header before the entry.
_USTAR_NAME = 100


# ---- The engine: which builders it has -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EngineInfo:
    """What the engine says of itself in the headers of `GET /_ping`."""

    api_version: str  # Api-Version, such as "1.41"
    os_type: str  # Ostype: "linux" or "windows"
    builder_version: str | None  # Builder-Version: the default builder, "2" BuildKit or "1" classic
    server: str  # Server, such as "Docker/20.10.24+dfsg1 (linux)"

    @property
    def version(self) -> str | None:
        """The engine's release, such as "20.10.24"."""
        found = re.match(r"Docker/(\d+(?:\.\d+)*)", self.server)
        return found.group(1) if found else None


def engine_info(headers: Mapping[str, str]) -> EngineInfo:
    found = {name.lower(): value for name, value in headers.items()}
    return EngineInfo(
        api_version=found.get("api-version", ""),
        os_type=found.get("ostype", ""),
        # Engines before 23.0 send it only when the daemon configuration sets `features.buildkit`.
        builder_version=found.get("builder-version") or None,
        server=found.get("server", ""),
    )


def probe_engine(client: docker.DockerClient) -> EngineInfo:
    api = client.api
    try:
        response = api._get(api._url("/_ping", versioned_api=False))
        api._raise_for_status(response)
    except (docker.errors.DockerException, requests.exceptions.RequestException) as error:
        raise DockerEngineError(f"The Docker Engine did not answer its ping ({type(error).__name__}).") from None
    return engine_info(response.headers)


def buildkit_unsupported(info: EngineInfo) -> str | None:
    """Why the engine cannot build with BuildKit, or None when it can."""
    if info.os_type and info.os_type != "linux":
        return f"it is a {info.os_type} engine, and BuildKit through the Engine API builds Linux images only"
    if _version_tuple(info.api_version) < _BUILDKIT_API:
        return f"its API version is {info.api_version or 'unknown'}, and BuildKit needs 1.39 (Docker 18.09) or later"
    return None


def choose_builder(requested: str, info: EngineInfo) -> str:
    """BUILDKIT or CLASSIC for the `builder` input (auto, buildkit or classic).

    `auto` follows the engine: BuildKit where it has it, unless its configuration makes the classic
    builder the default (Builder-Version: 1), as the docker CLI does.
    """
    if requested == CLASSIC:
        return CLASSIC
    reason = buildkit_unsupported(info)
    if requested == BUILDKIT:
        if reason:
            raise DockerEngineError(
                f"builder is buildkit, but the Docker Engine ({info.server or 'unknown'}) cannot build with BuildKit: "
                f"{reason}. Upgrade the engine, or set `builder: classic`."
            )
        return BUILDKIT
    if reason or info.builder_version == "1":
        return CLASSIC
    return BUILDKIT


def _version_tuple(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split("."))
    except ValueError:
        return ()


# ---- The context -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BuildContext:
    """The context as uploaded: a tar in a temporary file, reused by each platform's build."""

    archive: Path  # each build opens it anew: platforms are built at the same time
    dockerfile: str  # the Dockerfile's name in the archive
    dockerfile_text: str  # read for the error messages (heredocs, syntax line)


@contextlib.contextmanager
def packed_context(context: Path, dockerfile: Path) -> Iterator[BuildContext]:
    """The context directory as a tar, without what `.dockerignore` excludes; deleted on exit."""
    name = dockerfile_name(context, dockerfile)
    text = dockerfile.read_text(encoding="utf-8", errors="replace")
    with tempfile.TemporaryDirectory(prefix="ecr-action-context-") as directory:
        archive = Path(directory) / "context.tar"
        with archive.open("wb") as file:
            _write_archive(file, context, dockerfile, name, _ignore_patterns(context, dockerfile))
        yield BuildContext(archive=archive, dockerfile=name, dockerfile_text=text)


def _ignore_patterns(context: Path, dockerfile: Path) -> list[str]:
    """`<Dockerfile>.dockerignore` next to the Dockerfile when there is one (BuildKit's rule), else
    the context's `.dockerignore`; lines parsed as docker-py parses them."""
    for candidate in (dockerfile.with_name(dockerfile.name + ".dockerignore"), context / ".dockerignore"):
        if candidate.is_file():
            lines = candidate.read_text(encoding="utf-8", errors="replace").splitlines()
            return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]
    return []


def _write_archive(archive: IO[bytes], context: Path, dockerfile: Path, name: str, patterns: list[str]) -> None:
    """BuildKit takes an uploaded context for a tar only if a tar header starts in its first 1024 bytes
    (else it reads the upload as a Dockerfile). So: whole-second mtimes (a fractional one costs each entry
    a PAX header, as docker-py writes them), the Dockerfile first, and gzip (recognised by its magic
    bytes) when even the Dockerfile's name needs an extended header."""
    outside = name == OUTSIDE_DOCKERFILE
    files = sorted(exclude_paths(str(context.resolve()), patterns, dockerfile=None if outside else name))
    if not outside:
        files.sort(key=lambda path: path != name)
    plain = len(name) <= _USTAR_NAME and name.isascii()
    with tarfile.open(fileobj=archive, mode="w" if plain else "w:gz", format=tarfile.PAX_FORMAT) as tar:
        if outside:
            data = dockerfile.read_bytes()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
        for path in files:
            _add(tar, context / path, path)


def _add(tar: tarfile.TarFile, full: Path, name: str) -> None:
    info = tar.gettarinfo(str(full), arcname=name)
    if info is None:  # a socket
        return
    # The owner is root, as the docker CLI sends it: a build should not depend on the runner's uid.
    info.mtime, info.uid, info.gid, info.uname, info.gname = int(info.mtime), 0, 0, "", ""
    if info.isfile():
        with full.open("rb") as content:
            tar.addfile(info, content)
    else:
        tar.addfile(info)


# ---- The build -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BuiltPlatform:
    platform: str | None
    reference: str
    image_id: str  # sha256 of the image config


def build(
    client: docker.DockerClient,
    request: PlatformBuild,
    context: BuildContext,
    *,
    log: Callable[[str], None],
    warn: Callable[[BuildWarning], None] | None = None,
    secrets: Iterable[str] = (),
    timeout: float | None = None,
) -> BuiltPlatform:
    """Run one platform's build. `secrets` are the values kept out of the log, errors and warnings (BuildKit
    names a step after its command with the build arguments expanded); `timeout` (seconds) bounds the whole
    build, after which the engine is disconnected, which cancels it."""
    values = list(secrets)

    def follow(messages: Iterable[Mapping[str, Any]]) -> BuildOutcome:
        return buildlog.follow(
            messages,
            lambda line: log(scrub(line, values)),
            (lambda warning: warn(_scrubbed(warning, values))) if warn else None,
        )

    outcome, engine = stream_build(client, dict(request.params), {}, context, follow, values, timeout)
    if outcome.image_id is None or outcome.error is not None:
        raise buildkit_failure(outcome, context.dockerfile_text, engine, values)
    return BuiltPlatform(platform=request.platform, reference=request.reference, image_id=outcome.image_id)


def stream_build(
    client: docker.DockerClient,
    params: Mapping[str, Any],
    headers: Mapping[str, str],
    context: BuildContext,
    follow: Callable[[Iterable[Mapping[str, Any]]], T],
    secrets: list[str],
    timeout: float | None,
) -> tuple[T, str]:
    """`POST /build` with the context, the engine's messages handed to `follow`; (what it returns, the
    engine's Server header). Either builder: the parameters say which. The transport's own errors are
    never shown (their text holds the request URL, and with it every build-arg value)."""
    api = client.api
    started = time.monotonic()
    expired = threading.Event()
    try:
        # The read timeout is the whole build's: a step may print nothing for a long time, and no single
        # wait can be longer than the build may take. The timer below bounds the total.
        with context.archive.open("rb") as archive:
            response = api._post(
                api._url("/build"),
                params=dict(params),
                data=archive,
                headers={"Content-Type": "application/x-tar", **headers},
                stream=True,
                timeout=timeout,
            )
    except requests.exceptions.Timeout:
        raise BuildError(_timeout_message(timeout)) from None
    except (docker.errors.DockerException, requests.exceptions.RequestException) as error:
        raise DockerEngineError(
            f"The Docker Engine did not take the build request ({type(error).__name__}): is it running?"
        ) from None
    if response.status_code >= 400:
        raise _refused(response, secrets)
    timer = None
    if timeout:
        timer = threading.Timer(max(timeout - (time.monotonic() - started), 0), _disconnect, (response, expired))
        timer.daemon = True
        timer.start()
    try:
        result = follow(api._stream_helper(response, decode=True))
    except Exception as error:
        # After the timer shuts the socket, the read under way fails with whatever the HTTP layers make of
        # a half-read chunk (ValueError, AttributeError, ProtocolError): all of it is the timeout.
        if expired.is_set() or isinstance(error, urllib3.exceptions.ReadTimeoutError):
            raise BuildError(_timeout_message(timeout)) from None
        if isinstance(error, _TRANSPORT_ERRORS):
            raise DockerEngineError(
                f"The connection to the Docker Engine broke during the build ({type(error).__name__}): the engine "
                f"may have stopped or restarted; its log (`journalctl -u docker`) has the cause."
            ) from None
        raise
    finally:
        if timer:
            timer.cancel()
        # Also what cancels the build on the engine when we leave early: it stops a build whose client is gone.
        response.close()
    if expired.is_set():
        raise BuildError(_timeout_message(timeout))
    return result, response.headers.get("Server", "")


def _scrubbed(warning: BuildWarning, values: list[str]) -> BuildWarning:
    return BuildWarning(
        message=scrub(warning.message, values),
        step=scrub(warning.step, values),
        detail=tuple(scrub(line, values) for line in warning.detail),
        url=warning.url,
        file=warning.file,
        line=warning.line,
    )


def _refused(response: Any, values: list[str]) -> BuildError:
    """The engine refused the request: its JSON `message` only (never the URL, which has the build args)."""
    try:
        body = response.content
    except Exception:  # a body cut short: the status is all there is
        body = b""
    try:
        message = str(json.loads(body)["message"])
    except (ValueError, KeyError, TypeError):
        message = body.decode("utf-8", "replace")[:500].strip()
    return BuildError(
        f"The Docker Engine refused the build (HTTP {response.status_code} {response.reason}): "
        f"{scrub(message, values) or 'no reason given'}."
    )


def _disconnect(response: Any, expired: threading.Event) -> None:
    """Close the connection under the reading thread: shutting the socket down wakes a blocked read,
    where closing the response alone would not. The engine cancels a build whose client has gone."""
    expired.set()
    sock = getattr(getattr(response.raw, "_connection", None), "sock", None)
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(Exception):
        response.close()


def _timeout_message(timeout: float | None) -> str:
    return (
        f"The build took longer than build-timeout ({timeout:g} seconds) and was stopped. Make the build faster "
        f"(cache, a smaller context), or raise build-timeout."
    )
