"""The ECR repository: read what ECR has, plan what differs from the inputs, create and reconcile.

`plan` is pure; `read_state` and `ensure_repository` are the only parts that call ECR. Nothing here
prints: the result says what changed (or would change) and what could not be changed, and
`ecr_action.main` logs it.

What the action does not touch, on purpose: tags and policies it was not given. A repository is often
shared with other tools (Terraform, CloudFormation, another workflow) that manage their own tags and
policies, and removing them from here would undo that work on every run.
"""

from __future__ import annotations

import enum
import fnmatch
import json
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from ecr_action import aws
from ecr_action.errors import RepositoryMissingError
from ecr_action.inputs.choices import EncryptionType, ImageTagMutability

# ECR's only kind of tag-mutability exclusion filter: `*` matches any run of characters.
EXCLUSION_FILTER_TYPE = "WILDCARD"


class ChangeKind(enum.StrEnum):
    CREATE = "create"
    SCAN_ON_PUSH = "scan-on-push"
    TAG_MUTABILITY = "tag-mutability"
    LIFECYCLE_POLICY = "lifecycle-policy"
    REPOSITORY_POLICY = "repository-policy"
    TAGS = "tags"


@dataclass(frozen=True, slots=True)
class Change:
    """One call the action makes (or would make) to bring the repository to the inputs."""

    what: ChangeKind
    description: str  # one line for the log, such as "scan-on-push: false → true"


@dataclass(frozen=True, slots=True)
class TagMutability:
    """A repository's tag mutability as ECR applies it, tag by tag."""

    mode: str  # ImageTagMutability (ECR may add others)
    exclusions: tuple[str, ...] = ()  # wildcard filters; only with a *_WITH_EXCLUSION mode

    def __str__(self) -> str:
        return f"{self.mode} (excluding {', '.join(self.exclusions)})" if self.exclusions else self.mode

    def immutable(self, tag: str) -> bool:
        """Whether ECR refuses to move `tag` once it names an image: a tag matching an exclusion filter
        behaves the other way from the mode (e.g. `latest` moves while `v1.2.3` is immutable)."""
        immutable = self.mode.startswith(ImageTagMutability.IMMUTABLE)
        # The filters' characters are [0-9a-zA-Z._*-], so fnmatch's only special character here is `*`.
        excluded = any(fnmatch.fnmatchcase(tag, pattern) for pattern in self.exclusions)
        return immutable != excluded

    def same_as(self, other: TagMutability) -> bool:
        return self.mode == other.mode and sorted(self.exclusions) == sorted(other.exclusions)


@dataclass(frozen=True, slots=True)
class Encryption:
    type: str  # EncryptionType: AES256, KMS or KMS_DSSE (ECR may add others)
    kms_key: str | None = None  # with KMS or KMS_DSSE: the key given; None means the AWS managed key (aws/ecr)

    def __str__(self) -> str:
        if self.type == EncryptionType.AES256:
            return self.type
        return f"{self.type} with key {self.kms_key}" if self.kms_key else f"{self.type} with the AWS managed key"

    def satisfies(self, wanted: Encryption) -> bool:
        """Whether a repository with this encryption has the encryption `wanted` asks for."""
        if self.type != wanted.type:
            return False
        if wanted.kms_key is None or self.kms_key is None:
            return True
        # ECR may report a key given by id or alias as its full ARN (…:key/<id>, …:alias/<name>).
        return self.kms_key == wanted.kms_key or self.kms_key.endswith((f"/{wanted.kms_key}", f":{wanted.kms_key}"))


