"""BuildKit through the Engine API: the pure parts (builder choice, context archive, scrubbing, error
texts), then builds on the stack's engine (Docker 20.10)."""

from __future__ import annotations

import gzip
import io
import shutil
import subprocess
import tarfile
import threading
import time
import uuid
from dataclasses import replace
from pathlib import Path

import pytest

from ecr_action.buildkit import (
    BUILDKIT,
    CLASSIC,
    EngineInfo,
    build,
    choose_builder,
    engine_info,
    packed_context,
    probe_engine,
)
from ecr_action.buildplan import OUTSIDE_DOCKERFILE, BuildSpec, plan
from ecr_action.errors import BuildError, DockerEngineError
from stack.apps import BUSYBOX, write_busyboxes
from stack.client import StackClient

ENGINE_20 = EngineInfo("1.41", "linux", None, "Docker/20.10.24+dfsg1 (linux)")
ENGINE_28 = EngineInfo("1.51", "linux", "2", "Docker/28.0.4 (linux)")


# ---- Which builder -------------------------------------------------------------------------------


def test_engine_info_from_the_ping_headers_of_docker_20_10() -> None:
    headers = {
        "Api-Version": "1.41",
        "Cache-Control": "no-cache, no-store, must-revalidate",
        "Docker-Experimental": "false",
        "Ostype": "linux",
        "Server": "Docker/20.10.24+dfsg1 (linux)",
    }
    assert engine_info(headers) == ENGINE_20
    assert ENGINE_20.version == "20.10.24"
    assert engine_info({"api-version": "1.51", "builder-version": "2", "ostype": "linux"}).builder_version == "2"


@pytest.mark.parametrize(
    ("requested", "info", "expected"),
    [
        ("auto", ENGINE_20, BUILDKIT),  # 20.10 sends no Builder-Version unless configured, and has BuildKit
        ("auto", ENGINE_28, BUILDKIT),
        ("auto", replace(ENGINE_20, builder_version="1"), CLASSIC),  # the daemon's features.buildkit: false
        ("buildkit", replace(ENGINE_20, builder_version="1"), BUILDKIT),
        ("auto", replace(ENGINE_20, api_version="1.38"), CLASSIC),
        ("auto", replace(ENGINE_28, os_type="windows"), CLASSIC),
        ("classic", ENGINE_28, CLASSIC),
        ("classic", replace(ENGINE_20, api_version="1.30"), CLASSIC),
    ],
)
def test_choose_builder(requested: str, info: EngineInfo, expected: str) -> None:
    assert choose_builder(requested, info) == expected


@pytest.mark.parametrize(
    ("info", "reason"),
    [
        (replace(ENGINE_20, api_version="1.38"), "API version is 1.38, and BuildKit needs 1.39"),
        (replace(ENGINE_20, os_type="windows"), "it is a windows engine"),
    ],
)
def test_buildkit_asked_of_an_engine_without_it_is_an_error_naming_why(info: EngineInfo, reason: str) -> None:
    with pytest.raises(DockerEngineError, match=reason) as raised:
        choose_builder("buildkit", info)
    assert "set `builder: classic`" in raised.value.message


# ---- The context ---------------------------------------------------------------------------------


def members(context: Path, dockerfile: Path) -> tuple[list[tarfile.TarInfo], bytes, str]:
    with packed_context(context, dockerfile) as packed:
        raw = packed.archive.read_bytes()
        name = packed.dockerfile
    data = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return tar.getmembers(), raw, name


