"""The repository stage: planning by tables of cases, then creation and reconciliation against the stack."""

from __future__ import annotations

import json
import threading
from dataclasses import replace
from typing import Any

import boto3
import pytest

from ecr_action.errors import AwsCallError, RepositoryMissingError
from ecr_action.policies import validate_lifecycle_policy, validate_repository_policy
from ecr_action.repository import (
    Change,
    ChangeKind,
    Encryption,
    RepositorySpec,
    RepositoryState,
    TagMutability,
    encryption_warning,
    ensure_repository,
    plan,
    read_state,
)
from stack.client import StackClient

KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
ALIAS_ARN = "arn:aws:kms:us-east-1:123456789012:alias/ecr-images"
LIFECYCLE = validate_lifecycle_policy(
    json.dumps(
        {
            "rules": [
                {
                    "rulePriority": 1,
                    "description": "keep 10 untagged",
                    "selection": {"tagStatus": "untagged", "countType": "imageCountMoreThan", "countNumber": 10},
                    "action": {"type": "expire"},
                }
            ]
        }
    )
)
REPOSITORY_POLICY = validate_repository_policy(
    json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "pull-from-ci",
                    "Effect": "Allow",
                    "Principal": {"AWS": ["arn:aws:iam::123456789012:root"]},
                    "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                }
            ],
        }
    )
)


def spec(name: str = "team/app", **fields: Any) -> RepositorySpec:
    return replace(
        RepositorySpec(
            name=name,
            registry_id=None,
            create=True,
            scan_on_push=True,
            tag_mutability="IMMUTABLE",
            encryption_type="AES256",
            kms_key=None,
            lifecycle_policy=LIFECYCLE,
            repository_policy=REPOSITORY_POLICY,
            tags=(("team", "platform"), ("env", "prod")),
        ),
        **fields,
    )


def reordered(policy: str) -> str:
    """The same document with keys in reverse order and indentation, as ECR may hand it back."""

    def reverse(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: reverse(value[key]) for key in reversed(value)}
        if isinstance(value, list):
            return [reverse(item) for item in value]
        return value

    return json.dumps(reverse(json.loads(policy)), indent=2)


def state(**fields: Any) -> RepositoryState:
    """ECR's view of a repository that matches `spec()` exactly."""
    return replace(
        RepositoryState(
            uri="123456789012.dkr.ecr.us-east-1.amazonaws.com/team/app",
            registry_id="123456789012",
            arn="arn:aws:ecr:us-east-1:123456789012:repository/team/app",
            scan_on_push=True,
            tag_mutability=TagMutability("IMMUTABLE"),
            encryption=Encryption("AES256"),
            lifecycle_policy=LIFECYCLE,
            repository_policy=REPOSITORY_POLICY,
            tags=(("env", "prod"), ("team", "platform")),
        ),
        **fields,
    )


# Planning -----------------------------------------------------------------------------------------

CREATE_LINE = (
    "create: team/app (scan-on-push true; tag-mutability IMMUTABLE; encryption AES256; tags team=platform, env=prod)"
)

