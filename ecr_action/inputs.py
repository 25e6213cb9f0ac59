"""The action's inputs: declared in one table, read once, typed, and validated together.

The runner passes each input as a variable `INPUT_<NAME>` (the name upper-cased, hyphens kept) and sets
every declared input, to an empty string when it has no default, so an empty value means "not given".
Local runs give flags instead; `parse_cli` turns them into the same variables, so one parser serves both.
`read_inputs` reports every bad input at once, in one `InputError`, one line per input.
"""

from __future__ import annotations

import argparse
import enum
import json
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

from ecr_action import policies
from ecr_action.errors import InputError
from ecr_action.findings import Severity


class ImageTagMutability(enum.StrEnum):
    MUTABLE = "MUTABLE"
    IMMUTABLE = "IMMUTABLE"


class EncryptionType(enum.StrEnum):
    AES256 = "AES256"
    KMS = "KMS"


class IfTagExists(enum.StrEnum):
    FAIL = "fail"
    SKIP_SAME_DIGEST = "skip-same-digest"
    OVERWRITE = "overwrite"


class ScanMode(enum.StrEnum):
    ON_PUSH = "on-push"
    MANUAL = "manual"
    SKIP = "skip"


class FailOn(enum.StrEnum):
    NONE = "none"
    INFORMATIONAL = "informational"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def severity(self) -> Severity | None:
        """The lowest severity that fails the gate; None when nothing does."""
        return None if self is FailOn.NONE else Severity[self.name]


@dataclass(frozen=True, slots=True)
class InputSpec:
    """One input as action.yml declares it; `help` is the short text of `--help`."""

    name: str
    help: str
    default: str | None = None  # spelled as in action.yml; None: none, or computed from the run
    required: bool = False
    choices: type[enum.StrEnum] | None = None
    bounds: tuple[int, int] | None = None

    @property
    def variable(self) -> str:
        return f"INPUT_{self.name.upper()}"

    @property
    def is_boolean(self) -> bool:
        return self.default in ("true", "false")

    @property
    def accepted(self) -> str:
        """The accepted form, as problem lines and `--help` spell it."""
        if self.choices is not None:
            return "one of " + ", ".join(self.choices)
        if self.bounds is not None:
            return f"a whole number from {self.bounds[0]} to {self.bounds[1]}"
        if self.is_boolean:
            return "true or false (also True, TRUE, False, FALSE)"
        return ""


INPUT_SPECS: tuple[InputSpec, ...] = (
    InputSpec("aws-region", "AWS region of the registry, e.g. us-east-1", required=True),
    InputSpec("role-to-assume", "ARN of the IAM role to assume"),
    InputSpec("audience", "audience of the GitHub OIDC token", "sts.amazonaws.com"),
    InputSpec("role-session-name", "STS session name (default: ecr-action-<run id>-<run attempt>)"),
    InputSpec("role-duration-seconds", "session duration in seconds", "3600", bounds=(900, 43200)),
    InputSpec("role-chaining", "assume role-to-assume with the credentials already present", "false"),
    InputSpec("chain-role-to-assume", "ARN of a second role, assumed with the first role's credentials"),
    InputSpec("allowed-account-ids", "12-digit account ids the credentials must belong to"),
    InputSpec("repository", "ECR repository name", required=True),
    InputSpec("registry-id", "12-digit account id owning the registry, if not the credentials' own"),
    InputSpec("create-repository", "create the repository when missing", "true"),
    InputSpec("scan-on-push", "scan-on-push setting of a created repository", "true"),
    # No defaults: unset leaves an existing repository as it is (it may be managed elsewhere, e.g. by
    # Terraform); a repository the action creates gets ECR's own defaults, MUTABLE and AES256.
    InputSpec(
        "image-tag-mutability", "tag mutability (unset: leave as is; MUTABLE on creation)", choices=ImageTagMutability
    ),
    InputSpec(
        "encryption-type",
        "encryption of a created repository (unset: AES256, or KMS with kms-key)",
        choices=EncryptionType,
    ),
    InputSpec("kms-key", "KMS key for encryption-type KMS (default: the AWS managed key)"),
    InputSpec("lifecycle-policy", "lifecycle policy: inline JSON or a JSON file"),
    InputSpec("repository-policy", "repository policy: inline JSON or a JSON file"),
    InputSpec("repository-tags", "key=value lines tagging the repository"),
    InputSpec("context", "build context directory", "."),
    InputSpec("file", "Dockerfile (default: <context>/Dockerfile)"),
    InputSpec("build-args", "KEY=VALUE build arguments, one a line"),
    InputSpec("target", "build stage to build"),
    InputSpec("labels", "key=value image labels, one a line, added to the OCI labels"),
    InputSpec("pull", "always pull the base images", "false"),
    InputSpec("no-cache", "build without the cache", "false"),
    InputSpec("build-timeout", "seconds the build may take (default: no limit)", bounds=(1, 86400)),
    InputSpec("tags", "image tags, commas or lines (default: the short commit SHA)"),
    InputSpec("if-tag-exists", "what to do when a tag is taken", "skip-same-digest", choices=IfTagExists),
    InputSpec("push", "push the image (false: build and validate only)", "true"),
    InputSpec("retries", "attempts per operation", "5", bounds=(1, 20)),
    InputSpec("retry-max-seconds", "time budget per operation in seconds", "120", bounds=(1, 3600)),
    InputSpec("dry-run", "print the plan and change nothing", "false"),
    InputSpec("scan", "how the image gets scanned", "on-push", choices=ScanMode),
    InputSpec("scan-timeout", "seconds to wait for the scan", "600", bounds=(1, 86400)),
    InputSpec("scan-poll-interval", "seconds between scan status checks", "5", bounds=(1, 300)),
    InputSpec("fail-on", "lowest severity that fails the gate", "critical", choices=FailOn),
    InputSpec("fail-on-fixable-only", "gate only on findings that have a fix", "false"),
    InputSpec("ignore", "vulnerability ids to ignore, commas or lines"),
    InputSpec("ignore-file", "YAML file listing ignored vulnerabilities"),
    InputSpec("baseline-tag", "tag of the image whose findings are accepted"),
    InputSpec("sarif-file", "path to write a SARIF report to"),
    InputSpec("annotations", "most findings to annotate", "10", bounds=(0, 50)),
    InputSpec("summary", "write the job summary", "true"),
)
INPUTS: Mapping[str, InputSpec] = {spec.name: spec for spec in INPUT_SPECS}
DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"