@dataclass(frozen=True, slots=True)
class RepositorySpec:
    """The repository the inputs ask for."""

    name: str
    registry_id: str | None  # another account's registry; None: the credentials' own account
    create: bool
    scan_on_push: bool
    tag_mutability: ImageTagMutability | None  # None leaves ECR's as it is (MUTABLE on creation)
    encryption_type: EncryptionType | None  # only applied on creation; None: AES256, or KMS with a key
    kms_key: str | None
    lifecycle_policy: str | None  # canonical JSON; None leaves ECR's as it is
    repository_policy: str | None  # canonical JSON; None leaves ECR's as it is
    tags: tuple[tuple[str, str], ...]  # added or updated; tags not listed are left alone
    tag_mutability_exclusions: tuple[str, ...] = ()  # with a *_WITH_EXCLUSION tag_mutability

    @property
    def encryption(self) -> Encryption:
        default = EncryptionType.KMS if self.kms_key else EncryptionType.AES256
        return Encryption(self.encryption_type or default, self.kms_key)

    @property
    def tag_mutability_on_creation(self) -> TagMutability:
        return TagMutability(self.tag_mutability or ImageTagMutability.MUTABLE, self.tag_mutability_exclusions)

    def wanted_tag_mutability(self, current: TagMutability) -> TagMutability:
        """The mutability the repository should have. A plain MUTABLE or IMMUTABLE asked of a repository
        with the same base mode and exclusion filters keeps the filters: they may be managed elsewhere
        (Terraform), as they had to be before this action took them."""
        if self.tag_mutability is None:
            return current
        mode = ImageTagMutability(self.tag_mutability)
        if not mode.has_exclusions and current.mode == f"{mode}_WITH_EXCLUSION":
            return current
        return TagMutability(mode, self.tag_mutability_exclusions)


@dataclass(frozen=True, slots=True)
class RepositoryState:
    """What ECR has now."""

    uri: str
    registry_id: str
    arn: str
    scan_on_push: bool
    tag_mutability: TagMutability
    encryption: Encryption
    lifecycle_policy: str | None  # JSON text as ECR returns it
    repository_policy: str | None  # JSON text as ECR returns it
    tags: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class RepositoryResult:
    """What `ensure_repository` found and did. In a dry run `changes` are what it would do, and a
    repository that does not exist yet has no uri, registry_id or arn (None)."""

    uri: str | None
    registry_id: str | None
    arn: str | None
    tag_mutability: TagMutability  # as ECR will have it after the run
    created: bool
    changes: list[Change]
    warnings: list[str]


def plan(spec: RepositorySpec, state: RepositoryState | None) -> list[Change]:
    """The changes that bring the repository `state` (None: missing) to `spec`, in the order to apply."""
    if state is None:
        # Creation sets everything but the policies, which ECR only takes through their own calls.
        return [_creation(spec), *_policy_changes(spec, None, None)]
    changes = []
    if spec.scan_on_push != state.scan_on_push:
        changes.append(
            Change(ChangeKind.SCAN_ON_PUSH, f"scan-on-push: {_bool(state.scan_on_push)} → {_bool(spec.scan_on_push)}")
        )
    wanted = spec.wanted_tag_mutability(state.tag_mutability)
    if not wanted.same_as(state.tag_mutability):
        changes.append(Change(ChangeKind.TAG_MUTABILITY, f"tag-mutability: {state.tag_mutability} → {wanted}"))
    changes.extend(_policy_changes(spec, state.lifecycle_policy, state.repository_policy))
    tag_change = _tag_change(spec.tags, dict(state.tags))
    if tag_change is not None:
        changes.append(tag_change)
    return changes


def encryption_warning(spec: RepositorySpec, state: RepositoryState) -> str | None:
    """A warning when an existing repository's encryption differs from the inputs: ECR fixes the
    encryption when the repository is created, so it is not a change the action can make."""
    if (spec.encryption_type is None and spec.kms_key is None) or state.encryption.satisfies(spec.encryption):
        return None
    return (
        f"Repository {spec.name} keeps its encryption, {state.encryption}, not {spec.encryption} as asked: "
        f"ECR cannot change the encryption of an existing repository. To change it, create a new "
        f"repository with encryption-type {spec.encryption.type} and move the images there; or set "
        f"encryption-type (and kms-key) to match the repository."
    )


