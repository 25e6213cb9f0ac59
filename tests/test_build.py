"""Build: the stack's Docker Engine builds the context, the log is streamed, failures are named."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from ecr_action.build import (
    BuildSpec,
    base_image_registries,
    build_image,
    engine,
    follow_build_log,
)
from ecr_action.errors import BuildError, DockerEngineError, RegistryLoginError
from ecr_action.inputs.choices import Builder
from ecr_action.secrets import RegistryCredentials
from stack.client import StackClient
from tests.helpers import build_and_push, ecr_login


def spec_for(app_dir: Path, **changes: object) -> BuildSpec:
    values: dict = {
        "context": app_dir,
        "dockerfile": app_dir / "Dockerfile",
        "build_args": (),
        "target": None,
        "labels": (("org.opencontainers.image.revision", "abc123"),),
        "pull": False,
        "no_cache": False,
        # The classic builder's own tests; BuildKit's run with `buildkit_spec`.
        "builder": Builder.CLASSIC,
    }
    values.update(changes)
    return BuildSpec(**values)


@pytest.mark.stack
def test_build_streams_the_log_and_labels_the_image(stack: StackClient, app_dir: Path) -> None:
    lines: list[str] = []
    built = build_image(engine(stack.config.docker_host), spec_for(app_dir), log=lines.append)

    image = stack.docker().images.get(built.image_id)
    assert image.tags == []  # named only by the push, which checks ECR got this very image
    assert image.labels["org.opencontainers.image.revision"] == "abc123"
    assert any(line.startswith("Step 1/") for line in lines)


@pytest.mark.stack
def test_build_args_and_target_reach_the_build(stack: StackClient, app_dir: Path) -> None:
    (app_dir / "Dockerfile").write_text(
        "FROM scratch AS base\nCOPY busybox /bin/busybox\nARG GREETING\n"
        'RUN ["/bin/busybox", "sh", "-c", "echo $GREETING > /greeting"]\n'
        "FROM base AS final\nLABEL stage=final\n"
    )
    spec = spec_for(app_dir, build_args=(("GREETING", "hello-from-args"),), target="base")
    built = build_image(engine(stack.config.docker_host), spec, log=lambda _: None)

    output = stack.docker().containers.run(
        built.image_id, ["/bin/busybox", "cat", "/greeting"], remove=True, network_mode="none"
    )
    assert output.decode().strip() == "hello-from-args"
    assert "stage" not in (stack.docker().images.get(built.image_id).labels or {})


@pytest.mark.stack
def test_a_failing_step_is_a_build_error(stack: StackClient, app_dir: Path) -> None:
    (app_dir / "Dockerfile").write_text('FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "false"]\n')
    with pytest.raises(BuildError, match="returned a non-zero code: 1"):
        build_image(engine(stack.config.docker_host), spec_for(app_dir), log=lambda _: None)


def test_an_unreachable_engine_is_named(tmp_path: Path) -> None:
    with pytest.raises(DockerEngineError, match="Cannot reach the Docker Engine"):
        engine(f"unix://{tmp_path}/no.sock")


def test_build_log_lines_are_passed_on_and_the_last_id_wins() -> None:
    lines: list[str] = []
    chunks = [
        {"stream": "Step 1/2 : FROM scratch\n"},
        {"stream": "\n"},
        {"aux": {"ID": "sha256:1"}},
        {"stream": "two\nlines\n"},
        {"aux": {"ID": "sha256:2"}},
    ]
    assert follow_build_log(chunks, lines.append) == "sha256:2"
    assert lines == ["Step 1/2 : FROM scratch", "two", "lines"]


SECRET_ARG = 's3cr3t/v@lue&x=1 "q"'


@pytest.mark.stack
@pytest.mark.parametrize(
    "dockerfile",
    ["FROM scratch\nNOT_AN_INSTRUCTION here\n", "FROM scratch\nCOPY missing-file /x\n"],
    ids=["parse-error", "missing-file"],
)
def test_build_errors_carry_no_request_url_and_no_build_arg_value(
    stack: StackClient, app_dir: Path, dockerfile: str
) -> None:
    (app_dir / "Dockerfile").write_text(dockerfile)
    lines: list[str] = []
    with pytest.raises(BuildError) as raised:
        build_image(
            engine(stack.config.docker_host), spec_for(app_dir, build_args=(("TOKEN", SECRET_ARG),)), log=lines.append
        )
    shown = "\n".join([raised.value.message, *lines])
    assert "http" not in shown and "buildargs" not in shown
    for form in ("s3cr3t", "s3cr3t%2Fv%40lue"):
        assert form not in shown


@pytest.mark.stack
def test_a_build_past_its_timeout_is_stopped_with_a_clear_error(stack: StackClient, app_dir: Path) -> None:
    (app_dir / "Dockerfile").write_text(
        'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "sleep", "30"]\n'
    )
    started = time.monotonic()
    with pytest.raises(BuildError, match=r"longer than build-timeout \(2 seconds\)"):
        build_image(
            engine(stack.config.docker_host), spec_for(app_dir, timeout_seconds=2, no_cache=True), log=lambda _: None
        )
    assert time.monotonic() - started < 15


def test_base_images_in_ecr_are_found_in_from_lines() -> None:
    dockerfile = (
        "ARG X\n"
        "FROM 123456789012.dkr.ecr.us-east-1.amazonaws.com/base:1 AS base\n"
        "from --platform=$BUILDPLATFORM 210987654321.dkr.ecr.us-east-1.amazonaws.com/tools/x@sha256:ab AS tools\n"
        "FROM 333333333333.dkr.ecr.eu-west-1.amazonaws.com/elsewhere:1\n"
        "FROM 123456789012.dkr.ecr.us-east-1.amazonaws.com/other:2\n"
        "FROM public.ecr.aws/docker/library/alpine\n"
        "RUN echo FROM 444444444444.dkr.ecr.us-east-1.amazonaws.com/not-a-from\n"
    )
    assert base_image_registries(dockerfile, "us-east-1") == ("123456789012", "210987654321")


@pytest.mark.stack
def test_a_private_base_image_builds_with_the_registry_login(
    stack: StackClient, app_dir: Path, unique_name: str
) -> None:
    base_digest = build_and_push(stack, app_dir, unique_name, "base")
    host, auth = ecr_login(stack, stack.default_account)
    (app_dir / "Dockerfile").write_text(f"FROM {host}/{unique_name}@{base_digest}\nLABEL on=base\n")
    login = RegistryCredentials(host, auth["username"], auth["password"])
    docker_engine = engine(stack.config.docker_host)
    with pytest.raises(RegistryLoginError, match=host.replace(".", r"\.")):
        build_image(docker_engine, spec_for(app_dir, pull=True), log=lambda _: None)

    built = build_image(docker_engine, spec_for(app_dir, pull=True, registries=(login,)), log=lambda _: None)
    assert stack.docker().images.get(built.image_id).labels["on"] == "base"