@dataclass(frozen=True, slots=True)
class GitHubContext:
    """What the runner tells the action about the run, from its GITHUB_* and related variables."""

    repository: str  # owner/name; empty outside the runner, as are the strings below
    sha: str
    ref: str
    server_url: str
    run_id: str
    run_attempt: str
    workflow: str
    event_name: str
    actor: str
    workspace: Path
    output_path: Path | None
    summary_path: Path | None
    debug: bool
    oidc_request_url: str | None
    oidc_request_token: str | None = field(repr=False)
    is_fork_pull_request: bool
    docker_host: str  # the Docker Engine the runner's job uses
    # When the event's commit was made (None: unknown): the same for every re-run of the job, so the
    # image's `created` label, and with it the image, does not change when nothing else does.
    event_time: datetime | None


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
    tags: tuple[str, ...]
    if_tag_exists: IfTagExists
    push: bool
    retries: int
    retry_max_seconds: int
    dry_run: bool
    scan: ScanMode
    scan_timeout: int
    scan_poll_interval: int
    fail_on: FailOn
    fail_on_fixable_only: bool
    ignore: tuple[str, ...]
    ignore_file: Path | None
    baseline_tag: str | None
    sarif_file: Path | None
    annotations: int
    summary: bool
    github: GitHubContext


@dataclass(frozen=True, slots=True)
class _Form:
    """A pattern a text input must match, with the accepted form as a problem line states it."""

    pattern: re.Pattern[str]
    expected: str
    min_length: int = 1
    max_length: int | None = None

    def accepts(self, value: str) -> bool:
        fits = self.min_length <= len(value) <= (self.max_length or len(value))
        return fits and self.pattern.fullmatch(value) is not None


_REGION = _Form(re.compile(r"[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d"), "an AWS region such as us-east-1")
_ROLE_ARN = _Form(
    re.compile(r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+", re.ASCII),
    "an IAM role ARN such as arn:aws:iam::123456789012:role/deploy",
    max_length=2048,
)
_ACCOUNT_ID = _Form(re.compile(r"\d{12}", re.ASCII), "a 12-digit AWS account id")
_REPOSITORY_NAME = _Form(
    re.compile(r"(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*"),
    "an ECR repository name: 2 to 256 lowercase letters, digits and ._-/ such as team/app",
    min_length=2,
    max_length=256,
)
_IMAGE_TAG = _Form(
    re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"),
    "image tags of letters, digits and _.- (not starting with . or -), at most 128 characters",
)
_SESSION_NAME = _Form(
    re.compile(r"[\w+=,.@-]+", re.ASCII),
    "2 to 64 characters of letters, digits and _+=,.@-",
    min_length=2,
    max_length=64,
)
_CVE_ID = re.compile(r"CVE-\d{4}-\d{4,}")
_GHSA_ID = re.compile(r"GHSA(?:-[0-9a-z]{4}){3}")
_VENDOR_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]*")
_VULNERABILITY_IDS = "vulnerability ids such as CVE-2024-1234, GHSA-xxxx-xxxx-xxxx or a vendor's id"

