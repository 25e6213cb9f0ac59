"""BuildKit builds in the stack's engine through the Engine API (`POST /build?version=2`), no session.

With no session the engine reads the build context from the request's tar and has no registry
credentials: a base image from a private registry is pulled anonymously (the stack's registries then
answer 401).

The stack's engine has no bridge network (`--bridge=none`): the classic builder then runs RUN steps with
no network, but BuildKit's default network mode needs the bridge ("network bridge not found"), so these
builds ask for `networkmode=none` unless told otherwise (a caller may pass `networkmode="host"`).

A build that needs a session (registry credentials for a private base image) goes through Debian's
docker CLI instead (`cli_build`): docker.io 20.10's CLI runs BuildKit with a session when
`DOCKER_BUILDKIT=1`, and reads credentials from its `DOCKER_CONFIG`.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker

from stack.config import StackConfig

# Debian's docker.io CLI (20.10), which builds with BuildKit by itself; a newer CLI earlier in PATH may
# need the buildx plugin for that.
DOCKER_CLI = "/usr/bin/docker"


def context_tar(directory: Path) -> bytes:
    """`directory` as a build context (a tar with every file, sorted, owned by root)."""
    buffer = io.BytesIO()
    # GNU format: the engine takes a body that opens with a PAX header (a fractional mtime makes one) for a
    # Dockerfile, not a tar.
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for path in sorted(directory.rglob("*")):
            info = tar.gettarinfo(str(path), arcname=str(path.relative_to(directory)))
            info.uid = info.gid = 0
            info.mtime = int(info.mtime)
            info.uname = info.gname = ""
            if path.is_file():
                with path.open("rb") as data:
                    tar.addfile(info, data)
            else:
                tar.addfile(info)
    return buffer.getvalue()


def build_stream(
    config: StackConfig,
    directory: Path,
    *,
    tag: str | None = None,
    platform: str | None = None,
    **params: Any,
) -> Iterator[bytes]:
    """The engine's reply to a BuildKit build of `directory`, as it comes (JSON messages, one a line;
    the `moby.buildkit.trace` ones carry BuildKit's status as base64 protobuf in `aux`)."""
    api = docker.APIClient(base_url=config.docker_host, version="1.41")
    query: dict[str, Any] = {"version": "2", "networkmode": "none", **params}
    if tag:
        query["t"] = tag
    if platform:
        query["platform"] = platform
    response = api._post(
        api._url("/build"),
        params=query,
        data=context_tar(directory),
        headers={"Content-Type": "application/x-tar"},
        stream=True,
        timeout=300,
    )
    api._raise_for_status(response)
    yield from response.raw.stream(4096, decode_content=True)


def build(
    config: StackConfig, directory: Path, *, tag: str | None = None, platform: str | None = None, **params: Any
) -> list[dict[str, Any]]:
    """A BuildKit build's messages, decoded (an `error` message, when the build failed, is the last)."""
    raw = b"".join(build_stream(config, directory, tag=tag, platform=platform, **params))
    return [json.loads(line) for line in raw.splitlines() if line.strip()]


def build_error(messages: list[dict[str, Any]]) -> str | None:
    return next((message["error"] for message in messages if "error" in message), None)


def cli_build(
    config: StackConfig, context: Path, *args: str, docker_config: Path | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """`DOCKER_BUILDKIT=1 docker build --progress=plain --network=none <args> <context>` against the stack's
    engine, with a session; `docker_config` is the client's DOCKER_CONFIG (its logins)."""
    environment = {**os.environ, "DOCKER_BUILDKIT": "1", "DOCKER_HOST": config.docker_host}
    if docker_config is not None:
        environment["DOCKER_CONFIG"] = str(docker_config)
    return subprocess.run(
        [DOCKER_CLI, "build", "--progress=plain", "--network=none", *args, str(context)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def cli_login(config: StackConfig, docker_config: Path, host: str, username: str, password: str) -> None:
    """`docker login` into `docker_config` (a directory), as a user's job does before a build."""
    subprocess.run(
        [DOCKER_CLI, "login", "--username", username, "--password-stdin", host],
        input=password,
        env={**os.environ, "DOCKER_HOST": config.docker_host, "DOCKER_CONFIG": str(docker_config)},
        capture_output=True,
        text=True,
        check=True,
    )
