"""Build the image with the Docker Engine API, streaming the engine's log.

The request is made through `ecr_action.buildkit.stream_build`, not `docker.APIClient.build`: that
method takes registry credentials only from a Docker config file (the action writes none), cannot be
stopped at a deadline, and its errors quote the request URL, whose query holds every build-arg value.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests.exceptions

from ecr_action import buildfailures, buildkit, buildplan
from ecr_action.buildlog import BuildWarning
from ecr_action.buildplan import BuildSpec
from ecr_action.errors import BuildError, DockerEngineError
from ecr_action.secrets import scrub
from ecr_action.session import BuildSession


@dataclass(frozen=True, slots=True)
class BuiltImage:
    image_id: str  # sha256 of the image config: equal to the config digest in the pushed manifest
    platform: str = ""  # "" when built for the engine's own platform


@dataclass(frozen=True, slots=True)
class BuildResult:
    images: tuple[BuiltImage, ...]  # one per platform, in the order asked
    warnings: tuple[BuildWarning, ...] = ()  # BuildKit's, for annotations once the log is done
    notes: tuple[str, ...] = ()  # what the build's session was asked for (ids and hosts, never values)

    @property
    def image_id(self) -> str:
        """The image of a single-platform build."""
        (image,) = self.images
        return image.image_id


# `FROM [--platform=…] <account>.dkr.ecr.<region>.amazonaws.com/<repository>…`, any case for the keyword.
_ECR_FROM = re.compile(
    r"^\s*FROM\s+(?:--\S+\s+)*(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com/", re.IGNORECASE | re.MULTILINE
)


def read_dockerfile(path: Path) -> str:
    """The Dockerfile's text; a byte that is not UTF-8 cannot hide a FROM line, so it is replaced."""
    return path.read_text(encoding="utf-8", errors="replace")


def base_image_accounts(dockerfile: Path, region: str) -> tuple[str, ...]:
    """Accounts of the ECR registries in `region` that the Dockerfile at `dockerfile` pulls from."""
    return base_image_registries(read_dockerfile(dockerfile), region)


def base_image_registries(dockerfile: str, region: str) -> tuple[str, ...]:
    """Accounts of the ECR registries in `region` that the Dockerfile's FROM lines pull from."""
    found = (account for account, from_region in _ECR_FROM.findall(dockerfile) if from_region == region)
    return tuple(dict.fromkeys(found))


def engine(base_url: str) -> docker.DockerClient:
    """A client of the engine at `base_url`, checked with a ping: nothing in AWS changes before this."""
    try:
        client = docker.DockerClient(base_url=base_url, timeout=600)
        client.ping()
    except (docker.errors.DockerException, requests.exceptions.RequestException) as error:
        raise DockerEngineError(
            f"Cannot reach the Docker Engine at {base_url} ({engine_error_text(error)}). On GitHub-hosted "
            "Linux runners it is always there; on a self-hosted runner, make sure Docker is running and the "
            "runner can use its socket."
        ) from None
    return client


def engine_error_text(error: BaseException) -> str:
    """What the engine said, without the request URL: a build's URL holds every build-arg value."""
    if isinstance(error, docker.errors.APIError) and error.explanation:
        return str(error.explanation).strip()
    if isinstance(error, requests.exceptions.ConnectionError):
        return "the connection to the engine failed"
    if isinstance(error, requests.exceptions.Timeout):
        return "the engine did not answer in time"
    return type(error).__name__


def build_image(client: docker.DockerClient, spec: BuildSpec, *, log: Callable[[str], None]) -> BuildResult:
    """Build `spec` with the builder it asks for (BuildKit where `auto` finds it), each platform's image
    at the same time."""
    builder = buildkit.choose_builder(spec.builder, buildkit.probe_engine(client))
    if builder == buildkit.BUILDKIT:
        return _buildkit_build(client, spec, log)
    if len(spec.platforms) > 1 or spec.secrets:
        raise BuildError(
            "Build secrets and multi-platform images need BuildKit, which this Docker Engine does not offer: "
            "upgrade the engine, or build on a GitHub-hosted runner."
        )
    secrets = list(spec.secret_values)
    with buildkit.packed_context(spec.context, spec.dockerfile) as context:
        image_id, _ = buildkit.stream_build(
            client,
            buildplan.classic_params(spec, context.dockerfile),
            _classic_headers(spec),
            context,
            lambda chunks: follow_build_log(chunks, log, secrets, context.dockerfile_text),
            secrets,
            spec.timeout_seconds,
        )
    return BuildResult((BuiltImage(image_id, spec.platforms[0] if spec.platforms else ""),))


def _buildkit_build(client: docker.DockerClient, spec: BuildSpec, log: Callable[[str], None]) -> BuildResult:
    secrets = list(spec.secret_values)
    logins = {login.registry: login for login in spec.registries}
    warnings: list[BuildWarning] = []
    lock = threading.Lock()

    def build_one(request: buildplan.PlatformBuild) -> buildkit.BuiltPlatform:
        # With several platforms at once, each line says whose it is.
        prefix = f"[{request.platform}] " if len(spec.platforms) > 1 else ""

        def log_line(line: str) -> None:
            with lock:
                log(prefix + line)

        try:
            return buildkit.build(
                client,
                request,
                packed,
                log=log_line,
                warn=warnings.append,
                secrets=secrets,
                timeout=spec.timeout_seconds,
            )
        except BuildError as error:
            raise buildfailures.platform_failure(error, request.platform, len(spec.platforms) > 1) from None

    with (
        buildkit.packed_context(spec.context, spec.dockerfile) as packed,
        BuildSession.open(client.api, secrets=dict(spec.secrets), registry_auth=logins.get) as session,
    ):
        requests = buildplan.plan(spec, session=session.id)
        if len(requests) == 1:
            built = [build_one(requests[0])]
        else:
            pool = ThreadPoolExecutor(max_workers=len(requests))
            try:
                built = list(pool.map(build_one, requests))
            finally:
                # Not waiting: after a failure or a cancellation the other builds end with the process.
                pool.shutdown(wait=False, cancel_futures=True)
    images = tuple(BuiltImage(image.image_id, image.platform or "") for image in built)
    return BuildResult(images, tuple(warnings), tuple(session.notes))


def follow_build_log(
    chunks: Iterable[Mapping[str, Any]],
    log: Callable[[str], None],
    secrets: Iterable[str] = (),
    dockerfile_text: str = "",
) -> str:
    """Pass the engine's log on line by line; the image id it reports last; BuildError on a failed step."""
    secrets = tuple(secrets)
    image_id = ""
    for chunk in chunks:
        if "stream" in chunk:
            for line in str(chunk["stream"]).splitlines():
                if line.strip():
                    log(scrub(line, secrets))
        if "error" in chunk:
            detail = str(chunk.get("errorDetail", {}).get("message") or chunk["error"]).strip()
            raise buildfailures.classic_failure(scrub(detail, secrets), dockerfile_text)
        if "aux" in chunk and "ID" in chunk["aux"]:
            image_id = chunk["aux"]["ID"]
    if not image_id:
        raise BuildError("The Docker Engine finished the build without reporting an image id.")
    return image_id


def _classic_headers(spec: BuildSpec) -> dict[str, str]:
    if not spec.registries:
        return {}
    # The engine's X-Registry-Config: every registry the build may pull from, by host.
    config = {login.registry: {"username": login.username, "password": login.password} for login in spec.registries}
    return {"X-Registry-Config": base64.urlsafe_b64encode(json.dumps(config).encode()).decode()}
