"""Reading one input at a time: typed, checked against its accepted form, a problem line when it is not.

`read_inputs` (`ecr_action.inputs.reader`) asks an `InputReader` for every input, then checks the ones
that must agree with each other.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from ecr_action.errors import InputError
from ecr_action.ignores import IgnoreEntry, load_ignore_file
from ecr_action.inputs.context import GitHubContext
from ecr_action.inputs.forms import (
    BOOLEANS,
    IMAGE_TAG,
    TAG_FILTER,
    Form,
    shown,
    shown_items,
)
from ecr_action.inputs.placeholders import DEFAULT_TAGS, expand_tags
from ecr_action.inputs.table import INPUTS

MAX_TAGS = 1000  # ECR's limit of tags per image
MAX_TAG_FILTERS = 5  # ECR's limit of tag-mutability exclusion filters


class InputReader:
    """Hands out inputs one at a time, typed; a bad one is recorded as a problem line and read as None."""

    def __init__(self, environ: Mapping[str, str], workspace: Path) -> None:
        self._environ = environ
        self._workspace = workspace
        self.problems: list[str] = []

    def report(self, name: str, message: str) -> None:
        self.problems.append(f"input '{name}': {message}")

    def reject(self, name: str, shown: str, expected: str) -> None:
        self.report(name, f"got {shown}; expected {expected}")

    def given(self, name: str) -> bool:
        return bool(self._environ.get(INPUTS[name].variable, "").strip())

    def text(self, name: str) -> str | None:
        """The value as given, else the default; None when neither (reported if the input is required)."""
        spec = INPUTS[name]
        value = self._environ.get(spec.variable, "").strip() or spec.default
        if value is None and spec.required:
            self.report(name, "missing; it is required: set it in the step's `with:`")
        return value

    def matching(self, name: str, form: Form) -> str | None:
        value = self.text(name)
        if value is not None and not form.accepts(value):
            self.reject(name, shown(value), form.expected)
            return None
        return value

    def boolean(self, name: str) -> bool | None:
        value = self.text(name) or ""
        if value not in BOOLEANS:
            self.reject(name, shown(value), INPUTS[name].accepted)
            return None
        return BOOLEANS[value]

    def integer(self, name: str) -> int | None:
        value = self.text(name) or ""
        spec = INPUTS[name]
        assert spec.bounds is not None, name
        low, high = spec.bounds
        if not value.isascii() or not value.isdigit() or not low <= int(value) <= high:
            self.reject(name, shown(value), spec.accepted)
            return None
        return int(value)

    def choice(self, name: str) -> Any:
        value = self.text(name)
        if value is None:
            return None
        choices = INPUTS[name].choices
        assert choices is not None, name
        # Case is forgiven: "critical" and "CRITICAL" can only mean one thing.
        for choice in choices:
            if choice.casefold() == value.casefold():
                return choice
        self.reject(name, shown(value), INPUTS[name].accepted)
        return None

    def items(self, name: str, accepts: Callable[[str], bool], expected: str) -> tuple[str, ...] | None:
        """A list given as lines or commas, blanks dropped, duplicates removed keeping the first."""
        value = self.text(name) or ""
        items = tuple(dict.fromkeys(item.strip() for item in re.split(r"[,\n]", value) if item.strip()))
        bad = [item for item in items if not accepts(item)]
        if bad:
            self.reject(name, shown_items(bad), expected)
            return None
        return items

    def tag_filters(self) -> tuple[str, ...] | None:
        name = "image-tag-mutability-exclusions"
        filters = self.items(name, TAG_FILTER.accepts, TAG_FILTER.expected)
        if filters is not None and len(filters) > MAX_TAG_FILTERS:
            self.reject(name, f"{len(filters)} filters", f"at most {MAX_TAG_FILTERS} (the ECR limit)")
            return None
        return filters

    def tags(self, github: GitHubContext, now: datetime) -> tuple[tuple[str, ...] | None, tuple[str, ...]]:
        """(the tags, or None when reported; the lines skipped on this event, each with why)."""
        if not self.given("tags") and not github.sha:
            self.report("tags", "missing, and there is no commit SHA (GITHUB_SHA) to default to: set tags")
            return None, ()
        value = self.text("tags") or DEFAULT_TAGS
        lines = [line.strip() for line in re.split(r"[,\n]", value) if line.strip()]
        if not lines:
            self.reject("tags", shown(value), "at least one tag")
            return None, ()
        try:
            expansion = expand_tags(lines, github, now)
        except ValueError as error:
            self.reject(
                "tags",
                f"the unknown placeholder {error}",
                "placeholders among {{sha}}, {{short-sha}}, {{branch}}, {{pr}}, {{version}}, {{major}}, "
                "{{minor}}, {{run-number}}, {{date}}",
            )
            return None, ()
        bad = [tag for tag in expansion.tags if not IMAGE_TAG.accepts(tag)]
        if bad:
            self.reject("tags", shown_items(bad), IMAGE_TAG.expected)
            return None, expansion.skipped
        if not expansion.tags:
            self.report(
                "tags",
                f"no tag is left on this {github.event_name or 'run'} event: every line was skipped "
                f"({'; '.join(expansion.skipped)}); add a line that has a value here, such as {{{{short-sha}}}}",
            )
            return None, expansion.skipped
        if len(expansion.tags) > MAX_TAGS:
            self.reject("tags", f"{len(expansion.tags)} tags", f"at most {MAX_TAGS} (the ECR limit per image)")
            return None, expansion.skipped
        return expansion.tags, expansion.skipped

    def pairs(
        self,
        name: str,
        *,
        key_limit: int | None = None,
        value_limit: int | None = None,
        count_limit: int | None = None,
    ) -> tuple[tuple[str, str], ...] | None:
        """key=value lines. Problems name lines and keys, never values: build arguments may be secrets."""
        pairs: dict[str, str] = {}
        faults: list[str] = []
        for number, line in enumerate((self.text(name) or "").splitlines(), start=1):
            if not line.strip():
                continue
            key, equals, value = line.partition("=")
            key, value = key.strip(), value.strip()
            if not equals or not key:
                faults.append(f"line {number} is not key=value")
            elif key in pairs:
                faults.append(f"line {number} repeats the key {shown(key)}")
            elif key_limit and len(key) > key_limit:
                faults.append(f"line {number} has a key longer than {key_limit} characters")
            elif value_limit and len(value) > value_limit:
                faults.append(f"line {number} has a value longer than {value_limit} characters")
            else:
                pairs[key] = value
        if count_limit and len(pairs) > count_limit:
            faults.append(f"{len(pairs)} pairs, more than {count_limit}")
        if faults:
            expected = "key=value lines with a non-empty key"
            if key_limit:
                expected += f", keys up to {key_limit} and values up to {value_limit} characters"
            self.report(name, f"{'; '.join(faults)}; expected {expected}")
            return None
        return tuple(pairs.items())

    def path(self, name: str, value: str) -> Path | None:
        """`value` resolved against the workspace, symlinks followed; None (reported) if it leaves it."""
        try:
            resolved = (self._workspace / value).resolve()
        except (OSError, RuntimeError) as error:  # RuntimeError: a symlink loop, on Python 3.11 and 3.12
            self.reject(name, shown(value), f"a path that resolves ({error})")
            return None
        if not resolved.is_relative_to(self._workspace):
            self.reject(
                name, shown(value), f"a path inside the workspace {self._workspace} (it resolves to {resolved})"
            )
            return None
        return resolved

    def existing_file(self, name: str) -> Path | None:
        value = self.text(name)
        if value is None:
            return None
        path = self.path(name, value)
        if path is not None and not path.is_file():
            self.reject(name, shown(value), f"an existing file (nothing readable at {path})")
            return None
        return path

    def build_context(self) -> Path | None:
        value = self.text("context") or "."
        path = self.path("context", value)
        if path is None:
            return None
        if not path.is_dir():
            self.reject("context", shown(value), f"an existing directory (none at {path})")
            return None
        if not any(path.iterdir()):
            self.reject("context", shown(value), f"a directory with the files to build ({path} is empty)")
            return None
        return path

    def dockerfile(self, context: Path | None) -> Path | None:
        if self.given("file"):
            return self.existing_file("file")
        if context is None:
            return None  # the context's problem is reported already
        path = self.path("file", str(context / "Dockerfile"))
        if path is not None and not path.is_file():
            self.report(
                "file",
                f"not given, and the default {path.relative_to(self._workspace)} does not "
                "exist: add a Dockerfile there or set file",
            )
            return None
        return path

    def sarif_file(self) -> Path | None:
        value = self.text("sarif-file")
        if value is None:
            return None
        # Resolving the whole path also catches a symlinked parent or an existing symlink at the path.
        path = self.path("sarif-file", value)
        if path is None:
            return None
        if path.is_dir():
            self.reject("sarif-file", shown(value), f"a file path ({path} is a directory)")
            return None
        # Checked now, not after the push: the report is written at the very end of the run.
        existing = next(parent for parent in path.parents if parent.exists())
        if not existing.is_dir():
            self.reject("sarif-file", shown(value), f"a path whose folders can be made ({existing} is a file)")
            return None
        if not os.access(existing, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
            self.reject("sarif-file", shown(value), f"a path the action can write ({existing} is not writable)")
            return None
        return path

    def ignore_entries(self, path: Path | None) -> tuple[IgnoreEntry, ...] | None:
        """The entries of the ignore-file at `path` (none without one); its problems join the others."""
        if path is None:
            return ()
        try:
            return tuple(load_ignore_file(path))
        except InputError as error:
            self.problems.extend(error.problems)
            return None

    def policy(self, name: str, validate: Callable[[str], str]) -> str | None:
        """A policy given inline (starting with `{`) or as a JSON file; never echoed, it may be long."""
        value = self.text(name)
        if value is None:
            return None
        if value.startswith("{"):
            source, text = f"inline JSON ({len(value)} characters)", value
        else:
            path = self.existing_file(name)
            if path is None:
                return None
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as error:
                self.reject(name, shown(value), f"a readable UTF-8 JSON file ({error})")
                return None
            source = f"the file {shown(value)}"
        try:
            return validate(text)
        except ValueError as error:
            self.report(name, f"got {source}; {error}")
            return None
