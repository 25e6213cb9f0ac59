"""BuildKit's progress stream from the Docker Engine: decoded, and rendered as a log a person reads.

With `POST /build?version=2` the engine sends JSON lines; BuildKit's progress is in those with
`"id": "moby.buildkit.trace"`, whose `aux` is a base64 `StatusResponse` protobuf (moby/buildkit,
api/services/control/control.proto). It is decoded with the small protobuf wire-format codec in
protowire.py rather than by the `protobuf` package: we read a dozen fields of five messages.
Fields we do not know are skipped, as protobuf requires, so an engine that adds fields still decodes.

Nothing here talks to the engine or writes workflow commands: `follow` takes the decoded JSON
messages, passes log lines and warnings to callbacks, and returns what the build came to.
"""

from __future__ import annotations

import base64
import binascii
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ecr_action import protowire
from ecr_action.protowire import as_bytes, as_text

TRACE_ID = "moby.buildkit.trace"
IMAGE_ID = "moby.image.id"

# Steps of the build itself are always shown. BuildKit's own bookkeeping (loading the context and
# the Dockerfile, resolving image metadata) is only shown when it fails, prints or is slow; "copy
# /context /" is the unpacking of an uploaded context, which BuildKit does not name "[internal]".
_QUIET_PREFIXES = ("[internal] ", "copy /context /")
SLOW_SECONDS = 1.0
TAIL_LINES = 10
# BuildKit reports the steps it stops because another one failed with this error.
_CANCELED = "context canceled"


def _fields(data: bytes) -> Iterator[tuple[int, int | bytes]]:
    """(field number, value) of each varint and length-delimited field; fixed-width fields, which no field
    we read has, are skipped."""
    wanted = (protowire.VARINT, protowire.LENGTH_DELIMITED)
    return ((number, value) for number, wire_type, value in protowire.fields(data) if wire_type in wanted)


# ---- BuildKit's messages ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Vertex:
    """One node of the build graph, such as a Dockerfile step; sent again each time it changes."""

    digest: str
    name: str = ""
    cached: bool = False
    started: float | None = None
    completed: float | None = None
    error: str = ""


@dataclass(frozen=True, slots=True)
class VertexLog:
    """Output of a step's process: a chunk of bytes, not necessarily whole lines."""

    vertex: str
    timestamp: float | None
    data: bytes


@dataclass(frozen=True, slots=True)
class VertexWarning:
    vertex: str
    short: str
    detail: tuple[str, ...]
    url: str
    file: str
    line: int | None  # first line of the first range, 1-based as BuildKit sends it


@dataclass(frozen=True, slots=True)
class StatusUpdate:
    vertexes: tuple[Vertex, ...] = ()
    logs: tuple[VertexLog, ...] = ()
    warnings: tuple[VertexWarning, ...] = ()


def decode_status(data: bytes) -> StatusUpdate:
    """A `StatusResponse`; ValueError when the bytes are not one."""
    vertexes, logs, warnings = [], [], []
    for number, value in _fields(data):
        if number == 1:
            vertexes.append(_vertex(as_bytes(value)))
        elif number == 3:
            logs.append(_log(as_bytes(value)))
        elif number == 4:
            warnings.append(_warning(as_bytes(value)))
        # 2: VertexStatus, the progress of pulls and exports: not shown.
    return StatusUpdate(tuple(vertexes), tuple(logs), tuple(warnings))


def _vertex(data: bytes) -> Vertex:
    values: dict[str, Any] = {"digest": ""}
    for number, value in _fields(data):
        if number == 1:
            values["digest"] = as_text(value)
        elif number == 3:
            values["name"] = as_text(value)
        elif number == 4:
            values["cached"] = bool(value)
        elif number == 5:
            values["started"] = protowire.timestamp(value)
        elif number == 6:
            values["completed"] = protowire.timestamp(value)
        elif number == 7:
            values["error"] = as_text(value)
    return Vertex(**values)


def _log(data: bytes) -> VertexLog:
    vertex, timestamp, message = "", None, b""
    for number, value in _fields(data):
        if number == 1:
            vertex = as_text(value)
        elif number == 2:
            timestamp = protowire.timestamp(value)
        elif number == 4:
            message = as_bytes(value)
    return VertexLog(vertex, timestamp, message)


def _warning(data: bytes) -> VertexWarning:
    vertex, short, url, file, line = "", "", "", "", None
    detail: list[str] = []
    for number, value in _fields(data):
        if number == 1:
            vertex = as_text(value)
        elif number == 3:
            short = as_text(value)
        elif number == 4:
            detail.append(as_text(value))
        elif number == 5:
            url = as_text(value)
        elif number == 6:  # pb.SourceInfo {string filename = 1; ...}
            file = next((as_text(part) for key, part in _fields(as_bytes(value)) if key == 1), "")
        elif number == 7 and line is None:  # pb.Range {Position start = 1; ...}, Position {int32 line = 1; ...}
            start = next((as_bytes(part) for key, part in _fields(as_bytes(value)) if key == 1), b"")
            line = next((part for key, part in _fields(start) if key == 1 and isinstance(part, int)), None)
    return VertexWarning(vertex, short, tuple(detail), url, file, line)


# ---- The log a person reads ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BuildWarning:
    """A warning BuildKit raised about the Dockerfile (a deprecated form, a lint check)."""

    message: str
    step: str  # the step's name, empty when BuildKit did not tie it to one
    detail: tuple[str, ...] = ()
    url: str | None = None
    file: str | None = None
    line: int | None = None


