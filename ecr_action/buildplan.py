"""What to ask the Docker Engine for a BuildKit build: one `POST /build?version=2` per platform.

`plan` is pure (table-tested); `ecr_action.buildkit` sends what it returns.
"""

from __future__ import annotations

import json
import os.path
from dataclasses import dataclass
from pathlib import PurePath

# The name given in the uploaded context to a Dockerfile that lies outside the context directory.
# Fixed, not random as docker-py's, so that it does not change the context (and the cache) on every run.
OUTSIDE_DOCKERFILE = ".ecr-action.Dockerfile"
# A tag is at most 128 characters (distribution/reference).
_TAG_MAX = 128


@dataclass(frozen=True, slots=True)
class BuildKitSpec:
    context: PurePath
    dockerfile: PurePath
    build_args: tuple[tuple[str, str], ...]
    labels: tuple[tuple[str, str], ...]
    target: str | None
    no_cache: bool
    pull: bool
    platforms: tuple[str, ...]  # empty: the engine's own platform
    # The local name:tag of the image; with several platforms, each gets its own tag from it. None: the
    # image is known by its id only (a pushed image is named by the push).
    reference: str | None
    network: str | None = None  # RUN's network: "default", "host" or "none"; None leaves it to the engine
    session: str | None = None  # a BuildKit session the client keeps open (registry credentials, secrets)
    cache_from: tuple[str, ...] = ()  # images whose inline cache the build may use


@dataclass(frozen=True, slots=True)
class PlatformBuild:
    """One build request: the query parameters of `POST /build`, and the local reference it tags."""

    platform: str | None
    reference: str | None
    params: tuple[tuple[str, str], ...]


def plan(spec: BuildKitSpec) -> tuple[PlatformBuild, ...]:
    """One build per platform, in the order given (one build on the engine's platform when none is)."""
    platforms: tuple[str | None, ...] = spec.platforms or (None,)
    several = len(platforms) > 1
    return tuple(
        _platform_build(spec, platform, platform_reference(spec.reference, platform) if several else spec.reference)
        for platform in platforms
    )


def dockerfile_name(context: PurePath, dockerfile: PurePath) -> str:
    """The Dockerfile's path inside the uploaded context ('/'-separated), or OUTSIDE_DOCKERFILE."""
    relative = os.path.relpath(dockerfile, context)
    if relative == os.curdir or relative.startswith(os.pardir):
        return OUTSIDE_DOCKERFILE
    return PurePath(relative).as_posix()


def platform_reference(reference: str | None, platform: str | None) -> str | None:
    """`name:tag` → `name:tag-linux-arm64`: the local tag of one platform's image (shortened to fit)."""
    if platform is None or reference is None:
        return reference
    name, _, tag = reference.rpartition(":")
    if not name or "/" in tag:  # no tag: `registry:5000/name` has a ':' but no tag after it
        name, tag = reference, "latest"
    suffix = "-" + platform.replace("/", "-")
    return f"{name}:{tag[: _TAG_MAX - len(suffix)]}{suffix}"


def _platform_build(spec: BuildKitSpec, platform: str | None, reference: str | None) -> PlatformBuild:
    params: list[tuple[str, str]] = [("version", "2")]  # BuildKit
    if reference:
        params.append(("t", reference))
    params.append(("dockerfile", dockerfile_name(spec.context, spec.dockerfile)))
    if platform:
        params.append(("platform", platform))
    if spec.target:
        params.append(("target", spec.target))
    if spec.build_args:
        params.append(("buildargs", json.dumps(dict(spec.build_args))))
    if spec.labels:
        params.append(("labels", json.dumps(dict(spec.labels))))
    # The engine reads "", "0", "false" and "no" as false: flags are sent only when set.
    if spec.no_cache:
        params.append(("nocache", "1"))
    if spec.pull:
        params.append(("pull", "1"))
    if spec.network:
        params.append(("networkmode", spec.network))
    if spec.session:
        params.append(("session", spec.session))
    if spec.cache_from:
        params.append(("cachefrom", json.dumps(list(spec.cache_from))))
    return PlatformBuild(platform=platform, reference=reference, params=tuple(params))