_BOOLEANS = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_SHOWN_CHARACTERS = 60
_SHOWN_ITEMS = 3
MAX_TAGS = 1000
MAX_REPOSITORY_TAGS = 50  # AWS resource tag limit
OCI_LABEL = "org.opencontainers.image."


def _utc_now() -> datetime:
    return datetime.now(UTC)


def read_inputs(environ: Mapping[str, str], *, now: Callable[[], datetime] = _utc_now) -> Inputs:
    """All inputs from `environ` (the process environment), or one InputError listing every problem."""
    github = read_github_context(environ)
    reader = _InputReader(environ, github.workspace)
    values = {
        "aws_region": reader.matching("aws-region", _REGION),
        "role_to_assume": reader.matching("role-to-assume", _ROLE_ARN),
        "audience": reader.text("audience"),
        "role_session_name": (reader.matching("role-session-name", _SESSION_NAME) or _default_session_name(github)),
        "role_duration_seconds": reader.integer("role-duration-seconds"),
        "role_chaining": reader.boolean("role-chaining"),
        "chain_role_to_assume": reader.matching("chain-role-to-assume", _ROLE_ARN),
        "allowed_account_ids": reader.items("allowed-account-ids", _ACCOUNT_ID.accepts, _ACCOUNT_ID.expected),
        "repository": reader.matching("repository", _REPOSITORY_NAME),
        "registry_id": reader.matching("registry-id", _ACCOUNT_ID),
        "create_repository": reader.boolean("create-repository"),
        "scan_on_push": reader.boolean("scan-on-push"),
        "image_tag_mutability": reader.choice("image-tag-mutability"),
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
        "labels": _labels(github, github.event_time or now(), reader.pairs("labels")),
        "pull": reader.boolean("pull"),
        "no_cache": reader.boolean("no-cache"),
        "build_timeout": reader.integer("build-timeout") if reader.given("build-timeout") else None,
        "tags": reader.tags(github.sha),
        "if_tag_exists": reader.choice("if-tag-exists"),
        "push": reader.boolean("push"),
        "retries": reader.integer("retries"),
        "retry_max_seconds": reader.integer("retry-max-seconds"),
        "dry_run": reader.boolean("dry-run"),
        "scan": reader.choice("scan"),
        "scan_timeout": reader.integer("scan-timeout"),
        "scan_poll_interval": reader.integer("scan-poll-interval"),
        "fail_on": reader.choice("fail-on"),
        "fail_on_fixable_only": reader.boolean("fail-on-fixable-only"),
        "ignore": reader.items("ignore", _is_vulnerability_id, _VULNERABILITY_IDS),
        "ignore_file": reader.existing_file("ignore-file"),
        "baseline_tag": reader.matching("baseline-tag", _IMAGE_TAG),
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
    kms_key, encryption_type = values["kms_key"], values["encryption_type"]
    if kms_key is not None and encryption_type not in (None, EncryptionType.KMS):
        reader.report(
            "kms-key",
            f"got {_shown(kms_key)}; it is only used with encryption-type KMS, but "
            f"encryption-type is {encryption_type}: set encryption-type to KMS or remove kms-key",
        )


def read_github_context(environ: Mapping[str, str]) -> GitHubContext:
    """The run as the runner describes it; also usable when the inputs are invalid (e.g. for the summary)."""

    def optional_path(name: str) -> Path | None:
        return Path(environ[name]) if environ.get(name) else None

    repository = environ.get("GITHUB_REPOSITORY", "")
    event = _event(environ.get("GITHUB_EVENT_PATH", ""))
    return GitHubContext(
        repository=repository,
        sha=environ.get("GITHUB_SHA", ""),
        ref=environ.get("GITHUB_REF", ""),
        server_url=environ.get("GITHUB_SERVER_URL") or "https://github.com",
        run_id=environ.get("GITHUB_RUN_ID", ""),
        run_attempt=environ.get("GITHUB_RUN_ATTEMPT", ""),
        workflow=environ.get("GITHUB_WORKFLOW", ""),
        event_name=environ.get("GITHUB_EVENT_NAME", ""),
        actor=environ.get("GITHUB_ACTOR", ""),
        workspace=Path(environ.get("GITHUB_WORKSPACE") or Path.cwd()).resolve(),
        output_path=optional_path("GITHUB_OUTPUT"),
        summary_path=optional_path("GITHUB_STEP_SUMMARY"),
        debug=environ.get("RUNNER_DEBUG") == "1",
        oidc_request_url=environ.get("ACTIONS_ID_TOKEN_REQUEST_URL") or None,
        oidc_request_token=environ.get("ACTIONS_ID_TOKEN_REQUEST_TOKEN") or None,
        is_fork_pull_request=_is_fork_pull_request(event, repository),
        docker_host=environ.get("DOCKER_HOST") or DEFAULT_DOCKER_HOST,
        event_time=_event_time(event),
    )


def parse_cli(argv: Sequence[str]) -> dict[str, str]:
    """`--<input-name> VALUE` flags as INPUT_<NAME> variables, to merge over the process environment."""
    parser = _CliParser(
        prog="python -m ecr_action",
        description="Build the repository into an image, push it to Amazon ECR, wait for the scan and "
        "gate on its findings. Every input of action.yml is a flag; INPUT_<NAME> variables work too.",
        allow_abbrev=False,
    )
    for spec in INPUT_SPECS:
        # Booleans may be given bare (`--dry-run`), meaning true.
        value_count: dict[str, Any] = {"nargs": "?", "const": "true"} if spec.is_boolean else {}
        parser.add_argument(
            f"--{spec.name}",
            dest=spec.name,
            metavar="VALUE",
            default=argparse.SUPPRESS,
            help=_cli_help(spec),
            **value_count,
        )
    given, unknown = parser.parse_known_args(argv)
    if unknown:
        raise InputError(
            [
                f"unknown flag {_shown(argument)}: see --help for the inputs"
                if argument.startswith("-")
                else f"unexpected argument {_shown(argument)}: every input is given as --<input-name> VALUE"
                for argument in unknown
            ]
        )
    return {INPUTS[name].variable: value for name, value in vars(given).items()}


class _CliParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # argparse would print usage and exit; the action reports command-line mistakes like bad inputs.
        raise InputError([f"command line: {message}"])


def _cli_help(spec: InputSpec) -> str:
    details = [spec.accepted] if spec.choices or spec.bounds else []
    if spec.required:
        details.append("required")
    if spec.default is not None:
        details.append(f"default: {spec.default}")
    return spec.help + (f" ({'; '.join(details)})" if details else "")


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

    def matching(self, name: str, form: _Form) -> str | None:
        value = self.text(name)
        if value is not None and not form.accepts(value):
            self.reject(name, _shown(value), form.expected)
            return None
        return value

    def boolean(self, name: str) -> bool | None:
        value = self.text(name) or ""
        if value not in _BOOLEANS:
            self.reject(name, _shown(value), INPUTS[name].accepted)
            return None
        return _BOOLEANS[value]

    def integer(self, name: str) -> int | None:
        value = self.text(name) or ""
        spec = INPUTS[name]
        assert spec.bounds is not None, name
        low, high = spec.bounds
        if not value.isascii() or not value.isdigit() or not low <= int(value) <= high:
            self.reject(name, _shown(value), spec.accepted)
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
        self.reject(name, _shown(value), INPUTS[name].accepted)
        return None

    def items(self, name: str, accepts: Callable[[str], bool], expected: str) -> tuple[str, ...] | None:
        """A list given as lines or commas, blanks dropped, duplicates removed keeping the first."""
        value = self.text(name) or ""
        items = tuple(dict.fromkeys(item.strip() for item in re.split(r"[,\n]", value) if item.strip()))
        bad = [item for item in items if not accepts(item)]
        if bad:
            self.reject(name, _shown_items(bad), expected)
            return None
        return items

    def tags(self, sha: str) -> tuple[str, ...] | None:
        if not self.given("tags"):
            if not sha:
                self.report("tags", "missing, and there is no commit SHA (GITHUB_SHA) to default to: set tags")
                return None
            return (sha[:7],)
        tags = self.items("tags", _IMAGE_TAG.accepts, _IMAGE_TAG.expected)
        if tags == ():
            self.reject("tags", _shown(self.text("tags") or ""), "at least one tag")
            return None
        if tags is not None and len(tags) > MAX_TAGS:
            self.reject("tags", f"{len(tags)} tags", f"at most {MAX_TAGS} (the ECR limit per image)")
            return None
        return tags

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
                faults.append(f"line {number} repeats the key {_shown(key)}")
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
            self.reject(name, _shown(value), f"a path that resolves ({error})")
            return None
        if not resolved.is_relative_to(self._workspace):
            self.reject(
                name, _shown(value), f"a path inside the workspace {self._workspace} (it resolves to {resolved})"
            )
            return None
        return resolved

    def existing_file(self, name: str) -> Path | None:
        value = self.text(name)
        if value is None:
            return None
        path = self.path(name, value)
        if path is not None and not path.is_file():
            self.reject(name, _shown(value), f"an existing file (nothing readable at {path})")
            return None
        return path

    def build_context(self) -> Path | None:
        value = self.text("context") or "."
        path = self.path("context", value)
        if path is None:
            return None
        if not path.is_dir():
            self.reject("context", _shown(value), f"an existing directory (none at {path})")
            return None
        if not any(path.iterdir()):
            self.reject("context", _shown(value), f"a directory with the files to build ({path} is empty)")
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
            self.reject("sarif-file", _shown(value), f"a file path ({path} is a directory)")
            return None
        # Checked now, not after the push: the report is written at the very end of the run.
        existing = next(parent for parent in path.parents if parent.exists())
        if not existing.is_dir():
            self.reject("sarif-file", _shown(value), f"a path whose folders can be made ({existing} is a file)")
            return None
        if not os.access(existing, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
            self.reject("sarif-file", _shown(value), f"a path the action can write ({existing} is not writable)")
            return None
        return path

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
                self.reject(name, _shown(value), f"a readable UTF-8 JSON file ({error})")
                return None
            source = f"the file {_shown(value)}"
        try:
            return validate(text)
        except ValueError as error:
            self.report(name, f"got {source}; {error}")
            return None


def _is_vulnerability_id(value: str) -> bool:
    # A CVE or GHSA prefix promises that format: a typo there must not pass as some vendor's id.
    if value[:4].upper() == "CVE-":
        return _CVE_ID.fullmatch(value) is not None
    if value[:5].upper() == "GHSA-":
        return _GHSA_ID.fullmatch(value) is not None
    return _VENDOR_ID.fullmatch(value) is not None


def _default_session_name(github: GitHubContext) -> str:
    name = "-".join(part for part in ("ecr-action", github.run_id, github.run_attempt) if part)
    return re.sub(r"[^\w+=,.@-]", "-", name, flags=re.ASCII)[:64]


def _labels(
    github: GitHubContext, created: datetime, user_labels: Iterable[tuple[str, str]] | None
) -> tuple[tuple[str, str], ...]:
    """The OCI labels from the run, then the user's; a user label of the same key replaces the OCI one."""
    labels: dict[str, str] = {}
    url = f"{github.server_url.rstrip('/')}/{github.repository}" if github.repository else ""
    if url:
        labels[OCI_LABEL + "source"] = url
    if github.sha:
        labels[OCI_LABEL + "revision"] = github.sha
    labels[OCI_LABEL + "created"] = created.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if url:
        labels[OCI_LABEL + "url"] = url
    labels.update(user_labels or ())
    return tuple(labels.items())


def _event(event_path: str) -> Any:
    """The webhook payload that triggered the run (None when absent or unreadable)."""
    if not event_path:
        return None
    try:
        return json.loads(Path(event_path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _event_time(event: Any) -> datetime | None:
    stamp = _dig(event, "head_commit", "timestamp") or _dig(event, "pull_request", "updated_at")
    try:
        return datetime.fromisoformat(stamp) if isinstance(stamp, str) else None
    except ValueError:
        return None


def _is_fork_pull_request(event: Any, repository: str) -> bool:
    pull_request = _dig(event, "pull_request")
    if not isinstance(pull_request, dict):
        return False
    base = _dig(pull_request, "base", "repo", "full_name") or repository
    # A deleted fork leaves head.repo null: still a pull request from outside the repository.
    return _dig(pull_request, "head", "repo", "full_name") != base


def _dig(value: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _shown(value: str) -> str:
    """`value` quoted on one line, cut short: problem lines stay one line and readable."""
    flat = value.replace("\r", "").replace("\n", "\\n")
    if len(flat) > _SHOWN_CHARACTERS:
        flat = flat[: _SHOWN_CHARACTERS - 3] + "..."
    return f"'{flat}'"


def _shown_items(items: Sequence[str]) -> str:
    shown = ", ".join(_shown(item) for item in items[:_SHOWN_ITEMS])
    more = len(items) - _SHOWN_ITEMS
    return shown + (f" and {more} more" if more > 0 else "")