PLAN_CASES = [
    pytest.param(
        spec(),
        None,
        [
            (ChangeKind.CREATE, CREATE_LINE),
            (ChangeKind.LIFECYCLE_POLICY, "lifecycle-policy: none → set"),
            (ChangeKind.REPOSITORY_POLICY, "repository-policy: none → set"),
        ],
        id="missing: create, then the policies ECR only takes by their own calls",
    ),
    pytest.param(
        spec(lifecycle_policy=None, repository_policy=None, tags=(), encryption_type="KMS", kms_key=KEY_ARN),
        None,
        [
            (
                ChangeKind.CREATE,
                f"create: team/app (scan-on-push true; tag-mutability IMMUTABLE; encryption KMS with key {KEY_ARN})",
            )
        ],
        id="missing, no policies: create alone",
    ),
    pytest.param(spec(), state(), [], id="everything as asked: nothing"),
    pytest.param(
        spec(),
        state(scan_on_push=False),
        [(ChangeKind.SCAN_ON_PUSH, "scan-on-push: false → true")],
        id="scan-on-push off",
    ),
    pytest.param(
        spec(scan_on_push=False),
        state(),
        [(ChangeKind.SCAN_ON_PUSH, "scan-on-push: true → false")],
        id="scan-on-push turned off",
    ),
    pytest.param(
        spec(),
        state(tag_mutability=TagMutability("MUTABLE")),
        [(ChangeKind.TAG_MUTABILITY, "tag-mutability: MUTABLE → IMMUTABLE")],
        id="tags made immutable",
    ),
    pytest.param(
        spec(),
        state(tag_mutability=TagMutability("IMMUTABLE_WITH_EXCLUSION", ("latest",))),
        [],
        id="immutable with exclusion filters set elsewhere: kept",
    ),
    pytest.param(
        spec(),
        state(tag_mutability=TagMutability("MUTABLE_WITH_EXCLUSION", ("v*",))),
        [(ChangeKind.TAG_MUTABILITY, "tag-mutability: MUTABLE_WITH_EXCLUSION (excluding v*) → IMMUTABLE")],
        id="mutable with exclusion filters, immutable asked",
    ),
    pytest.param(
        spec(tag_mutability="IMMUTABLE_WITH_EXCLUSION", tag_mutability_exclusions=("latest", "dev-*")),
        state(),
        [(ChangeKind.TAG_MUTABILITY, "tag-mutability: IMMUTABLE → IMMUTABLE_WITH_EXCLUSION (excluding latest, dev-*)")],
        id="exclusions added",
    ),
    pytest.param(
        spec(tag_mutability="IMMUTABLE_WITH_EXCLUSION", tag_mutability_exclusions=("latest", "dev-*")),
        state(tag_mutability=TagMutability("IMMUTABLE_WITH_EXCLUSION", ("dev-*", "latest"))),
        [],
        id="the same exclusions in another order: nothing",
    ),
    pytest.param(
        spec(tag_mutability="IMMUTABLE_WITH_EXCLUSION", tag_mutability_exclusions=("latest",)),
        state(tag_mutability=TagMutability("IMMUTABLE_WITH_EXCLUSION", ("latest", "dev-*"))),
        [
            (
                ChangeKind.TAG_MUTABILITY,
                "tag-mutability: IMMUTABLE_WITH_EXCLUSION (excluding latest, dev-*) → "
                "IMMUTABLE_WITH_EXCLUSION (excluding latest)",
            )
        ],
        id="an exclusion removed",
    ),
    pytest.param(
        spec(tag_mutability="MUTABLE_WITH_EXCLUSION", tag_mutability_exclusions=("v*",)),
        state(tag_mutability=TagMutability("IMMUTABLE_WITH_EXCLUSION", ("v*",))),
        [
            (
                ChangeKind.TAG_MUTABILITY,
                "tag-mutability: IMMUTABLE_WITH_EXCLUSION (excluding v*) → MUTABLE_WITH_EXCLUSION (excluding v*)",
            )
        ],
        id="the mode flipped, same filters",
    ),
    pytest.param(
        spec(tag_mutability=None),
        state(tag_mutability=TagMutability("MUTABLE_WITH_EXCLUSION", ("v*",))),
        [],
        id="no mutability asked: left alone",
    ),
    pytest.param(
        spec(),
        state(lifecycle_policy=None, repository_policy=None),
        [
            (ChangeKind.LIFECYCLE_POLICY, "lifecycle-policy: none → set"),
            (ChangeKind.REPOSITORY_POLICY, "repository-policy: none → set"),
        ],
        id="policies missing",
    ),
    pytest.param(
        spec(),
        state(lifecycle_policy=reordered(LIFECYCLE), repository_policy=reordered(REPOSITORY_POLICY)),
        [],
        id="policies with other key order and whitespace: the same",
    ),
    pytest.param(
        spec(),
        state(lifecycle_policy=LIFECYCLE.replace('"countNumber":10', '"countNumber":20')),
        [(ChangeKind.LIFECYCLE_POLICY, "lifecycle-policy: replaced (it differed from the input)")],
        id="lifecycle policy differs",
    ),
    pytest.param(
        spec(),
        state(repository_policy=REPOSITORY_POLICY.replace("ecr:BatchGetImage", "ecr:PutImage")),
        [(ChangeKind.REPOSITORY_POLICY, "repository-policy: replaced (it differed from the input)")],
        id="repository policy differs",
    ),
    pytest.param(
        spec(lifecycle_policy=None, repository_policy=None),
        state(),
        [],
        id="no policies given: ECR's are left alone",
    ),
    pytest.param(
        spec(tags=(("team", "platform"), ("env", "staging"), ("cost-center", "42"))),
        state(tags=(("env", "prod"), ("team", "platform"), ("owner", "terraform"))),
        [(ChangeKind.TAGS, "tags: env=staging (was prod), cost-center=42 (new)")],
        id="tags updated and added; a tag not given is kept",
    ),
    pytest.param(spec(tags=()), state(), [], id="no tags given: ECR's are left alone"),
    pytest.param(
        spec(encryption_type="KMS"),
        state(),
        [],
        id="encryption differs: not a change",
    ),
    pytest.param(
        spec(scan_on_push=False, tag_mutability="MUTABLE", tags=(("env", "dev"),)),
        state(lifecycle_policy=None),
        [
            (ChangeKind.SCAN_ON_PUSH, "scan-on-push: true → false"),
            (ChangeKind.TAG_MUTABILITY, "tag-mutability: IMMUTABLE → MUTABLE"),
            (ChangeKind.LIFECYCLE_POLICY, "lifecycle-policy: none → set"),
            (ChangeKind.TAGS, "tags: env=dev (was prod)"),
        ],
        id="several changes, in order",
    ),
]


