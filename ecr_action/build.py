"""Build the image with the Docker Engine (through the `docker` SDK), streaming the engine's log."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests.exceptions

from ecr_action.errors import BuildError, DockerEngineError


@dataclass(frozen=True, slots=True)
class BuildSpec:
    context: Path
    dockerfile: Path
    build_args: tuple[tuple[str, str], ...]
    target: str | None
    labels: tuple[tuple[str, str], ...]
    pull: bool
    no_cache: bool
    reference: str  # the local name given to the image: <repository uri>:<first tag>


@dataclass(frozen=True, slots=True)
class BuiltImage:
    image_id: str  # sha256 of the image config: equal to the config digest in the pushed manifest
    reference: str


def engine(base_url: str) -> docker.DockerClient:
    try:
        client = docker.DockerClient(base_url=base_url, timeout=600)
        client.ping()
    except (docker.errors.DockerException, requests.exceptions.RequestException) as error:
        raise DockerEngineError(
            f"Cannot reach the Docker Engine at {base_url} ({error}). On GitHub-hosted Linux runners it is "
            "always there; on a self-hosted runner, make sure Docker is running and the runner can use its socket."
        ) from None
    return client


def build_image(client: docker.DockerClient, spec: BuildSpec, *, log: Callable[[str], None]) -> BuiltImage:
    try:
        chunks = client.api.build(
            path=str(spec.context),
            dockerfile=str(spec.dockerfile),
            tag=spec.reference,
            buildargs=dict(spec.build_args),
            target=spec.target,
            labels=dict(spec.labels),
            pull=spec.pull,
            nocache=spec.no_cache,
            rm=True,
            forcerm=True,
            decode=True,
        )
        image_id = follow_build_log(chunks, log)
    except (docker.errors.APIError, requests.exceptions.RequestException) as error:
        raise DockerEngineError(f"The Docker Engine failed during the build: {error}") from None
    return BuiltImage(image_id=image_id, reference=spec.reference)


def follow_build_log(chunks: Iterable[Mapping[str, Any]], log: Callable[[str], None]) -> str:
    """Pass the engine's log on line by line; the image id it reports last; BuildError on a failed step."""
    image_id = ""
    for chunk in chunks:
        if "stream" in chunk:
            for line in str(chunk["stream"]).splitlines():
                if line.strip():
                    log(line)
        if "error" in chunk:
            detail = chunk.get("errorDetail", {}).get("message") or chunk["error"]
            raise BuildError(f"The image build failed: {str(detail).strip()} (the build log above has the step).")
        if "aux" in chunk and "ID" in chunk["aux"]:
            image_id = chunk["aux"]["ID"]
    if not image_id:
        raise BuildError("The Docker Engine finished the build without reporting an image id.")
    return image_id
