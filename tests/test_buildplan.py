"""The BuildKit build plan: a table of specs and the requests they give."""

from __future__ import annotations

from dataclasses import replace
from pathlib import PurePosixPath

import pytest

from ecr_action.buildplan import OUTSIDE_DOCKERFILE, BuildSpec, PlatformBuild, classic_params, dockerfile_name, plan

BASE = BuildSpec(
    context=PurePosixPath("/w/app"),
    dockerfile=PurePosixPath("/w/app/Dockerfile"),
    build_args=(),
    labels=(),
    target=None,
    no_cache=False,
    pull=False,
    platforms=(),
    local_name="repo.example/app:v1",
)
DEFAULTS = (("version", "2"), ("t", "repo.example/app:v1"), ("dockerfile", "Dockerfile"))


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        pytest.param({}, [PlatformBuild(None, "repo.example/app:v1", DEFAULTS)], id="defaults"),
        pytest.param(
            {"platforms": ("linux/arm64",)},
            [PlatformBuild("linux/arm64", "repo.example/app:v1", (*DEFAULTS, ("platform", "linux/arm64")))],
            id="one platform keeps the reference",
        ),
        pytest.param(
            {"platforms": ("linux/amd64", "linux/arm/v7")},
            [
                PlatformBuild(
                    "linux/amd64",
                    "repo.example/app:v1-linux-amd64",
                    (
                        ("version", "2"),
                        ("t", "repo.example/app:v1-linux-amd64"),
                        ("dockerfile", "Dockerfile"),
                        ("platform", "linux/amd64"),
                    ),
                ),
                PlatformBuild(
                    "linux/arm/v7",
                    "repo.example/app:v1-linux-arm-v7",
                    (
                        ("version", "2"),
                        ("t", "repo.example/app:v1-linux-arm-v7"),
                        ("dockerfile", "Dockerfile"),
                        ("platform", "linux/arm/v7"),
                    ),
                ),
            ],
            id="several platforms, one tag each, in order",
        ),
        pytest.param(
            {
                "build_args": (("A", "1"), ("B", 'two "quoted"')),
                "labels": (("org.opencontainers.image.revision", "abc"),),
                "target": "final",
                "no_cache": True,
                "pull": True,
                "network": "none",
                "cache_from": ("repo.example/app:main",),
                "inline_cache": True,
                "session": "s3ss10n",
            },
            [
                PlatformBuild(
                    None,
                    "repo.example/app:v1",
                    (
                        *DEFAULTS,
                        ("target", "final"),
                        ("buildargs", '{"A": "1", "B": "two \\"quoted\\"", "BUILDKIT_INLINE_CACHE": "1"}'),
                        ("labels", '{"org.opencontainers.image.revision": "abc"}'),
                        ("nocache", "1"),
                        ("pull", "1"),
                        ("networkmode", "none"),
                        ("session", "s3ss10n"),
                        ("cachefrom", '["repo.example/app:main"]'),
                    ),
                )
            ],
            id="every option",
        ),
        pytest.param(
            {"dockerfile": PurePosixPath("/w/app/docker/prod.Dockerfile")},
            [PlatformBuild(None, "repo.example/app:v1", (*DEFAULTS[:2], ("dockerfile", "docker/prod.Dockerfile")))],
            id="dockerfile in a subdirectory",
        ),
        pytest.param(
            {"dockerfile": PurePosixPath("/w/Dockerfile")},
            [PlatformBuild(None, "repo.example/app:v1", (*DEFAULTS[:2], ("dockerfile", OUTSIDE_DOCKERFILE)))],
            id="dockerfile outside the context",
        ),
    ],
)
def test_plan(changes: dict, expected: list[PlatformBuild]) -> None:
    session = changes.pop("session", None)
    assert list(plan(replace(BASE, **changes), session=session)) == expected


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        pytest.param({}, {"t": "repo.example/app:v1"}, id="defaults"),
        pytest.param(
            {"pull": True, "no_cache": True, "target": "final", "platforms": ("linux/arm64",), "network": "host"},
            {
                "t": "repo.example/app:v1",
                "pull": "1",
                "nocache": "1",
                "target": "final",
                "platform": "linux/arm64",
                "networkmode": "host",
            },
            id="every option",
        ),
        pytest.param({"local_name": None}, {}, id="no local name"),
    ],
)
def test_classic_params(changes: dict, expected: dict[str, str]) -> None:
    params = classic_params(replace(BASE, **changes), "Dockerfile")
    fixed = {"dockerfile": "Dockerfile", "rm": "1", "forcerm": "1", "buildargs": "{}", "labels": "{}"}
    assert params == fixed | expected


@pytest.mark.parametrize(
    ("reference", "platform", "expected"),
    [
        ("app:v1", "linux/arm64", "app:v1-linux-arm64"),
        ("registry:5000/app", "linux/arm64", "registry:5000/app:latest-linux-arm64"),
        ("registry:5000/app:v1", "linux/arm64", "registry:5000/app:v1-linux-arm64"),
        ("app:" + "t" * 128, "linux/arm64", "app:" + "t" * 116 + "-linux-arm64"),
    ],
)
def test_each_platform_gets_a_valid_tag_of_its_own(reference: str, platform: str, expected: str) -> None:
    (build, _) = plan(replace(BASE, local_name=reference, platforms=(platform, "linux/amd64")))
    assert build.reference == expected
    assert len(build.reference.rpartition(":")[2]) <= 128


@pytest.mark.parametrize(
    ("context", "dockerfile", "expected"),
    [
        ("/w/app", "/w/app/Dockerfile", "Dockerfile"),
        ("/w/app", "/w/app/a/b/Dockerfile", "a/b/Dockerfile"),
        ("/w/app", "/w/app-other/Dockerfile", OUTSIDE_DOCKERFILE),
        ("/w/app", "/w/app", OUTSIDE_DOCKERFILE),
    ],
)
def test_dockerfile_name(context: str, dockerfile: str, expected: str) -> None:
    assert dockerfile_name(PurePosixPath(context), PurePosixPath(dockerfile)) == expected