@pytest.mark.parametrize(("wanted", "current", "expected"), PLAN_CASES)
def test_plan(wanted: RepositorySpec, current: RepositoryState | None, expected: list[tuple[str, str]]) -> None:
    assert plan(wanted, current) == [Change(what, description) for what, description in expected]


ENCRYPTION_CASES = [
    pytest.param("AES256", None, Encryption("AES256"), True, id="AES256"),
    pytest.param("KMS", None, Encryption("KMS", KEY_ARN), True, id="KMS, any key asked"),
    pytest.param("KMS", KEY_ARN, Encryption("KMS", KEY_ARN), True, id="KMS, same key ARN"),
    pytest.param("KMS", "1234abcd-12ab-34cd-56ef-1234567890ab", Encryption("KMS", KEY_ARN), True, id="key id"),
    pytest.param("KMS", "alias/ecr-images", Encryption("KMS", ALIAS_ARN), True, id="alias"),
    pytest.param("KMS", "alias/other", Encryption("KMS", KEY_ARN), False, id="another key"),
    pytest.param("KMS", None, Encryption("AES256"), False, id="KMS asked, AES256 had"),
    pytest.param("AES256", None, Encryption("KMS", KEY_ARN), False, id="AES256 asked, KMS had"),
]


@pytest.mark.parametrize(("encryption_type", "kms_key", "current", "kept"), ENCRYPTION_CASES)
def test_encryption_differences_are_warnings(
    encryption_type: str, kms_key: str | None, current: Encryption, kept: bool
) -> None:
    warning = encryption_warning(spec(encryption_type=encryption_type, kms_key=kms_key), state(encryption=current))
    assert (warning is None) is kept