def test_the_archive_opens_with_the_dockerfile_in_a_plain_tar_header(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("a")
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    entries, raw, name = members(tmp_path, tmp_path / "Dockerfile")
    # BuildKit reads an upload as a tar only if a tar header starts in its first 1024 bytes.
    assert raw[257:262] == b"ustar"
    assert raw[:10] == b"Dockerfile"
    assert name == "Dockerfile"
    assert [entry.name for entry in entries] == ["Dockerfile", "a.txt"]
    assert all(entry.uid == entry.gid == 0 and isinstance(entry.mtime, int) for entry in entries)
    assert not any(entry.pax_headers for entry in entries)


def test_dockerignore_excludes_but_never_the_dockerfile(tmp_path: Path) -> None:
    for path in ("keep.txt", "secret.env", "logs/a.log", "logs/keep.log", "Dockerfile"):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(path)
    (tmp_path / ".dockerignore").write_text("# comment\n*.env\nlogs/*\n!logs/keep.log\nDockerfile\n")
    entries, _, _ = members(tmp_path, tmp_path / "Dockerfile")
    assert sorted(entry.name for entry in entries) == [
        ".dockerignore",
        "Dockerfile",
        "keep.txt",
        "logs",
        "logs/keep.log",
    ]


def test_a_dockerfiles_own_ignore_file_wins_over_the_contexts(tmp_path: Path) -> None:
    (tmp_path / "docker").mkdir()
    for path in ("a.txt", "b.txt", "docker/prod.Dockerfile"):
        (tmp_path / path).write_text(path)
    (tmp_path / ".dockerignore").write_text("a.txt\n")
    (tmp_path / "docker" / "prod.Dockerfile.dockerignore").write_text("b.txt\n")
    entries, _, name = members(tmp_path, tmp_path / "docker" / "prod.Dockerfile")
    assert name == "docker/prod.Dockerfile"
    names = [entry.name for entry in entries]
    assert names[0] == "docker/prod.Dockerfile"
    assert "a.txt" in names
    assert "b.txt" not in names


def test_a_dockerfile_outside_the_context_is_added_to_it(tmp_path: Path) -> None:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "a.txt").write_text("a")
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    entries, _, name = members(tmp_path / "app", tmp_path / "Dockerfile")
    assert name == OUTSIDE_DOCKERFILE
    assert [entry.name for entry in entries] == [OUTSIDE_DOCKERFILE, "a.txt"]


def test_a_dockerfile_name_too_long_for_a_plain_header_makes_a_gzip_archive(tmp_path: Path) -> None:
    long = tmp_path / ("d" * 60) / ("e" * 60)
    long.mkdir(parents=True)
    (long / "Dockerfile").write_text("FROM scratch\n")
    entries, raw, name = members(tmp_path, long / "Dockerfile")
    assert raw[:2] == b"\x1f\x8b"  # BuildKit knows a gzip upload by these bytes
    assert entries[0].name == name


# ---- On the stack's engine -----------------------------------------------------------------------