def read_state(ecr: Any, name: str, registry_id: str | None) -> RepositoryState | None:
    """The repository as ECR has it, or None when it does not exist."""
    found = aws.ecr_call(
        ecr.describe_repositories,
        None,
        registry_id,
        resource=name,
        none_on={"RepositoryNotFoundException"},
        repositoryNames=[name],
    )
    if not found or not found["repositories"]:  # an empty list: moto's answer for a name in another registry
        return None
    repository = found["repositories"][0]
    # Three independent reads of the repository: made together, one round trip instead of three.
    with ThreadPoolExecutor(max_workers=3) as pool:
        lifecycle = pool.submit(
            aws.ecr_call, ecr.get_lifecycle_policy, name, registry_id, none_on={"LifecyclePolicyNotFoundException"}
        )
        policy = pool.submit(
            aws.ecr_call, ecr.get_repository_policy, name, registry_id, none_on={"RepositoryPolicyNotFoundException"}
        )
        listed = pool.submit(
            aws.ecr_call, ecr.list_tags_for_resource, None, None, resource=name, resourceArn=repository["repositoryArn"]
        )
        lifecycle_reply, policy_reply, tags = lifecycle.result(), policy.result(), listed.result()["tags"]
    lifecycle_policy = lifecycle_reply["lifecyclePolicyText"] if lifecycle_reply else None
    repository_policy = policy_reply["policyText"] if policy_reply else None
    return _state(repository, lifecycle_policy, repository_policy, tuple((tag["Key"], tag["Value"]) for tag in tags))


def ensure_repository(ecr: Any, spec: RepositorySpec, *, dry_run: bool) -> RepositoryResult:
    """Create the repository when missing and allowed, then reconcile every setting the inputs give."""
    state = read_state(ecr, spec.name, spec.registry_id)
    if state is None and not spec.create:
        raise RepositoryMissingError(_missing_message(ecr, spec))
    if dry_run:
        return _result(spec, state, created=False, changes=plan(spec, state))

    created = False
    if state is None:
        new_state = _create(ecr, spec)
        created = new_state is not None
        # Otherwise another job created it between our describe and create: theirs will do, once its
        # settings are reconciled below.
        state = new_state or read_state(ecr, spec.name, spec.registry_id)
        if state is None:
            raise RepositoryMissingError(
                f"Repository {spec.name} was reported as already existing, then as missing: something "
                f"deletes it while this job creates it. Re-run the job."
            )
    changes = plan(spec, state)
    for change in changes:
        _apply(ecr, spec, state.arn, change.what)
    return _result(spec, state, created=created, changes=[_creation(spec), *changes] if created else changes)


def _result(
    spec: RepositorySpec, state: RepositoryState | None, *, created: bool, changes: list[Change]
) -> RepositoryResult:
    # A repository this run created has the encryption it asked for; ECR may only spell the key another
    # way, which is not worth a warning.
    warning = encryption_warning(spec, state) if state is not None and not created else None
    return RepositoryResult(
        uri=state.uri if state else None,
        registry_id=state.registry_id if state else None,
        arn=state.arn if state else None,
        tag_mutability=spec.wanted_tag_mutability(state.tag_mutability) if state else spec.tag_mutability_on_creation,
        created=created,
        changes=changes,
        warnings=[warning] if warning else [],
    )


def _create(ecr: Any, spec: RepositorySpec) -> RepositoryState | None:
    """The new repository's state, or None when it already exists."""
    encryption: dict[str, str] = {"encryptionType": spec.encryption.type}
    if spec.kms_key:
        encryption["kmsKey"] = spec.kms_key
    optional: dict[str, Any] = {"tags": _tag_list(spec.tags)} if spec.tags else {}
    created = aws.ecr_call(
        ecr.create_repository,
        spec.name,
        spec.registry_id,
        none_on={"RepositoryAlreadyExistsException"},
        imageScanningConfiguration={"scanOnPush": spec.scan_on_push},
        encryptionConfiguration=encryption,
        **_tag_mutability_arguments(spec.tag_mutability_on_creation),
        **optional,
    )
    return None if created is None else _state(created["repository"], None, None, spec.tags)


def _apply(ecr: Any, spec: RepositorySpec, arn: str, what: ChangeKind) -> None:
    if what == ChangeKind.TAGS:
        # Setting a tag to the value it has is a no-op, so all of the spec's tags go in one call.
        aws.ecr_call(ecr.tag_resource, None, None, resource=spec.name, resourceArn=arn, tags=_tag_list(spec.tags))
        return
    calls = {
        ChangeKind.SCAN_ON_PUSH: (
            ecr.put_image_scanning_configuration,
            {"imageScanningConfiguration": {"scanOnPush": spec.scan_on_push}},
        ),
        ChangeKind.TAG_MUTABILITY: (
            ecr.put_image_tag_mutability,
            # Planned only when the mutability is asked for, so the wanted one is the spec's.
            _tag_mutability_arguments(TagMutability(str(spec.tag_mutability), spec.tag_mutability_exclusions)),
        ),
        ChangeKind.LIFECYCLE_POLICY: (ecr.put_lifecycle_policy, {"lifecyclePolicyText": spec.lifecycle_policy}),
        ChangeKind.REPOSITORY_POLICY: (ecr.set_repository_policy, {"policyText": spec.repository_policy}),
    }
    if what not in calls:
        raise ValueError(f"no ECR call applies a {what!r} change")
    operation, arguments = calls[what]
    aws.ecr_call(operation, spec.name, spec.registry_id, **arguments)


