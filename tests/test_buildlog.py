"""BuildKit's progress stream: the StatusResponse decoder, and the log rendered from streams recorded from
the stack's engine (tests/fixtures/buildkit) and from hand-made updates."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from ecr_action.buildlog import (
    BuildLog,
    BuildWarning,
    StatusUpdate,
    Vertex,
    VertexLog,
    VertexWarning,
    decode_status,
    follow,
)
from ecr_action.protowire import encode_message, encode_varint

FIXTURES = Path(__file__).parent / "fixtures" / "buildkit"


def field(number: int, value: int | bytes | str) -> bytes:
    return encode_message([(number, value)])


def timestamp(seconds: float) -> bytes:
    return field(1, int(seconds)) + field(2, round((seconds - int(seconds)) * 1e9))


def vertex(digest: str, name: str = "", **parts: object) -> bytes:
    body = field(1, digest) + (field(3, name) if name else b"")
    if parts.get("cached"):
        body += field(4, 1)
    if "started" in parts:
        body += field(5, timestamp(parts["started"]))  # type: ignore[arg-type]
    if "completed" in parts:
        body += field(6, timestamp(parts["completed"]))  # type: ignore[arg-type]
    if "error" in parts:
        body += field(7, str(parts["error"]))
    return field(1, body)


def log_entry(digest: str, at: float, data: bytes) -> bytes:
    return field(3, field(1, digest) + field(2, timestamp(at)) + field(3, 1) + field(4, data))


def trace(*parts: bytes) -> dict[str, str]:
    return {"id": "moby.buildkit.trace", "aux": base64.b64encode(b"".join(parts)).decode()}


def render(messages: list[dict]) -> tuple[list[str], object]:
    lines: list[str] = []
    outcome = follow(messages, lines.append)
    return lines, outcome


def recorded(name: str) -> list[dict]:
    return [json.loads(line) for line in (FIXTURES / name).read_text().splitlines() if line.strip()]


# ---- The decoder ---------------------------------------------------------------------------------


def test_a_status_response_is_decoded_field_by_field() -> None:
    data = (
        vertex("sha256:a", "[1/2] RUN make", cached=True, started=10.25, completed=11.5, error="boom")
        + log_entry("sha256:a", 10.5, b"out\n")
        + field(2, field(1, "status-id") + field(4, 5))  # a VertexStatus: not decoded
        + field(
            4,
            field(1, "sha256:a")
            + field(2, 1)
            + field(3, "FromAsCasing: 'as' and 'FROM' keywords' casing do not match")
            + field(4, "detail one")
            + field(5, "https://docs.docker.com/go/dockerfile/rule/from-as-casing/")
            + field(6, field(1, "Dockerfile") + field(2, b"FROM x as y"))
            + field(7, field(1, field(1, 3) + field(2, 1)) + field(2, field(1, 3))),
        )
    )
    assert decode_status(data) == StatusUpdate(
        vertexes=(Vertex("sha256:a", "[1/2] RUN make", True, 10.25, 11.5, "boom"),),
        logs=(VertexLog("sha256:a", 10.5, b"out\n"),),
        warnings=(
            VertexWarning(
                vertex="sha256:a",
                short="FromAsCasing: 'as' and 'FROM' keywords' casing do not match",
                detail=("detail one",),
                url="https://docs.docker.com/go/dockerfile/rule/from-as-casing/",
                file="Dockerfile",
                line=3,
            ),
        ),
    )


def test_unknown_fields_of_every_wire_type_are_skipped() -> None:
    unknown = (
        field(15, 7)  # varint
        + encode_varint(16 << 3 | 1)
        + b"\x00" * 8  # fixed64
        + encode_varint(17 << 3 | 5)
        + b"\x00" * 4  # fixed32
        + field(18, b"\x01\x02")  # bytes
    )
    assert decode_status(unknown + vertex("sha256:b", "step")).vertexes == (Vertex("sha256:b", "step"),)


def test_bytes_that_are_not_a_status_response_are_a_value_error() -> None:
    # Every kind of malformed message is in tests/test_protowire.py.
    with pytest.raises(ValueError):
        decode_status(b"\x0a\x05ab")


def test_a_record_that_cannot_be_decoded_is_skipped() -> None:
    messages = [
        {"id": "moby.buildkit.trace", "aux": "not base64!"},
        {"id": "moby.buildkit.trace", "aux": base64.b64encode(b"\x0a\x05ab").decode()},
        {"id": "moby.image.id", "aux": {"ID": "sha256:1"}},
    ]
    lines, outcome = render(messages)
    assert lines == []
    assert outcome.image_id == "sha256:1"


# ---- Streams recorded from the engine ------------------------------------------------------------


def test_a_recorded_build_renders_each_step_its_output_and_duration() -> None:
    lines, outcome = render(recorded("success.jsonl"))
    step = '[stage-0 3/3] RUN --mount=type=cache,target=/cache echo "hello from RUN" && echo run >> /cache/runs'
    assert lines == [
        "#1 [stage-0 1/3] COPY busybox-amd64 /bin/busybox",
        "#1 DONE 0.0s",
        '#2 [stage-0 2/3] RUN ["/bin/busybox", "--install", "-s", "/bin"]',
        "#2 DONE 0.1s",
        f"#3 {step} && wc -l < /cache/runs",
        "#3 0.041 hello from RUN",
        "#3 0.041 1",
        "#3 DONE 0.0s",
        "#4 exporting to image",
        "#4 DONE 0.0s",
        "Successfully tagged buildkit-fixture/success:latest",
    ]
    assert outcome.image_id == "sha256:bea1fb715ab451d8664a4fc0235b09ffe6e34124e78975dadfd3feb21c2c5104"
    assert outcome.error is None
    assert outcome.failed_step is None


def test_a_cached_build_says_cached_and_gives_the_same_image() -> None:
    lines, outcome = render(recorded("success-cached.jsonl"))
    assert [line for line in lines if line.endswith("CACHED")] == ["#1 CACHED", "#2 CACHED", "#3 CACHED"]
    assert outcome.image_id == render(recorded("success.jsonl"))[1].image_id


def test_a_failed_run_names_the_step_and_keeps_its_output() -> None:
    lines, outcome = render(recorded("run-fails.jsonl"))
    error = 'executor failed running [/bin/sh -c echo "about to fail" && exit 3]: exit code: 3'
    assert lines[-3:] == [
        '#3 [3/3] RUN echo "about to fail" && exit 3',
        "#3 0.063 about to fail",
        f"#3 ERROR: {error}",
    ]
    assert outcome.image_id is None
    assert outcome.error == error
    assert outcome.failed_step.number == 3
    assert outcome.failed_step.name == '[3/3] RUN echo "about to fail" && exit 3'
    assert outcome.failed_step.output == ("about to fail",)


def test_a_parse_error_has_no_step_and_the_context_steps_stay_quiet() -> None:
    lines, outcome = render(recorded("parse-error.jsonl"))
    assert lines == []
    assert outcome.failed_step is None
    assert "dockerfile parse error line 3: unknown instruction: RUNN" in outcome.error


def test_an_emulated_arm64_build_shows_what_it_ran_on() -> None:
    lines, outcome = render(recorded("arm64.jsonl"))
    assert "#3 0.057 aarch64" in lines
    assert outcome.image_id == "sha256:0a24aece1f7d894b20e62839ec43a4f1ab30c65bb1e62acd8b9f9e2842282f48"


# ---- The renderer, update by update ----------------------------------------------------------------


def feed(*updates: bytes) -> tuple[list[str], BuildLog]:
    lines: list[str] = []
    renderer = BuildLog(lines.append)
    for update in updates:
        renderer.feed(decode_status(update))
    renderer.finish()
    return lines, renderer


def test_partial_lines_wait_for_their_newline_step_by_step() -> None:
    lines, _ = feed(
        vertex("sha256:a", "[1/2] RUN a", started=100.0) + vertex("sha256:b", "[2/2] RUN b", started=100.0),
        log_entry("sha256:a", 100.5, b"one\ntw"),
        log_entry("sha256:b", 100.6, b"b-line\r\n"),
        log_entry("sha256:a", 101.0, b"o\nthree"),
        vertex("sha256:a", "[1/2] RUN a", started=100.0, completed=102.0),
    )
    assert lines == [
        "#1 [1/2] RUN a",
        "#2 [2/2] RUN b",
        "#1 0.500 one",
        "#2 0.600 b-line",
        "#1 1.000 two",
        "#1 three",
        "#1 DONE 2.0s",
    ]


def test_internal_steps_show_only_when_slow_printing_or_failing() -> None:
    lines, renderer = feed(
        vertex("sha256:fast", "[internal] load metadata for docker.io/library/alpine:3", started=1.0, completed=1.2),
        vertex("sha256:slow", "[internal] load remote build context", started=1.0, completed=3.5),
        vertex("sha256:copy", "copy /context /", started=3.5, completed=3.6),
        vertex("sha256:bad", "[internal] load build definition from Dockerfile", started=4.0),
        vertex("sha256:bad", "[internal] load build definition from Dockerfile", started=4.0, error="no such file"),
    )
    assert lines == [
        "#1 [internal] load remote build context",
        "#1 DONE 2.5s",
        "#2 [internal] load build definition from Dockerfile",
        "#2 ERROR: no such file",
    ]
    assert renderer.failed.name == "[internal] load build definition from Dockerfile"


def test_a_step_stopped_by_another_ones_failure_is_canceled_not_the_cause() -> None:
    lines, renderer = feed(
        vertex("sha256:a", "[a 1/1] RUN sleep 9", started=1.0) + vertex("sha256:b", "[b 1/1] RUN false", started=1.0),
        vertex("sha256:b", "[b 1/1] RUN false", started=1.0, completed=1.1, error="exit code: 1"),
        vertex("sha256:a", "[a 1/1] RUN sleep 9", started=1.0, completed=1.2, error="context canceled"),
    )
    assert lines[-2:] == ["#2 ERROR: exit code: 1", "#1 CANCELED"]
    assert renderer.failed.name == "[b 1/1] RUN false"


def test_the_failed_step_keeps_only_its_last_ten_lines() -> None:
    output = "".join(f"line {number}\n" for number in range(1, 26)).encode()
    _, renderer = feed(
        vertex("sha256:a", "[1/1] RUN noisy", started=1.0),
        log_entry("sha256:a", 1.5, output),
        vertex("sha256:a", "[1/1] RUN noisy", started=1.0, completed=2.0, error="exit code: 2"),
    )
    assert renderer.failed.output == tuple(f"line {number}" for number in range(16, 26))


def test_an_update_repeated_after_the_end_prints_nothing_more() -> None:
    done = vertex("sha256:a", "[1/1] RUN a", started=1.0, completed=2.0)
    lines, _ = feed(vertex("sha256:a", "[1/1] RUN a", started=1.0), done, done)
    assert lines == ["#1 [1/1] RUN a", "#1 DONE 1.0s"]


def test_warnings_go_to_the_callback_with_the_step_they_belong_to() -> None:
    warnings: list[BuildWarning] = []
    messages = [
        trace(vertex("sha256:a", "[1/2] FROM docker.io/library/alpine:3", started=1.0)),
        trace(
            field(
                4,
                field(1, "sha256:a")
                + field(3, "LegacyKeyValueFormat")
                + field(4, "use ENV key=value")
                + field(6, field(1, "Dockerfile"))
                + field(7, field(1, field(1, 4))),
            )
        ),
        trace(field(4, field(3, "no step"))),
    ]
    follow(messages, lambda _: None, warnings.append)
    assert warnings == [
        BuildWarning(
            message="LegacyKeyValueFormat",
            step="[1/2] FROM docker.io/library/alpine:3",
            detail=("use ENV key=value",),
            file="Dockerfile",
            line=4,
        ),
        BuildWarning(message="no step", step=""),
    ]


def test_the_engines_error_message_is_taken_from_error_detail() -> None:
    _, outcome = render([{"errorDetail": {"message": "detailed"}, "error": "short"}])
    assert outcome.error == "detailed"
    _, outcome = render([{"error": "only this"}])
    assert outcome.error == "only this"
