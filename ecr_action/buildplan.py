"""The build plan: what to ask the Docker Engine for, from what the inputs say to build.

BuildKit: one `POST /build?version=2` per platform (`plan`); the classic builder: one request
(`classic_params`). Pure and table-tested; `ecr_action.build` sends what they return.
"""

from __future__ import annotations

import json
import os.path
from dataclasses import dataclass, field
from pathlib import Path, PurePath

from ecr_action.inputs.choices import Builder, BuildNetwork
from ecr_action.secrets import RegistryCredentials

# The name given in the uploaded context to a Dockerfile that lies outside the context directory.
# Fixed, not random as docker-py's, so that it does not change the context (and the cache) on every run.
OUTSIDE_DOCKERFILE = ".ecr-action.Dockerfile"
# A tag is at most 128 characters (distribution/reference).
_TAG_MAX = 128


@dataclass(frozen=True, slots=True)
class BuildSpec:
    """What to build, as the inputs say it: the plan below turns it into the engine's requests."""

    context: Path
    dockerfile: Path
    build_args: tuple[tuple[str, str], ...] = field(repr=False)
    target: str | None
    labels: tuple[tuple[str, str], ...]
    pull: bool
    no_cache: bool
    registries: tuple[RegistryCredentials, ...] = ()  # logins for the base images' (and cache's) registries
    timeout_seconds: float | None = None  # the whole build; None: no limit
    # A name for the image on the engine, for a job that uses it after the step (push: false); with
    # several platforms each gets its own tag from it. A pushed image is named by the push, which checks
    # that ECR received this very image.
    local_name: str | None = None
    builder: Builder = Builder.AUTO
    platforms: tuple[str, ...] = ()  # empty: the engine's own
    network: BuildNetwork | None = None  # RUN's network; None leaves it to the engine
    secrets: tuple[tuple[str, bytes], ...] = field(default=(), repr=False)  # build secrets by id
    cache_from: tuple[str, ...] = ()  # images whose inline cache the build may use
    inline_cache: bool = False  # write the cache into the image (BuildKit's BUILDKIT_INLINE_CACHE)

    @property
    def secret_values(self) -> tuple[str, ...]:
        """Texts that must never be printed: build-arg values, registry passwords, build secrets."""
        return (
            *(value for _, value in self.build_args),
            *(login.password for login in self.registries),
            *(value.decode("utf-8", "replace") for _, value in self.secrets),
        )


@dataclass(frozen=True, slots=True)
class PlatformBuild:
    """One build request: the query parameters of `POST /build`, and the local reference it tags."""

    platform: str | None
    reference: str | None
    params: tuple[tuple[str, str], ...]


def plan(spec: BuildSpec, *, session: str | None = None) -> tuple[PlatformBuild, ...]:
    """One BuildKit build per platform, in the order given (one on the engine's platform when none is);
    `session` is the BuildKit session the client keeps open for the builds (secrets, registry logins)."""
    platforms: tuple[str | None, ...] = spec.platforms or (None,)
    several = len(platforms) > 1
    return tuple(
        _platform_build(
            spec, platform, platform_reference(spec.local_name, platform) if several else spec.local_name, session
        )
        for platform in platforms
    )


def classic_params(spec: BuildSpec, dockerfile: str) -> dict[str, str]:
    """The query of the classic builder's one request (it builds one platform)."""
    params = {
        "dockerfile": dockerfile,
        "rm": "1",
        "forcerm": "1",
        "buildargs": json.dumps(dict(spec.build_args)),
        "labels": json.dumps(dict(spec.labels)),
    }
    optional = {
        "pull": "1" if spec.pull else None,
        "nocache": "1" if spec.no_cache else None,
        "target": spec.target,
        "t": spec.local_name,
        "platform": spec.platforms[0] if spec.platforms else None,
        "networkmode": spec.network,
    }
    return params | {name: value for name, value in optional.items() if value}


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


def _platform_build(
    spec: BuildSpec, platform: str | None, reference: str | None, session: str | None
) -> PlatformBuild:
    params: list[tuple[str, str]] = [("version", "2")]  # BuildKit
    if reference:
        params.append(("t", reference))
    params.append(("dockerfile", dockerfile_name(spec.context, spec.dockerfile)))
    if platform:
        params.append(("platform", platform))
    if spec.target:
        params.append(("target", spec.target))
    build_args = spec.build_args + ((("BUILDKIT_INLINE_CACHE", "1"),) if spec.inline_cache else ())
    if build_args:
        params.append(("buildargs", json.dumps(dict(build_args))))
    if spec.labels:
        params.append(("labels", json.dumps(dict(spec.labels))))
    # The engine reads "", "0", "false" and "no" as false: flags are sent only when set.
    if spec.no_cache:
        params.append(("nocache", "1"))
    if spec.pull:
        params.append(("pull", "1"))
    if spec.network:
        params.append(("networkmode", spec.network))
    if session:
        params.append(("session", session))
    if spec.cache_from:
        params.append(("cachefrom", json.dumps(list(spec.cache_from))))
    return PlatformBuild(platform=platform, reference=reference, params=tuple(params))
