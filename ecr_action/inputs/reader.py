"""The reader: every input read once from the environment, typed, and validated together.

The runner passes each input as a variable `INPUT_<NAME>` (the name upper-cased, hyphens kept) and sets
every declared input, to an empty string when it has no default, so an empty value means "not given".
Local runs give flags instead; `parse_cli` turns them into the same variables, so one parser serves both.
`read_inputs` reports every bad input at once, in one `InputError`, one line per input; that includes
the ignore-file's entries, parsed here.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ecr_action import policies
from ecr_action.errors import InputError
from ecr_action.ignores import IgnoreEntry, load_ignore_file
from ecr_action.inputs import build_inputs
from ecr_action.inputs.choices import (
    Builder,
    BuildNetwork,
    CacheTo,
    EncryptionType,
    FailOn,
    IfTagExists,
    ImageTagMutability,
    ScanMode,
    ScanUnavailable,
)
from ecr_action.inputs.context import GitHubContext
from ecr_action.inputs.forms import (
    ACCOUNT_ID,
    BOOLEANS,
    IMAGE_REFERENCE,
    IMAGE_TAG,
    REGION,
    REPOSITORY_NAME,
    ROLE_ARN,
    SESSION_NAME,
    TAG_FILTER,
    VULNERABILITY_IDS,
    Form,
    is_vulnerability_id,
    shown,
    shown_items,
)
from ecr_action.inputs.placeholders import DEFAULT_TAGS, expand_tags
from ecr_action.inputs.table import INPUTS


@dataclass(frozen=True, slots=True)
class Inputs:
    """Every input of action.yml, typed; attribute names are the input names with `_` for `-`."""

    aws_region: str
    role_to_assume: str | None
    audience: str
    role_session_name: str
    role_duration_seconds: int
    role_chaining: bool
    chain_role_to_assume: str | None
    allowed_account_ids: tuple[str, ...]
    repository: str
    registry_id: str | None
    create_repository: bool
    scan_on_push: bool
    image_tag_mutability: ImageTagMutability | None
    image_tag_mutability_exclusions: tuple[str, ...]
    encryption_type: EncryptionType | None
    kms_key: str | None
    lifecycle_policy: str | None  # canonical compact JSON
    repository_policy: str | None  # canonical compact JSON
    repository_tags: tuple[tuple[str, str], ...]
    context: Path
    file: Path
    build_args: tuple[tuple[str, str], ...] = field(repr=False)  # build arguments often carry tokens
    target: str | None
    labels: tuple[tuple[str, str], ...]  # the OCI labels, then the user's; the user's win
    pull: bool
    no_cache: bool
    build_timeout: int | None
    builder: Builder
    platforms: tuple[str, ...]  # empty: the engine's own platform
    network: BuildNetwork | None
    secrets: tuple[tuple[str, bytes], ...] = field(repr=False)  # build secrets by id
    registries: tuple[str, ...]  # more ECR registries (account ids) to log in to
    cache_from: tuple[str, ...] | None  # None: the repository's image under the first tag
    cache_to: CacheTo
    merge_digests: tuple[str, ...]
    tags: tuple[str, ...]
    if_tag_exists: IfTagExists
    push: bool
    retries: int
    retry_max_seconds: int
    dry_run: bool
    scan: ScanMode
    scan_timeout: int
    scan_poll_interval: int
    scan_unavailable: ScanUnavailable
    fail_on: FailOn
    fail_on_fixable_only: bool
    ignore: tuple[str, ...]
    ignore_file: Path | None
    baseline_tag: str | None
    sarif_file: Path | None
    annotations: int
    summary: bool
    # Derived from the inputs above: the ignore-file's entries, parsed with them; the tag lines skipped
    # on this event (a placeholder without a value), each with the reason, for the log.
    ignore_entries: tuple[IgnoreEntry, ...]
    skipped_tags: tuple[str, ...]
    github: GitHubContext


MAX_TAGS = 1000
MAX_REPOSITORY_TAGS = 50  # AWS resource tag limit
MAX_TAG_FILTERS = 5  # ECR's limit of tag-mutability exclusion filters


def _utc_now() -> datetime:
    return datetime.now(UTC)


def read_inputs(environ: Mapping[str, str], github: GitHubContext, *, now: Callable[[], datetime] = _utc_now) -> Inputs:
    """All inputs from `environ` (the process environment), or one InputError listing every problem.

    `github` is the run's context, read once by the caller (`read_github_context`) from the same environment.
    """
    reader = _InputReader(environ, github.workspace)
    values = {
        "aws_region": reader.matching("aws-region", REGION),
        "role_to_assume": reader.matching("role-to-assume", ROLE_ARN),
        "audience": reader.text("audience"),
        "role_session_name": (reader.matching("role-session-name", SESSION_NAME) or github.default_session_name()),
        "role_duration_seconds": reader.integer("role-duration-seconds"),
        "role_chaining": reader.boolean("role-chaining"),
        "chain_role_to_assume": reader.matching("chain-role-to-assume", ROLE_ARN),
        "allowed_account_ids": reader.items("allowed-account-ids", ACCOUNT_ID.accepts, ACCOUNT_ID.expected),
        "repository": reader.matching("repository", REPOSITORY_NAME),
        "registry_id": reader.matching("registry-id", ACCOUNT_ID),
        "create_repository": reader.boolean("create-repository"),
        "scan_on_push": reader.boolean("scan-on-push"),
        "image_tag_mutability": reader.choice("image-tag-mutability"),
        "image_tag_mutability_exclusions": reader.tag_filters(),
        "encryption_type": reader.choice("encryption-type"),
        "kms_key": reader.text("kms-key"),
        "lifecycle_policy": reader.policy("lifecycle-policy", policies.validate_lifecycle_policy),
        "repository_policy": reader.policy("repository-policy", policies.validate_repository_policy),
        "repository_tags": reader.pairs(
            "repository-tags", key_limit=128, value_limit=256, count_limit=MAX_REPOSITORY_TAGS
        ),
        "context": (context := reader.build_context()),
        "file": reader.dockerfile(context),
        "build_args": reader.pairs("build-args"),
        "target": reader.text("target"),
        "labels": github.oci_labels(github.event_time or now(), reader.pairs("labels")),
        "pull": reader.boolean("pull"),
        "no_cache": reader.boolean("no-cache"),
        "build_timeout": reader.integer("build-timeout") if reader.given("build-timeout") else None,
        "builder": reader.choice("builder"),
        "platforms": build_inputs.platforms(reader),
        "network": reader.choice("network"),
        "secrets": build_inputs.secrets(reader, environ),
        "registries": reader.items("registries", ACCOUNT_ID.accepts, ACCOUNT_ID.expected),
        "cache_from": (
            reader.items("cache-from", IMAGE_REFERENCE.accepts, IMAGE_REFERENCE.expected)
            if reader.given("cache-from")
            else None
        ),
        "cache_to": reader.choice("cache-to"),
        "merge_digests": reader.items("merge-digests", build_inputs.DIGEST.accepts, build_inputs.DIGEST.expected),
        "tags": (expanded := reader.tags(github, now()))[0],
        "skipped_tags": expanded[1],
        "if_tag_exists": reader.choice("if-tag-exists"),
        "push": reader.boolean("push"),
        "retries": reader.integer("retries"),
        "retry_max_seconds": reader.integer("retry-max-seconds"),
        "dry_run": reader.boolean("dry-run"),
        "scan": reader.choice("scan"),
        "scan_timeout": reader.integer("scan-timeout"),
        "scan_poll_interval": reader.integer("scan-poll-interval"),
        "scan_unavailable": reader.choice("scan-unavailable"),
        "fail_on": reader.choice("fail-on"),
        "fail_on_fixable_only": reader.boolean("fail-on-fixable-only"),
        "ignore": reader.items("ignore", is_vulnerability_id, VULNERABILITY_IDS),
        "ignore_file": (ignore_file := reader.existing_file("ignore-file")),
        "ignore_entries": reader.ignore_entries(ignore_file),
        "baseline_tag": reader.matching("baseline-tag", IMAGE_TAG),
        "sarif_file": reader.sarif_file(),
        "annotations": reader.integer("annotations"),
        "summary": reader.boolean("summary"),
    }
    _check_combinations(reader, values)
    if reader.problems:
        raise InputError(reader.problems)
    return Inputs(**values, github=github)


def _check_combinations(reader: _InputReader, values: Mapping[str, Any]) -> None:
    """Problems of inputs that are valid alone but not together; each line names both inputs."""
    if values["role_chaining"] and not reader.given("role-to-assume"):
        reader.report(
            "role-chaining",
            "got 'true'; it needs role-to-assume, the role to assume with the "
            "credentials already present: set role-to-assume",
        )
    if reader.given("chain-role-to-assume") and not reader.given("role-to-assume"):
        reader.report(
            "chain-role-to-assume", "it needs role-to-assume, the first role of the chain: set role-to-assume"
        )
    if values["builder"] is Builder.CLASSIC:
        for name, needs in (("secrets", values["secrets"]), ("platforms", len(values["platforms"] or ()) > 1)):
            if needs:
                reader.report(name, "needs BuildKit, but builder is classic: set `builder: auto` (or remove it)")
    if values["merge_digests"]:
        if len(values["merge_digests"]) < 2:
            reader.report("merge-digests", "got one digest; an index joins two or more platform images")
        if not values["push"]:
            reader.report("merge-digests", "puts an index in ECR, but push is false: remove one of them")
    kms_key, encryption_type = values["kms_key"], values["encryption_type"]
    if kms_key is not None and encryption_type is not None and not encryption_type.uses_kms:
        reader.report(
            "kms-key",
            f"got {shown(kms_key)}; it is only used with encryption-type KMS or KMS_DSSE, but "
            f"encryption-type is {encryption_type}: set encryption-type to KMS or remove kms-key",
        )
    mutability, exclusions = values["image_tag_mutability"], values["image_tag_mutability_exclusions"]
    if mutability is not None and mutability.has_exclusions and exclusions == ():
        reader.report(
            "image-tag-mutability",
            f"got {shown(mutability)}; it needs image-tag-mutability-exclusions, the tags it excludes: set "
            "image-tag-mutability-exclusions (such as `latest`), or set image-tag-mutability to "
            f"{mutability.removesuffix('_WITH_EXCLUSION')}",
        )
    if exclusions and (mutability is None or not mutability.has_exclusions):
        reader.report(
            "image-tag-mutability-exclusions",
            f"got {shown_items(exclusions)}; it is only used with image-tag-mutability MUTABLE_WITH_EXCLUSION or "
            f"IMMUTABLE_WITH_EXCLUSION, but image-tag-mutability is {mutability or 'not set'}: set one of those, "
            "or remove image-tag-mutability-exclusions",
        )


class _InputReader:
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