@dataclass(frozen=True, slots=True)
class FailedStep:
    number: int  # as numbered in the log (#N)
    name: str
    error: str
    output: tuple[str, ...]  # its last output lines


@dataclass(frozen=True, slots=True)
class BuildOutcome:
    image_id: str | None
    error: str | None  # the engine's final error message
    failed_step: FailedStep | None


@dataclass(slots=True)
class _Step:
    name: str
    quiet: bool
    number: int = 0  # given when first shown, so the numbers in the log have no gaps
    started: float | None = None
    finished: bool = False
    partial: str = ""
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=TAIL_LINES))


class BuildLog:
    """Turns status updates into lines in buildx's plain style: `#3 [2/4] RUN make`, `#3 0.512 output`,
    `#3 DONE 1.2s`, `#3 CACHED`, `#3 ERROR: ...`."""

    def __init__(self, log: Callable[[str], None], warn: Callable[[BuildWarning], None] | None = None) -> None:
        self._log = log
        self._warn = warn
        self._steps: dict[str, _Step] = {}
        self._shown = 0
        self.failed: FailedStep | None = None

    def feed(self, update: StatusUpdate) -> None:
        for vertex in update.vertexes:
            self._vertex(vertex)
        for entry in update.logs:
            self._output(entry)
        for warning in update.warnings:
            self._warning(warning)

    def finish(self) -> None:
        """Flush the output lines still waiting for their newline."""
        for step in self._steps.values():
            self._flush(step)

    def _step(self, digest: str) -> _Step:
        step = self._steps.get(digest)
        if step is None:
            step = self._steps[digest] = _Step(name="", quiet=True)
        return step

    def _show(self, step: _Step) -> None:
        if not step.number:
            self._shown += 1
            step.number = self._shown
            self._log(f"#{step.number} {step.name}")

    def _vertex(self, vertex: Vertex) -> None:
        step = self._step(vertex.digest)
        if vertex.name and not step.name:
            step.name = vertex.name
            step.quiet = vertex.name.startswith(_QUIET_PREFIXES)
        if step.finished:
            return
        if vertex.started is not None and step.started is None:
            step.started = vertex.started
            if not step.quiet and not vertex.cached:
                self._show(step)
        if vertex.cached and not step.quiet:
            self._show(step)
            self._log(f"#{step.number} CACHED")
            step.finished = True
        elif vertex.error:
            self._flush(step)
            self._show(step)
            step.finished = True
            if vertex.error.endswith(_CANCELED):
                self._log(f"#{step.number} CANCELED")
                return
            self._log(f"#{step.number} ERROR: {vertex.error}")
            if self.failed is None:
                self.failed = FailedStep(step.number, step.name, vertex.error, tuple(step.tail))
        elif vertex.completed is not None:
            self._flush(step)
            step.finished = True
            duration = vertex.completed - (step.started if step.started is not None else vertex.completed)
            if step.quiet and not step.number and duration < SLOW_SECONDS:
                return
            self._show(step)
            self._log(f"#{step.number} DONE {duration:.1f}s")

    def _output(self, entry: VertexLog) -> None:
        step = self._step(entry.vertex)
        text = step.partial + entry.data.decode("utf-8", "replace")
        *lines, step.partial = text.split("\n")
        elapsed = ""
        if entry.timestamp is not None and step.started is not None:
            elapsed = f"{max(entry.timestamp - step.started, 0):.3f} "
        for line in lines:
            self._line(step, elapsed, line)

    def _flush(self, step: _Step) -> None:
        if step.partial:
            line, step.partial = step.partial, ""
            self._line(step, "", line)

    def _line(self, step: _Step, elapsed: str, line: str) -> None:
        line = line.rstrip("\r")
        self._show(step)
        self._log(f"#{step.number} {elapsed}{line}")
        step.tail.append(line)

    def _warning(self, warning: VertexWarning) -> None:
        step = self._steps.get(warning.vertex)
        message = BuildWarning(
            message=warning.short,
            step=step.name if step else "",
            detail=warning.detail,
            url=warning.url or None,
            file=warning.file or None,
            line=warning.line,
        )
        if self._warn is not None:
            self._warn(message)


def follow(
    messages: Iterable[Mapping[str, Any]],
    log: Callable[[str], None],
    warn: Callable[[BuildWarning], None] | None = None,
) -> BuildOutcome:
    """Render the engine's decoded JSON messages; the image id, or the error and the step that failed."""
    renderer = BuildLog(log, warn)
    image_id = error = None
    for message in messages:
        aux = message.get("aux")
        if message.get("id") == TRACE_ID and isinstance(aux, str):
            try:
                update = decode_status(base64.b64decode(aux))
            except (ValueError, binascii.Error):
                continue  # progress is for reading only: a record we cannot read is not worth failing a build
            renderer.feed(update)
        elif isinstance(aux, Mapping) and isinstance(aux.get("ID"), str):
            image_id = aux["ID"]
        elif "error" in message or "errorDetail" in message:
            detail = message.get("errorDetail")
            text = detail.get("message") if isinstance(detail, Mapping) else None
            error = str(text or message.get("error") or "unknown error")
        elif isinstance(message.get("stream"), str):
            for line in message["stream"].splitlines():
                if line.strip():
                    log(line)
    renderer.finish()
    return BuildOutcome(image_id=image_id, error=error, failed_step=renderer.failed)
