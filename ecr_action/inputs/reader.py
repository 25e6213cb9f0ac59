"""The reader: every input read once from the environment, typed, and validated together.

The runner passes each input as a variable `INPUT_<NAME>` (the name upper-cased, hyphens kept) and sets
every declared input, to an empty string when it has no default, so an empty value means "not given".
Local runs give flags instead; `parse_cli` turns them into the same variables, so one parser serves both.
`read_inputs` reports every bad input at once, in one `InputError`, one line per input; that includes
the ignore-file's entries, parsed here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ecr_action import policies
from ecr_action.errors import InputError
from ecr_action.ignores import IgnoreEntry
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
from ecr_action.inputs.fields import InputReader
from ecr_action.inputs.forms import (
    ACCOUNT_ID,
    IMAGE_REFERENCE,
    IMAGE_TAG,
    REGION,
    REPOSITORY_NAME,
    ROLE_ARN,
    SESSION_NAME,
    VULNERABILITY_IDS,
    is_vulnerability_id,
    shown,
    shown_items,
)


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


MAX_REPOSITORY_TAGS = 50  # AWS resource tag limit


def _utc_now() -> datetime:
    return datetime.now(UTC)


def read_inputs(environ: Mapping[str, str], github: GitHubContext, *, now: Callable[[], datetime] = _utc_now) -> Inputs:
    """All inputs from `environ` (the process environment), or one InputError listing every problem.

    `github` is the run's context, read once by the caller (`read_github_context`) from the same environment.
    """
    reader = InputReader(environ, github.workspace)
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


def _check_combinations(reader: InputReader, values: Mapping[str, Any]) -> None:
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