def context_with(directory: Path, dockerfile: str, **files: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy(BUSYBOX, directory / "busybox")
    (directory / "Dockerfile").write_text(dockerfile)
    for name, text in files.items():
        (directory / name).write_text(text)
    return directory


PREAMBLE = 'FROM scratch AS base\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\n'


def spec_for(context: Path, **changes: object) -> BuildSpec:
    spec = BuildSpec(
        context=context,
        dockerfile=context / "Dockerfile",
        build_args=(),
        labels=(),
        target=None,
        no_cache=False,
        pull=False,
        local_name=f"buildkit-test/{uuid.uuid4().hex[:12]}:v1",
        network="none",  # the stack's engine has no bridge network, BuildKit's default
    )
    return replace(spec, **changes)


def run_build(stack: StackClient, context: Path, *, secrets: tuple[str, ...] = (), timeout=None, **changes):
    (request,) = plan(spec_for(context, **changes))
    lines: list[str] = []
    with packed_context(context, context / "Dockerfile") as packed:
        built = build(stack.docker(), request, packed, log=lines.append, secrets=secrets, timeout=timeout)
    return built, lines


def cat(stack: StackClient, image: str, path: str) -> str:
    output = stack.docker().containers.run(image, ["/bin/busybox", "cat", path], remove=True, network_mode="none")
    return output.decode().strip()


@pytest.mark.stack
def test_the_stack_engine_is_chosen_for_buildkit(stack: StackClient) -> None:
    info = probe_engine(stack.docker())
    assert info.api_version == "1.41"
    assert choose_builder("auto", info) == BUILDKIT


@pytest.mark.stack
def test_a_build_is_tagged_labelled_and_sees_its_target_arch(stack: StackClient, tmp_path: Path) -> None:
    context = context_with(tmp_path / "app", PREAMBLE + "ARG TARGETARCH\nRUN echo $TARGETARCH > /arch && cat /arch\n")
    built, lines = run_build(stack, context, platforms=("linux/amd64",), labels=(("stage", "final"),), no_cache=True)
    image = stack.docker().images.get(built.reference)
    assert image.id == built.image_id
    assert image.labels == {"stage": "final"}
    assert cat(stack, built.image_id, "/arch") == "amd64"
    assert any(line.endswith(" amd64") and line.startswith("#") for line in lines)


@pytest.mark.stack
def test_each_platform_is_built_and_tagged_on_its_own(stack: StackClient, tmp_path: Path) -> None:
    context = context_with(
        tmp_path / "app",
        'FROM scratch\nARG TARGETARCH\nCOPY busybox-${TARGETARCH} /bin/busybox\nRUN ["/bin/busybox", "--install", '
        '"-s", "/bin"]\nRUN uname -m > /machine\n',
    )
    write_busyboxes(context, stack.config)
    spec = spec_for(context, platforms=("linux/amd64", "linux/arm64"))
    with packed_context(context, context / "Dockerfile") as packed:
        built = [build(stack.docker(), request, packed, log=lambda _: None) for request in plan(spec)]
    assert [(image.platform, image.reference.rpartition(":")[2]) for image in built] == [
        ("linux/amd64", "v1-linux-amd64"),
        ("linux/arm64", "v1-linux-arm64"),
    ]
    assert [stack.docker().images.get(image.reference).attrs["Architecture"] for image in built] == ["amd64", "arm64"]
    assert cat(stack, built[1].image_id, "/machine") == "aarch64"  # run under the stack's qemu


@pytest.mark.stack
def test_a_cache_mount_is_kept_for_the_next_build(stack: StackClient, tmp_path: Path) -> None:
    cache = uuid.uuid4().hex
    context = context_with(
        tmp_path / "app",
        PREAMBLE + f"ARG RUN\nRUN --mount=type=cache,id={cache},target=/cache "
        'echo "seen: $(cat /cache/stamp 2>/dev/null || echo nothing)" && echo $RUN > /cache/stamp\n',
    )
    _, first = run_build(stack, context, build_args=(("RUN", "first"),))
    _, second = run_build(stack, context, build_args=(("RUN", "second"),))
    assert any(line.endswith(" seen: nothing") for line in first)
    assert any(line.endswith(" seen: first") for line in second)


@pytest.mark.stack
def test_target_builds_only_up_to_that_stage(stack: StackClient, tmp_path: Path) -> None:
    dockerfile = PREAMBLE + "RUN echo base > /stage\nFROM base AS final\nRUN echo final > /stage\n"
    built, _ = run_build(stack, context_with(tmp_path / "app", dockerfile), target="base")
    assert cat(stack, built.image_id, "/stage") == "base"


@pytest.mark.stack
def test_dockerignore_keeps_files_out_of_the_build(stack: StackClient, tmp_path: Path) -> None:
    context = context_with(
        tmp_path / "app",
        PREAMBLE + "COPY . /ctx\nRUN ls -a /ctx\n",
        **{".dockerignore": "secret.env\n", "secret.env": "TOKEN=1", "kept.txt": "k"},
    )
    _, lines = run_build(stack, context, no_cache=True)
    listed = {line.split()[-1] for line in lines if line.startswith("#")}
    assert "kept.txt" in listed
    assert "secret.env" not in listed


@pytest.mark.stack
def test_a_failing_run_is_a_build_error_without_the_build_arg_values(stack: StackClient, tmp_path: Path) -> None:
    secret = "s3cr3t value&x=1/é"
    context = context_with(tmp_path / "app", PREAMBLE + 'ARG TOKEN\nRUN echo "token is $TOKEN" && exit 3\n')
    with pytest.raises(BuildError) as raised:
        run_build(stack, context, build_args=(("TOKEN", secret),), secrets=(secret,))
    message = raised.value.message
    assert message.startswith("The build failed at step #")
    assert "exit code: 3" in message
    assert message.endswith("Its last output lines:\n  token is ***")
    assert "s3cr3t" not in message


@pytest.mark.stack
def test_no_build_arg_value_reaches_the_log(stack: StackClient, tmp_path: Path) -> None:
    secret = f"s3cr3t value&x=1/{uuid.uuid4().hex}"
    context = context_with(tmp_path / "app", PREAMBLE + 'ARG TOKEN\nRUN echo "token is $TOKEN"\n')
    _, lines = run_build(stack, context, build_args=(("TOKEN", secret),), secrets=(secret,))
    assert "token is ***" in "\n".join(lines)
    assert not [line for line in lines if "s3cr3t" in line or "s3cr3t%20value" in line]


@pytest.mark.stack
def test_a_refused_request_gives_only_the_engines_message(stack: StackClient, tmp_path: Path) -> None:
    secret = "s3cr3t-in-the-url"
    context = context_with(tmp_path / "app", PREAMBLE)
    with pytest.raises(BuildError) as raised:
        run_build(stack, context, network="bogus", build_args=(("TOKEN", secret),), secrets=(secret,))
    assert raised.value.message == (
        'The Docker Engine refused the build (HTTP 500 Internal Server Error): network mode "bogus" not '
        "supported by buildkit."
    )


@pytest.mark.stack
@pytest.mark.parametrize(
    ("dockerfile", "expected"),
    [
        (PREAMBLE + "RUNN echo typo\n", "The Dockerfile is not valid: "),
        (PREAMBLE + "COPY missing.txt /m\n", "missing.txt is not in the build context"),
    ],
    ids=["parse error", "missing file"],
)
def test_dockerfile_errors_are_named(stack: StackClient, tmp_path: Path, dockerfile: str, expected: str) -> None:
    with pytest.raises(BuildError, match=expected):
        run_build(stack, context_with(tmp_path / "app", dockerfile))


@pytest.mark.stack
def test_a_heredoc_on_an_engine_older_than_23_is_named(stack: StackClient, tmp_path: Path) -> None:
    if int((probe_engine(stack.docker()).version or "0").split(".")[0]) >= 23:
        pytest.skip("this engine reads heredocs")
    with pytest.raises(BuildError, match=r"The Dockerfile has a heredoc \(`<<`, line 4\)"):
        run_build(stack, context_with(tmp_path / "app", PREAMBLE + "RUN <<EOF\necho hi\nEOF\n"))


@pytest.mark.stack
def test_a_syntax_line_the_engine_cannot_fetch_is_named(stack: StackClient, tmp_path: Path) -> None:
    # The stack has no way out to Docker Hub, as a runner with no network to it (or no session) would not.
    context = context_with(tmp_path / "app", "# syntax=docker/dockerfile:1.4\n" + PREAMBLE)
    with pytest.raises(BuildError, match=r"The Dockerfile's `# syntax=docker/dockerfile:1.4` line makes BuildKit"):
        run_build(stack, context)


def running(marker: str) -> bool:
    return subprocess.run(["pgrep", "-f", marker], capture_output=True).returncode == 0


@pytest.mark.stack
def test_the_build_timeout_stops_the_build_on_the_engine(stack: StackClient, tmp_path: Path) -> None:
    marker = f"marker-{uuid.uuid4().hex}"
    context = context_with(tmp_path / "app", PREAMBLE + f"RUN sh -c 'sleep 60; : {marker}'\n")
    seen = threading.Event()

    def watch() -> None:
        until = time.monotonic() + 5
        while time.monotonic() < until and not seen.is_set():
            if running(marker):
                seen.set()
            time.sleep(0.2)

    watcher = threading.Thread(target=watch)
    watcher.start()
    started = time.monotonic()
    with pytest.raises(BuildError, match=r"longer than build-timeout \(3 seconds\)"):
        run_build(stack, context, timeout=3)
    assert time.monotonic() - started < 10
    watcher.join()
    assert seen.is_set(), "the step never ran"
    # The engine cancels a build whose client has gone: the step's process ends.
    deadline = time.monotonic() + 15
    while running(marker):
        assert time.monotonic() < deadline, "the build's process is still running"
        time.sleep(0.5)