def _tag_mutability_arguments(mutability: TagMutability) -> dict[str, Any]:
    arguments: dict[str, Any] = {"imageTagMutability": mutability.mode}
    if mutability.exclusions:
        arguments["imageTagMutabilityExclusionFilters"] = [
            {"filterType": EXCLUSION_FILTER_TYPE, "filter": pattern} for pattern in mutability.exclusions
        ]
    return arguments


def _creation(spec: RepositorySpec) -> Change:
    settings = [
        f"scan-on-push {_bool(spec.scan_on_push)}",
        f"tag-mutability {spec.tag_mutability_on_creation}",
        f"encryption {spec.encryption}",
    ]
    if spec.tags:
        settings.append("tags " + ", ".join(f"{key}={value}" for key, value in spec.tags))
    return Change(ChangeKind.CREATE, f"create: {spec.name} ({'; '.join(settings)})")


def _policy_changes(spec: RepositorySpec, lifecycle_policy: str | None, repository_policy: str | None) -> list[Change]:
    changes = []
    for what, wanted, current in (
        (ChangeKind.LIFECYCLE_POLICY, spec.lifecycle_policy, lifecycle_policy),
        (ChangeKind.REPOSITORY_POLICY, spec.repository_policy, repository_policy),
    ):
        if wanted is None:
            continue
        if current is None:
            changes.append(Change(what, f"{what}: none → set"))
        elif not _same_policy(wanted, current):
            changes.append(Change(what, f"{what}: replaced (it differed from the input)"))
    return changes


def _same_policy(first: str, second: str) -> bool:
    """Whether two policy texts are the same document: ECR may return a policy with other whitespace
    or key order than it was sent with."""
    return json.loads(first) == json.loads(second)


def _tag_change(wanted: Sequence[tuple[str, str]], current: dict[str, str]) -> Change | None:
    differing = [(key, value) for key, value in dict(wanted).items() if current.get(key) != value]
    if not differing:
        return None
    parts = [
        f"{key}={value} (was {current[key]})" if key in current else f"{key}={value} (new)"
        for key, value in differing
    ]
    return Change(ChangeKind.TAGS, f"tags: {', '.join(parts)}")


def _state(
    repository: dict[str, Any],
    lifecycle_policy: str | None,
    repository_policy: str | None,
    tags: tuple[tuple[str, str], ...],
) -> RepositoryState:
    encryption = repository.get("encryptionConfiguration", {})
    return RepositoryState(
        uri=repository["repositoryUri"],
        registry_id=repository["registryId"],
        arn=repository["repositoryArn"],
        scan_on_push=bool(repository.get("imageScanningConfiguration", {}).get("scanOnPush", False)),
        tag_mutability=TagMutability(
            repository.get("imageTagMutability", ImageTagMutability.MUTABLE),
            tuple(entry["filter"] for entry in repository.get("imageTagMutabilityExclusionFilters") or ()),
        ),
        encryption=Encryption(encryption.get("encryptionType", EncryptionType.AES256), encryption.get("kmsKey")),
        lifecycle_policy=lifecycle_policy,
        repository_policy=repository_policy,
        tags=tags,
    )


def _missing_message(ecr: Any, spec: RepositorySpec) -> str:
    registry = f"registry {spec.registry_id}" if spec.registry_id else "this account's registry"
    return (
        f"Repository {spec.name} does not exist in {registry} in {ecr.meta.region_name}, and "
        f"create-repository is false. Create it (for example `aws ecr create-repository "
        f"--repository-name {spec.name}`, or in your Terraform), or set `create-repository: true`; "
        f"if it does exist, check aws-region and registry-id."
    )


def _tag_list(tags: Sequence[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"Key": key, "Value": value} for key, value in tags]


def _bool(value: bool) -> str:
    return "true" if value else "false"