def test_encryption_warning_says_what_stays_and_how_to_change_it() -> None:
    warning = encryption_warning(spec(encryption_type="KMS"), state())
    assert warning == (
        "Repository team/app keeps its encryption, AES256, not KMS with the AWS managed key as asked: ECR "
        "cannot change the encryption of an existing repository. To change it, create a new repository with "
        "encryption-type KMS and move the images there; or set encryption-type (and kms-key) to match the "
        "repository."
    )


# Against the stack ----------------------------------------------------------------------------------


def action_client(stack: StackClient) -> Any:
    """An ECR client as the action makes one (plain credentials), acting in the default account."""
    session = boto3.Session(aws_access_key_id="AKIATEST", aws_secret_access_key="x", region_name=stack.region)
    return session.client("ecr", endpoint_url=stack.config.gateway_url)


@pytest.fixture
def ecr(stack: StackClient) -> Any:
    return action_client(stack)


def in_ecr(stack: StackClient, name: str) -> dict[str, Any]:
    """The repository's settings, read by the admin client the way a user would check them."""
    admin = stack.ecr()
    repository = admin.describe_repositories(repositoryNames=[name])["repositories"][0]
    return {
        "scan_on_push": repository["imageScanningConfiguration"]["scanOnPush"],
        "tag_mutability": repository["imageTagMutability"],
        "encryption_type": repository["encryptionConfiguration"]["encryptionType"],
        "lifecycle_policy": json.loads(admin.get_lifecycle_policy(repositoryName=name)["lifecyclePolicyText"]),
        "repository_policy": json.loads(admin.get_repository_policy(repositoryName=name)["policyText"]),
        "tags": {tag["Key"]: tag["Value"] for tag in admin.list_tags_for_resource(
            resourceArn=repository["repositoryArn"])["tags"]},
    }


def asked(wanted: RepositorySpec) -> dict[str, Any]:
    """What `in_ecr` shows for a repository that has exactly the settings of `wanted`."""
    return {
        "scan_on_push": wanted.scan_on_push,
        "tag_mutability": wanted.tag_mutability,
        "encryption_type": wanted.encryption_type,
        "lifecycle_policy": json.loads(wanted.lifecycle_policy or "null"),
        "repository_policy": json.loads(wanted.repository_policy or "null"),
        "tags": dict(wanted.tags),
    }


def exists(stack: StackClient, name: str) -> bool:
    admin = stack.ecr()
    try:
        admin.describe_repositories(repositoryNames=[name])
    except admin.exceptions.RepositoryNotFoundException:
        return False
    return True


@pytest.mark.stack
def test_creates_the_repository_with_every_setting(stack: StackClient, ecr: Any, unique_name: str) -> None:
    wanted = spec(unique_name)
    result = ensure_repository(ecr, wanted, dry_run=False)

    assert in_ecr(stack, unique_name) == asked(wanted)
    assert result.created
    assert result.uri == f"{stack.default_account}.dkr.ecr.{stack.region}.amazonaws.com/{unique_name}"
    assert result.registry_id == stack.default_account
    assert result.arn == f"arn:aws:ecr:{stack.region}:{stack.default_account}:repository/{unique_name}"
    assert [change.what for change in result.changes] == ["create", "lifecycle-policy", "repository-policy"]
    assert result.warnings == []


@pytest.mark.stack
def test_a_second_run_changes_nothing(stack: StackClient, ecr: Any, unique_name: str) -> None:
    wanted = spec(unique_name)
    first = ensure_repository(ecr, wanted, dry_run=False)
    second = ensure_repository(ecr, wanted, dry_run=False)

    assert (second.created, second.changes, second.warnings) == (False, [], [])
    assert (second.uri, second.registry_id, second.arn) == (first.uri, first.registry_id, first.arn)


