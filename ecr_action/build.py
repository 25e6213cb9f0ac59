"""Build the image with the Docker Engine API, streaming the engine's log.

The request is made through `ecr_action.buildkit.stream_build`, not `docker.APIClient.build`: that
method takes registry credentials only from a Docker config file (the action writes none), cannot be
stopped at a deadline, and its errors quote the request URL, whose query holds every build-arg value.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests.exceptions

from ecr_action import buildkit
from ecr_action.errors import BuildError, DockerEngineError, RegistryLoginError
from ecr_action.secrets import RegistryCredentials, scrub


@dataclass(frozen=True, slots=True)
class BuildSpec:
    context: Path
    dockerfile: Path
    build_args: tuple[tuple[str, str], ...] = field(repr=False)
    target: str | None
    labels: tuple[tuple[str, str], ...]
    pull: bool
    no_cache: bool
    registries: tuple[RegistryCredentials, ...] = ()  # logins for the base images' registries
    timeout_seconds: float | None = None  # the whole build; None: no limit
    # A name for the image on the engine, for a job that uses it after the step (push: false). A pushed
    # image is named by the push, which checks that ECR received this very image.
    local_name: str | None = None

    @property
    def secret_values(self) -> tuple[str, ...]:
        """Texts that must never be printed: build-arg values and registry passwords."""
        return tuple(value for _, value in self.build_args) + tuple(login.password for login in self.registries)


@dataclass(frozen=True, slots=True)
class BuiltImage:
    image_id: str  # sha256 of the image config: equal to the config digest in the pushed manifest


# `FROM [--platform=…] <account>.dkr.ecr.<region>.amazonaws.com/<repository>…`, any case for the keyword.
_ECR_FROM = re.compile(
    r"^\s*FROM\s+(?:--\S+\s+)*(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com/", re.IGNORECASE | re.MULTILINE
)


def read_dockerfile(path: Path) -> str:
    """The Dockerfile's text; a byte that is not UTF-8 cannot hide a FROM line, so it is replaced."""
    return path.read_text(encoding="utf-8", errors="replace")


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


def build_image(client: docker.DockerClient, spec: BuildSpec, *, log: Callable[[str], None]) -> BuiltImage:
    """The image id of a classic-builder build of `spec`."""
    secrets = list(spec.secret_values)
    with buildkit.packed_context(spec.context, spec.dockerfile) as context:
        image_id, _ = buildkit.stream_build(
            client,
            _build_params(spec, context.dockerfile),
            _build_headers(spec),
            context,
            lambda chunks: follow_build_log(chunks, log, secrets),
            secrets,
            spec.timeout_seconds,
        )
    return BuiltImage(image_id=image_id)


def follow_build_log(
    chunks: Iterable[Mapping[str, Any]], log: Callable[[str], None], secrets: Iterable[str] = ()
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
            raise build_failure(scrub(detail, secrets))
        if "aux" in chunk and "ID" in chunk["aux"]:
            image_id = chunk["aux"]["ID"]
    if not image_id:
        raise BuildError("The Docker Engine finished the build without reporting an image id.")
    return image_id


def build_failure(detail: str) -> Exception:
    """The engine's failure as the user can act on it; a base image the registry refused names it."""
    if ".dkr.ecr." in detail and any(
        word in detail.lower() for word in ("no basic auth credentials", "unauthorized", "denied", "401", "403")
    ):
        return RegistryLoginError(
            f"The build could not pull a base image from ECR: {detail}. Allow ecr:GetAuthorizationToken, "
            "ecr:BatchGetImage and ecr:GetDownloadUrlForLayer on that repository for this role (and, for "
            "another account's repository, a repository policy that lets this role pull)."
        )
    return BuildError(f"The image build failed: {detail} (the build log above has the step).")


def _build_params(spec: BuildSpec, dockerfile: str) -> dict[str, Any]:
    params: dict[str, Any] = {
        "dockerfile": dockerfile,
        "rm": True,
        "forcerm": True,
        "pull": spec.pull,
        "nocache": spec.no_cache,
        "buildargs": json.dumps(dict(spec.build_args)),
        "labels": json.dumps(dict(spec.labels)),
    }
    if spec.target:
        params["target"] = spec.target
    if spec.local_name:
        params["t"] = spec.local_name
    return params


def _build_headers(spec: BuildSpec) -> dict[str, str]:
    if not spec.registries:
        return {}
    # The engine's X-Registry-Config: every registry the build may pull from, by host.
    config = {login.registry: {"username": login.username, "password": login.password} for login in spec.registries}
    return {"X-Registry-Config": base64.urlsafe_b64encode(json.dumps(config).encode()).decode()}
