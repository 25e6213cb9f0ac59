"""The only writer of GitHub workflow commands (stdout) and file commands (outputs, job summary).

Nothing here reads the environment: `ecr_action.inputs` finds the stream and the file paths and
passes them in, which also lets tests capture everything this module writes.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partialmethod
from pathlib import Path
from typing import Literal, TextIO

AnnotationLevel = Literal["error", "warning", "notice"]


def escape_data(text: str) -> str:
    """GitHub's escaping for a command's message; `%` first so the runner decodes each escape once."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """GitHub's escaping for a command's property value, where `:` and `,` are separators."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def format_command(name: str, message: str = "", properties: dict[str, object] | None = None) -> str:
    """`::name key=value,...::message` with every value escaped; properties that are None are left out."""
    pairs = ",".join(
        f"{key}={escape_property(str(value))}" for key, value in (properties or {}).items() if value is not None
    )
    return f"::{name}{' ' + pairs if pairs else ''}::{escape_data(message)}"


def _looks_like_command(text: str) -> bool:
    # The runner reads a line as a command when it starts with `::` after leading whitespace.
    return any(line.lstrip().startswith("::") for line in text.splitlines())


def _heredoc_delimiter(text: str) -> str:
    """A random delimiter that does not occur in `text`, so `text` can neither end the value nor forge a record."""
    token = f"ghadelimiter_{uuid.uuid4().hex}"
    while token in text:
        token = f"ghadelimiter_{uuid.uuid4().hex}"
    return token


class Workflow:
    """Workflow commands on `stream`, step outputs in `output_path`, the job summary in `summary_path`.

    Without an output path (a local run), outputs are printed as `name=value` so they stay visible;
    without a summary path the summary is dropped with a debug line.
    """

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        output_path: Path | None = None,
        summary_path: Path | None = None,
    ) -> None:
        self._stream = stream if stream is not None else sys.stdout
        self._output_path = output_path
        self._summary_path = summary_path
        self._stop_token: str | None = None

    def _command(self, name: str, message: str = "", properties: dict[str, object] | None = None) -> None:
        if self._stop_token is not None:
            # Commands are ignored until the stop token: an add-mask lost here would leak a secret.
            raise RuntimeError(f"workflow command {name!r} written while commands are stopped")
        self._write_line(format_command(name, message, properties))

    def _write_line(self, line: str) -> None:
        self._stream.write(line + "\n")
        # Flushed at once so our lines keep their place among those of the tools we run.
        self._stream.flush()

    def mask(self, secret: str) -> None:
        """Hide `secret` in the log from now on; the runner masks line by line, so each line is masked."""
        for line in secret.splitlines():
            if line.strip():
                self._command("add-mask", line)

    def debug(self, message: str) -> None:
        self._command("debug", message)

    def annotate(
        self,
        level: AnnotationLevel,
        message: str,
        *,
        title: str | None = None,
        file: str | None = None,
        line: int | None = None,
        col: int | None = None,
    ) -> None:
        self._command(level, message, {"file": file, "line": line, "col": col, "title": title})

    notice = partialmethod(annotate, "notice")
    warning = partialmethod(annotate, "warning")
    error = partialmethod(annotate, "error")

    def info(self, text: str) -> None:
        """Plain log text; text that could be read as a command is written with commands stopped."""
        if self._stop_token is None and _looks_like_command(text):
            with self.stop_commands():
                self._write_line(text)
        else:
            self._write_line(text)

    @contextmanager
    def group(self, title: str) -> Iterator[None]:
        """A foldable section of the log, closed even when the body raises."""
        self._command("group", title)
        try:
            yield
        finally:
            self._command("endgroup")

    @contextmanager
    def stop_commands(self) -> Iterator[None]:
        """Text written inside (build logs, tool output) is never read as a workflow command.

        The resume token is random, so the text cannot end the pause early by guessing it.
        """
        if self._stop_token is not None:
            yield
            return
        token = uuid.uuid4().hex
        self._command("stop-commands", token)
        self._stop_token = token
        try:
            yield
        finally:
            self._stop_token = None
            self._write_line(f"::{token}::")

    def set_output(self, name: str, value: str) -> None:
        """A step output as a file command; the heredoc delimiter never occurs in the value."""
        if not name or any(part in name for part in ("=", "<<", "\r", "\n")):
            raise ValueError(f"invalid output name {name!r}")
        if self._output_path is None:
            self.info(f"{name}={value}")
            return
        delimiter = _heredoc_delimiter(value)
        with self._output_path.open("a", encoding="utf-8", newline="") as output_file:
            output_file.write(f"{name}<<{delimiter}\n{value}\n{delimiter}\n")

    def append_summary(self, markdown: str) -> None:
        """Add Markdown to the job summary; size limits are the caller's (see `report.summary_markdown`)."""
        if self._summary_path is None:
            self.debug("no job summary file (not running in GitHub Actions): summary not written")
            return
        with self._summary_path.open("a", encoding="utf-8", newline="") as summary_file:
            summary_file.write(markdown if markdown.endswith("\n") else markdown + "\n")