@pytest.mark.stack
def test_a_changed_spec_is_reconciled(stack: StackClient, ecr: Any, unique_name: str) -> None:
    ensure_repository(ecr, spec(unique_name), dry_run=False)
    stack.ecr().tag_resource(
        resourceArn=read_state(ecr, unique_name, None).arn, tags=[{"Key": "owner", "Value": "terraform"}]
    )
    changed = spec(
        unique_name,
        scan_on_push=False,
        tag_mutability="MUTABLE",
        lifecycle_policy=LIFECYCLE.replace('"countNumber":10', '"countNumber":3'),
        repository_policy=REPOSITORY_POLICY.replace("pull-from-ci", "pull-from-prod"),
        tags=(("env", "staging"),),
    )

    result = ensure_repository(ecr, changed, dry_run=False)

    assert [change.description for change in result.changes] == [
        "scan-on-push: true → false",
        "tag-mutability: IMMUTABLE → MUTABLE",
        "lifecycle-policy: replaced (it differed from the input)",
        "repository-policy: replaced (it differed from the input)",
        "tags: env=staging (was prod)",
    ]
    assert not result.created
    # Tags the spec does not name (set by the first run, or by Terraform) stay.
    expected = asked(changed) | {"tags": {"team": "platform", "env": "staging", "owner": "terraform"}}
    assert in_ecr(stack, unique_name) == expected
    assert ensure_repository(ecr, changed, dry_run=False).changes == []


@pytest.mark.stack
def test_a_missing_repository_is_an_error_when_creation_is_off(
    stack: StackClient, ecr: Any, unique_name: str
) -> None:
    with pytest.raises(RepositoryMissingError) as raised:
        ensure_repository(ecr, spec(unique_name, create=False), dry_run=False)

    assert f"Repository {unique_name} does not exist in this account's registry in {stack.region}" in str(
        raised.value
    )
    assert "set `create-repository: true`" in str(raised.value)
    assert not exists(stack, unique_name)


@pytest.mark.stack
def test_a_dry_run_of_a_new_repository_creates_nothing(stack: StackClient, ecr: Any, unique_name: str) -> None:
    result = ensure_repository(ecr, spec(unique_name), dry_run=True)

    assert [change.what for change in result.changes] == ["create", "lifecycle-policy", "repository-policy"]
    assert (result.created, result.uri, result.arn) == (False, None, None)
    assert not exists(stack, unique_name)


@pytest.mark.stack
def test_a_dry_run_lists_the_changes_and_makes_none(stack: StackClient, ecr: Any, unique_name: str) -> None:
    original = spec(unique_name)
    ensure_repository(ecr, original, dry_run=False)
    changed = spec(unique_name, scan_on_push=False, tags=(("env", "dev"),), encryption_type="KMS")

    result = ensure_repository(ecr, changed, dry_run=True)

    assert [change.what for change in result.changes] == ["scan-on-push", "tags"]
    assert len(result.warnings) == 1 and "keeps its encryption, AES256" in result.warnings[0]
    assert result.uri is not None and not result.created
    assert in_ecr(stack, unique_name) == asked(original)


@pytest.mark.stack
def test_an_existing_repository_keeps_its_encryption_with_a_warning(
    stack: StackClient, ecr: Any, unique_name: str
) -> None:
    stack.ecr().create_repository(repositoryName=unique_name, encryptionConfiguration={"encryptionType": "KMS"})

    result = ensure_repository(ecr, spec(unique_name), dry_run=False)

    assert not result.created
    assert result.warnings and result.warnings[0].startswith(
        f"Repository {unique_name} keeps its encryption, KMS with key arn:aws:kms:"
    )
    assert in_ecr(stack, unique_name) == asked(spec(unique_name)) | {"encryption_type": "KMS"}


@pytest.mark.stack
def test_kms_encryption_is_set_at_creation(stack: StackClient, ecr: Any, unique_name: str) -> None:
    wanted = spec(unique_name, encryption_type="KMS", kms_key=KEY_ARN)
    ensure_repository(ecr, wanted, dry_run=False)

    repository = stack.ecr().describe_repositories(repositoryNames=[unique_name])["repositories"][0]
    assert repository["encryptionConfiguration"] == {"encryptionType": "KMS", "kmsKey": KEY_ARN}
    assert ensure_repository(ecr, wanted, dry_run=False).warnings == []


