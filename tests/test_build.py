"""Build: the stack's Docker Engine builds the context, the log is streamed, failures are named."""

from __future__ import annotations

from pathlib import Path

import pytest

from ecr_action.build import BuildSpec, build_image, engine, follow_build_log
from ecr_action.errors import BuildError, DockerEngineError
from stack.client import StackClient


def spec_for(app_dir: Path, **changes: object) -> BuildSpec:
    values: dict = {
        "context": app_dir,
        "dockerfile": app_dir / "Dockerfile",
        "build_args": (),
        "target": None,
        "labels": (("org.opencontainers.image.revision", "abc123"),),
        "pull": False,
        "no_cache": False,
        "reference": "local.test/app:v1",
    }
    values.update(changes)
    return BuildSpec(**values)


@pytest.mark.stack
def test_build_streams_the_log_and_labels_the_image(stack: StackClient, app_dir: Path) -> None:
    lines: list[str] = []
    built = build_image(engine(stack.config.docker_host), spec_for(app_dir), log=lines.append)

    image = stack.docker().images.get(built.image_id)
    assert "local.test/app:v1" in image.tags
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