@pytest.mark.stack
def test_dual_layer_kms_encryption_is_set_at_creation(stack: StackClient, ecr: Any, unique_name: str) -> None:
    wanted = spec(unique_name, encryption_type="KMS_DSSE", kms_key=KEY_ARN)
    result = ensure_repository(ecr, wanted, dry_run=False)

    repository = stack.ecr().describe_repositories(repositoryNames=[unique_name])["repositories"][0]
    assert repository["encryptionConfiguration"] == {"encryptionType": "KMS_DSSE", "kmsKey": KEY_ARN}
    assert f"encryption KMS_DSSE with key {KEY_ARN};" in result.changes[0].description
    assert ensure_repository(ecr, wanted, dry_run=False).warnings == []


def mutability_in_ecr(stack: StackClient, name: str) -> tuple[str, list[dict[str, str]]]:
    repository = stack.ecr().describe_repositories(repositoryNames=[name])["repositories"][0]
    return repository["imageTagMutability"], repository.get("imageTagMutabilityExclusionFilters", [])


@pytest.mark.stack
def test_tag_mutability_exclusions_are_set_at_creation_and_reconciled(
    stack: StackClient, ecr: Any, unique_name: str
) -> None:
    wanted = spec(unique_name, tag_mutability="IMMUTABLE_WITH_EXCLUSION", tag_mutability_exclusions=("latest",))
    created = ensure_repository(ecr, wanted, dry_run=False)

    assert mutability_in_ecr(stack, unique_name) == (
        "IMMUTABLE_WITH_EXCLUSION",
        [{"filterType": "WILDCARD", "filter": "latest"}],
    )
    assert created.tag_mutability == TagMutability("IMMUTABLE_WITH_EXCLUSION", ("latest",))
    assert ensure_repository(ecr, wanted, dry_run=False).changes == []

    changed = replace(wanted, tag_mutability="MUTABLE_WITH_EXCLUSION", tag_mutability_exclusions=("v*", "release-*"))
    reconciled = ensure_repository(ecr, changed, dry_run=False)

    assert [change.description for change in reconciled.changes] == [
        "tag-mutability: IMMUTABLE_WITH_EXCLUSION (excluding latest) → "
        "MUTABLE_WITH_EXCLUSION (excluding v*, release-*)"
    ]
    assert mutability_in_ecr(stack, unique_name) == (
        "MUTABLE_WITH_EXCLUSION",
        [{"filterType": "WILDCARD", "filter": "v*"}, {"filterType": "WILDCARD", "filter": "release-*"}],
    )
    # A plain MUTABLE keeps filters that may be managed elsewhere; IMMUTABLE replaces the mode and them.
    assert ensure_repository(ecr, replace(changed, tag_mutability="MUTABLE", tag_mutability_exclusions=()),
                             dry_run=False).changes == []
    ensure_repository(ecr, replace(changed, tag_mutability="IMMUTABLE", tag_mutability_exclusions=()), dry_run=False)
    assert mutability_in_ecr(stack, unique_name) == ("IMMUTABLE", [])


@pytest.mark.stack
def test_a_lifecycle_policy_that_archives_is_applied(stack: StackClient, ecr: Any, unique_name: str) -> None:
    if "lifecycle-archive" not in stack.gateway_features():
        pytest.skip("the running stack's gateway predates lifecycle policies that archive: restart the stack")
    archiving = validate_lifecycle_policy(
        json.dumps(
            {
                "rules": [
                    {
                        "rulePriority": 1,
                        "description": "archive images not pulled for 90 days",
                        "selection": {
                            "tagStatus": "any",
                            "countType": "sinceImagePulled",
                            "countUnit": "days",
                            "countNumber": 90,
                        },
                        "action": {"type": "transition", "targetStorageClass": "archive"},
                    }
                ]
            }
        )
    )
    ensure_repository(ecr, spec(unique_name, lifecycle_policy=archiving), dry_run=False)

    text = stack.ecr().get_lifecycle_policy(repositoryName=unique_name)["lifecyclePolicyText"]
    assert json.loads(text) == json.loads(archiving)
    assert ensure_repository(ecr, spec(unique_name, lifecycle_policy=archiving), dry_run=False).changes == []


class CreatedByAnotherJob:
    """An ECR client for which another job creates the repository between describe and create."""

    def __init__(self, ecr: Any, other_job: Any) -> None:
        self._ecr = ecr
        self._other_job = other_job

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ecr, name)

    def create_repository(self, **request: Any) -> Any:
        self._other_job.create_repository(repositoryName=request["repositoryName"])
        return self._ecr.create_repository(**request)


@pytest.mark.stack
def test_a_repository_created_in_between_is_adopted_and_reconciled(
    stack: StackClient, ecr: Any, unique_name: str
) -> None:
    wanted = spec(unique_name)
    result = ensure_repository(CreatedByAnotherJob(ecr, stack.ecr()), wanted, dry_run=False)

    assert not result.created
    assert [change.what for change in result.changes] == [
        "scan-on-push", "tag-mutability", "lifecycle-policy", "repository-policy", "tags",
    ]
    assert in_ecr(stack, unique_name) == asked(wanted)


@pytest.mark.stack
def test_two_jobs_racing_to_create_both_succeed(stack: StackClient, unique_name: str) -> None:
    wanted = spec(unique_name)
    start = threading.Barrier(2)
    results: list[Any] = [None, None]

    def job(index: int) -> None:
        client = action_client(stack)  # one per job, as two runners would have
        start.wait()
        try:
            results[index] = ensure_repository(client, wanted, dry_run=False)
        except Exception as error:  # the assertion below shows it
            results[index] = error

    threads = [threading.Thread(target=job, args=(index,)) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert all(not isinstance(result, Exception) for result in results), results
    assert sum(result.created for result in results) == 1
    assert in_ecr(stack, unique_name) == asked(wanted)


@pytest.mark.stack
def test_policies_round_trip_as_canonical_json(stack: StackClient, ecr: Any, unique_name: str) -> None:
    ensure_repository(ecr, spec(unique_name), dry_run=False)

    admin = stack.ecr()
    lifecycle_text = admin.get_lifecycle_policy(repositoryName=unique_name)["lifecyclePolicyText"]
    policy_text = admin.get_repository_policy(repositoryName=unique_name)["policyText"]
    assert json.loads(lifecycle_text) == json.loads(LIFECYCLE)
    assert json.loads(policy_text) == json.loads(REPOSITORY_POLICY)
    current = read_state(ecr, unique_name, None)
    assert current is not None
    assert (current.lifecycle_policy, current.repository_policy) == (lifecycle_text, policy_text)
    assert plan(spec(unique_name), current) == []


@pytest.mark.stack
def test_the_registry_id_is_passed_on(stack: StackClient, ecr: Any, unique_name: str) -> None:
    wanted = spec(unique_name, registry_id=stack.default_account)
    created = ensure_repository(ecr, wanted, dry_run=False)
    again = ensure_repository(ecr, wanted, dry_run=False)

    assert (created.created, created.registry_id) == (True, stack.default_account)
    assert again.changes == []


@pytest.mark.stack
def test_a_policy_ecr_refuses_is_an_aws_call_error(ecr: Any, unique_name: str) -> None:
    # Past the action's own checks (the lead validates inputs first), ECR still has the last word.
    refused = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Maybe", "Principal": "*", "Action": "*"}]})

    with pytest.raises(AwsCallError) as raised:
        ensure_repository(ecr, spec(unique_name, repository_policy=refused), dry_run=False)

    assert str(raised.value).startswith(f"SetRepositoryPolicy on {unique_name} failed (InvalidParameterException)")
