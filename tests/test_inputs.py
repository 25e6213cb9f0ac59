"""Inputs as the runner passes them (INPUT_<NAME> with hyphens kept), and as flags on the command line."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from ecr_action.errors import InputError
from ecr_action.findings import Severity
from ecr_action.ignores import IgnoreEntry
from ecr_action.inputs import (
    INPUT_SPECS,
    EncryptionType,
    FailOn,
    GitHubContext,
    IfTagExists,
    ImageTagMutability,
    Inputs,
    ScanMode,
    ScanUnavailable,
    parse_cli,
    read_github_context,
    read_inputs,
)
from ecr_action.inputs.choices import Builder, CacheTo
from tests.helpers import NOW, ROLE, SHA, problems_of, read, runner_environment

LIFECYCLE_CANONICAL = (
    '{"rules":[{"action":{"type":"expire"},"rulePriority":1,"selection":{"countNumber":7,'
    '"countType":"sinceImagePushed","countUnit":"days","tagStatus":"untagged"}}]}'
)
REPOSITORY_POLICY_CANONICAL = (
    '{"Statement":[{"Action":"ecr:BatchGetImage","Effect":"Allow","Principal":"*"}],"Version":"2012-10-17"}'
)


def test_full_runner_environment_gives_typed_inputs(workspace: Path) -> None:
    event = workspace.parent / "event.json"
    # The commit's time, not the clock, dates the image: a re-run then builds the same image.
    event.write_text(json.dumps({"ref": "refs/heads/main", "head_commit": {"timestamp": "2024-12-31T23:00:00-02:00"}}))
    environment = runner_environment(workspace, {
        "role-to-assume": ROLE,
        "audience": "sts.example",
        "role-session-name": "release@shop",
        "role-duration-seconds": "7200",
        "role-chaining": "False",
        "chain-role-to-assume": "arn:aws-us-gov:iam::210987654321:role/path/push",
        "allowed-account-ids": "123456789012,\n210987654321\n",
        "registry-id": "210987654321",
        "create-repository": "FALSE",
        "scan-on-push": "false",
        "image-tag-mutability": "immutable_with_exclusion",
        "image-tag-mutability-exclusions": "latest, dev-*\nlatest",
        "encryption-type": "KMS_DSSE",
        "kms-key": "alias/ecr",
        "lifecycle-policy": "lifecycle.json",
        "repository-policy": '{"Version": "2012-10-17", "Statement": '
                             '[{"Effect": "Allow", "Principal": "*", "Action": "ecr:BatchGetImage"}]}',
        "repository-tags": "team=platform\ncost-center = 42\n",
        "context": "app",
        "file": "app/Containerfile",
        "build-args": "VERSION=1.2.3\nURL=https://x.example/?a=b\n",
        "target": "runtime",
        "labels": "org.opencontainers.image.url=https://shop.example\nteam=platform\n",
        "pull": "true",
        "no-cache": "True",
        "tags": "latest, v1.2.3\nv1.2.3\n",
        "if-tag-exists": "overwrite",
        "push": "false",
        "retries": "3",
        "retry-max-seconds": "60",
        "dry-run": "TRUE",
        "scan": "manual",
        "scan-timeout": "900",
        "scan-poll-interval": "10",
        "scan-unavailable": "WARN",
        "fail-on": "high",
        "fail-on-fixable-only": "true",
        "ignore": "CVE-2024-1234, GHSA-abcd-efgh-2345\nALAS2-2024-2500",
        "ignore-file": "ignore.yml",
        "baseline-tag": "stable",
        "sarif-file": "reports/ecr.sarif",
        "annotations": "0",
        "summary": "false",
    }) | {
        "GITHUB_OUTPUT": "/runner/output",
        "GITHUB_STEP_SUMMARY": "/runner/summary",
        "GITHUB_EVENT_PATH": str(event),
        "RUNNER_DEBUG": "1",
        "ACTIONS_ID_TOKEN_REQUEST_URL": "https://token.example/?x=1",
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "secret-token",
    }

    assert read(environment) == Inputs(
        aws_region="eu-west-1",
        role_to_assume=ROLE,
        audience="sts.example",
        role_session_name="release@shop",
        role_duration_seconds=7200,
        role_chaining=False,
        chain_role_to_assume="arn:aws-us-gov:iam::210987654321:role/path/push",
        allowed_account_ids=("123456789012", "210987654321"),
        repository="team/app",
        registry_id="210987654321",
        create_repository=False,
        scan_on_push=False,
        image_tag_mutability=ImageTagMutability.IMMUTABLE_WITH_EXCLUSION,
        image_tag_mutability_exclusions=("latest", "dev-*"),
        encryption_type=EncryptionType.KMS_DSSE,
        kms_key="alias/ecr",
        lifecycle_policy=LIFECYCLE_CANONICAL,
        repository_policy=REPOSITORY_POLICY_CANONICAL,
        repository_tags=(("team", "platform"), ("cost-center", "42")),
        context=workspace / "app",
        file=workspace / "app" / "Containerfile",
        build_args=(("VERSION", "1.2.3"), ("URL", "https://x.example/?a=b")),
        target="runtime",
        labels=(
            ("org.opencontainers.image.source", "https://github.com/octo/shop"),
            ("org.opencontainers.image.revision", SHA),
            ("org.opencontainers.image.created", "2025-01-01T01:00:00Z"),
            ("org.opencontainers.image.url", "https://shop.example"),
            ("team", "platform"),
        ),
        pull=True,
        no_cache=True,
        build_timeout=None,
        builder=Builder.AUTO,
        platforms=(),
        network=None,
        secrets=(),
        registries=(),
        cache_from=None,
        cache_to=CacheTo.NONE,
        merge_digests=(),
        tags=("latest", "v1.2.3"),
        if_tag_exists=IfTagExists.OVERWRITE,
        push=False,
        retries=3,
        retry_max_seconds=60,
        dry_run=True,
        scan=ScanMode.MANUAL,
        scan_timeout=900,
        scan_poll_interval=10,
        scan_unavailable=ScanUnavailable.WARN,
        fail_on=FailOn.HIGH,
        fail_on_fixable_only=True,
        ignore=("CVE-2024-1234", "GHSA-abcd-efgh-2345", "ALAS2-2024-2500"),
        ignore_file=workspace / "ignore.yml",
        ignore_entries=(IgnoreEntry("CVE-2024-1234", "not reachable"),),
        skipped_tags=(),
        baseline_tag="stable",
        sarif_file=workspace / "reports" / "ecr.sarif",
        annotations=0,
        summary=False,
        github=GitHubContext(
            repository="octo/shop",
            sha=SHA,
            ref="refs/heads/main",
            server_url="https://github.com",
            run_id="1234567890",
            run_attempt="2",
            workflow="release",
            event_name="push",
            actor="octocat",
            workspace=workspace,
            output_path=Path("/runner/output"),
            summary_path=Path("/runner/summary"),
            debug=True,
            oidc_request_url="https://token.example/?x=1",
            oidc_request_token="secret-token",
            is_fork_pull_request=False,
            docker_host="unix:///var/run/docker.sock",
            event_time=datetime.fromisoformat("2024-12-31T23:00:00-02:00"),
        ),
    )


def test_defaults_apply_whether_inputs_are_empty_or_missing(workspace: Path) -> None:
    from_runner = read(runner_environment(workspace))
    from_cli = read({
        "INPUT_AWS-REGION": "eu-west-1", "INPUT_REPOSITORY": "team/app",
        "GITHUB_SHA": SHA, "GITHUB_WORKSPACE": str(workspace),
    })
    # Only what comes from the run differs: the CLI case here has no repository or run id.
    assert dataclasses.replace(
        from_runner, github=from_cli.github, labels=from_cli.labels, role_session_name="ecr-action"
    ) == from_cli
    assert from_cli == dataclasses.replace(
        from_cli,
        role_to_assume=None,
        audience="sts.amazonaws.com",
        role_session_name="ecr-action",
        role_duration_seconds=3600,
        role_chaining=False,
        allowed_account_ids=(),
        registry_id=None,
        create_repository=True,
        scan_on_push=True,
        image_tag_mutability=None,
        image_tag_mutability_exclusions=(),
        encryption_type=None,
        kms_key=None,
        lifecycle_policy=None,
        repository_policy=None,
        repository_tags=(),
        context=workspace,
        file=workspace / "Dockerfile",
        build_args=(),
        target=None,
        pull=False,
        no_cache=False,
        build_timeout=None,
        builder=Builder.AUTO,
        platforms=(),
        network=None,
        secrets=(),
        registries=(),
        cache_from=None,
        cache_to=CacheTo.NONE,
        merge_digests=(),
        tags=("0123456",),
        if_tag_exists=IfTagExists.SKIP_SAME_DIGEST,
        push=True,
        retries=5,
        retry_max_seconds=120,
        dry_run=False,
        scan=ScanMode.ON_PUSH,
        scan_timeout=600,
        scan_poll_interval=5,
        fail_on=FailOn.CRITICAL,
        fail_on_fixable_only=False,
        ignore=(),
        ignore_file=None,
        ignore_entries=(),
        baseline_tag=None,
        sarif_file=None,
        annotations=10,
        summary=True,
    )


def test_inputs_fields_are_the_table_inputs_spelt_with_underscores() -> None:
    fields = [field.name for field in dataclasses.fields(Inputs)]
    # The three ways of giving build secrets are read into one field, `secrets`.
    names = [spec.name.replace("-", "_") for spec in INPUT_SPECS if spec.name not in ("secret-files", "secret-envs")]
    assert fields == [*names, "ignore_entries", "skipped_tags", "github"]


# Cases are (inputs given, the named input first; the one problem line expected), {workspace} standing for
# the workspace's path.
BAD_INPUTS = [
    pytest.param({"aws-region": "us-east"}, "input 'aws-region': got 'us-east'; expected an AWS region such as "
                 "us-east-1", id="region-no-number"),
    pytest.param({"aws-region": "US-EAST-1"}, "input 'aws-region': got 'US-EAST-1'; expected an AWS region "
                 "such as us-east-1", id="region-upper-case"),
    pytest.param({"aws-region": ""}, "input 'aws-region': missing; it is required: set it in the step's "
                 "`with:`", id="region-missing"),
    pytest.param({"repository": " "}, "input 'repository': missing; it is required: set it in the step's "
                 "`with:`", id="repository-blank"),
    pytest.param({"repository": "Team/App"}, "input 'repository': got 'Team/App'; expected an ECR repository "
                 "name: 2 to 256 lowercase letters, digits and ._-/ such as team/app", id="repository-upper-case"),
    pytest.param({"repository": "a"}, "input 'repository': got 'a'; expected an ECR repository name: 2 to 256 "
                 "lowercase letters, digits and ._-/ such as team/app", id="repository-too-short"),
    pytest.param({"repository": "team//app"}, "input 'repository': got 'team//app'; expected an ECR "
                 "repository name: 2 to 256 lowercase letters, digits and ._-/ such as team/app",
                 id="repository-empty-part"),
    pytest.param({"repository": "x" * 257}, f"input 'repository': got '{'x' * 57}...'; expected an ECR "
                 "repository name: 2 to 256 lowercase letters, digits and ._-/ such as team/app",
                 id="repository-too-long-shown-short"),
    pytest.param({"role-to-assume": "arn:aws:iam::123:role/x"}, "input 'role-to-assume': got "
                 "'arn:aws:iam::123:role/x'; expected an IAM role ARN such as "
                 "arn:aws:iam::123456789012:role/deploy", id="role-short-account"),
    pytest.param({"role-to-assume": "arn:aws:iam::123456789012:user/x"}, "input 'role-to-assume': got "
                 "'arn:aws:iam::123456789012:user/x'; expected an IAM role ARN such as "
                 "arn:aws:iam::123456789012:role/deploy", id="role-is-user"),
    pytest.param({"chain-role-to-assume": "deploy", "role-to-assume": ROLE}, "input 'chain-role-to-assume': "
                 "got 'deploy'; expected an IAM role ARN such as arn:aws:iam::123456789012:role/deploy",
                 id="chain-role-not-arn"),
    pytest.param({"chain-role-to-assume": ROLE}, "input 'chain-role-to-assume': it needs role-to-assume, the "
                 "first role of the chain: set role-to-assume", id="chain-role-without-role"),
    pytest.param({"role-chaining": "true"}, "input 'role-chaining': got 'true'; it needs role-to-assume, the "
                 "role to assume with the credentials already present: set role-to-assume",
                 id="chaining-without-role"),
    pytest.param({"role-chaining": "yes"}, "input 'role-chaining': got 'yes'; expected true or false (also "
                 "True, TRUE, False, FALSE)", id="chaining-yes"),
    pytest.param({"role-session-name": "a"}, "input 'role-session-name': got 'a'; expected 2 to 64 characters "
                 "of letters, digits and _+=,.@-", id="session-name-short"),
    pytest.param({"role-session-name": "my session"}, "input 'role-session-name': got 'my session'; expected "
                 "2 to 64 characters of letters, digits and _+=,.@-", id="session-name-space"),
    pytest.param({"role-session-name": "s" * 65}, f"input 'role-session-name': got '{'s' * 57}...'; expected "
                 "2 to 64 characters of letters, digits and _+=,.@-", id="session-name-long"),
    pytest.param({"role-duration-seconds": "899"}, "input 'role-duration-seconds': got '899'; expected a whole "
                 "number from 900 to 43200", id="duration-low"),
    pytest.param({"role-duration-seconds": "43201"}, "input 'role-duration-seconds': got '43201'; expected a "
                 "whole number from 900 to 43200", id="duration-high"),
    pytest.param({"role-duration-seconds": "1h"}, "input 'role-duration-seconds': got '1h'; expected a whole "
                 "number from 900 to 43200", id="duration-unit"),
    pytest.param({"role-duration-seconds": "\u0663\u0666\u0660\u0660"}, "input 'role-duration-seconds': got "
                 "'\u0663\u0666\u0660\u0660'; expected a whole number from 900 to 43200", id="duration-arabic-digits"),
    pytest.param({"allowed-account-ids": "123456789012, 12345"}, "input 'allowed-account-ids': got '12345'; "
                 "expected a 12-digit AWS account id", id="account-short"),
    pytest.param({"allowed-account-ids": "a,b,c,d"}, "input 'allowed-account-ids': got 'a', 'b', 'c' and 1 "
                 "more; expected a 12-digit AWS account id", id="accounts-many-bad"),
    pytest.param({"registry-id": "12345678901a"}, "input 'registry-id': got '12345678901a'; expected a 12-digit "
                 "AWS account id", id="registry-id-letter"),
    pytest.param({"create-repository": "yes"}, "input 'create-repository': got 'yes'; expected true or false "
                 "(also True, TRUE, False, FALSE)", id="create-yes"),
    pytest.param({"scan-on-push": "1"}, "input 'scan-on-push': got '1'; expected true or false (also True, "
                 "TRUE, False, FALSE)", id="scan-on-push-1"),
    pytest.param({"image-tag-mutability": "FROZEN"}, "input 'image-tag-mutability': got 'FROZEN'; expected one "
                 "of MUTABLE, IMMUTABLE, MUTABLE_WITH_EXCLUSION, IMMUTABLE_WITH_EXCLUSION", id="mutability"),
    pytest.param({"image-tag-mutability": "IMMUTABLE_WITH_EXCLUSION"},
                 "input 'image-tag-mutability': got 'IMMUTABLE_WITH_EXCLUSION'; it needs "
                 "image-tag-mutability-exclusions, the tags it excludes: set image-tag-mutability-exclusions "
                 "(such as `latest`), or set image-tag-mutability to IMMUTABLE", id="exclusion-mode-without-filters"),
    pytest.param({"image-tag-mutability-exclusions": "latest", "image-tag-mutability": "IMMUTABLE"},
                 "input 'image-tag-mutability-exclusions': got 'latest'; it is only used with image-tag-mutability "
                 "MUTABLE_WITH_EXCLUSION or IMMUTABLE_WITH_EXCLUSION, but image-tag-mutability is IMMUTABLE: set "
                 "one of those, or remove image-tag-mutability-exclusions", id="filters-without-exclusion-mode"),
    pytest.param({"image-tag-mutability-exclusions": "latest"},
                 "input 'image-tag-mutability-exclusions': got 'latest'; it is only used with image-tag-mutability "
                 "MUTABLE_WITH_EXCLUSION or IMMUTABLE_WITH_EXCLUSION, but image-tag-mutability is not set: set "
                 "one of those, or remove image-tag-mutability-exclusions", id="filters-without-mode"),
    pytest.param({"image-tag-mutability-exclusions": "v?, re/*", "image-tag-mutability": "MUTABLE_WITH_EXCLUSION"},
                 "input 'image-tag-mutability-exclusions': got 'v?', 're/*'; expected wildcard tag filters of "
                 "letters, digits and ._-* (`*` matches any characters), at most 128 characters",
                 id="filter-characters"),
    pytest.param({"image-tag-mutability-exclusions": "a,b,c,d,e,f", "image-tag-mutability": "MUTABLE_WITH_EXCLUSION"},
                 "input 'image-tag-mutability-exclusions': got 6 filters; expected at most 5 (the ECR limit)",
                 id="too-many-filters"),
    pytest.param({"encryption-type": "SSE"},
                 "input 'encryption-type': got 'SSE'; expected one of AES256, KMS, KMS_DSSE", id="encryption"),
    pytest.param({"kms-key": "alias/ecr", "encryption-type": "AES256"},
                 "input 'kms-key': got 'alias/ecr'; it is only used with encryption-type KMS or KMS_DSSE, but "
                 "encryption-type is AES256: set encryption-type to KMS or remove "
                 "kms-key", id="kms-key-without-kms"),
    pytest.param({"scan-unavailable": "ignore"},
                 "input 'scan-unavailable': got 'ignore'; expected one of fail, warn", id="scan-unavailable"),
    pytest.param({"lifecycle-policy": '{"rules": []}'}, "input 'lifecycle-policy': got inline JSON (13 "
                 "characters); rules: expected a non-empty list", id="lifecycle-inline"),
    pytest.param({"lifecycle-policy": "policies/none.json"}, "input 'lifecycle-policy': got "
                 "'policies/none.json'; expected an existing file (nothing readable at "
                 "{workspace}/policies/none.json)", id="lifecycle-file-missing"),
    pytest.param({"lifecycle-policy": "ignore.yml"}, "input 'lifecycle-policy': got the file 'ignore.yml'; "
                 "not valid JSON: Expecting value at line 1 column 1", id="lifecycle-file-not-json"),
    pytest.param({"repository-policy": '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow"}]}'},
                 "input 'repository-policy': got inline JSON (61 characters); Statement[0]: needs exactly one "
                 "of Principal, NotPrincipal", id="repository-policy-inline"),
    pytest.param({"repository-tags": "team"}, "input 'repository-tags': line 1 is not key=value; expected "
                 "key=value lines with a non-empty key, keys up to 128 and values up to 256 characters",
                 id="repository-tag-no-equals"),
    pytest.param({"repository-tags": "a=1\n=2"}, "input 'repository-tags': line 2 is not key=value; expected "
                 "key=value lines with a non-empty key, keys up to 128 and values up to 256 characters",
                 id="repository-tag-empty-key"),
    pytest.param({"repository-tags": "k" * 129 + "=v"}, "input 'repository-tags': line 1 has a key longer than "
                 "128 characters; expected key=value lines with a non-empty key, keys up to 128 and values up "
                 "to 256 characters", id="repository-tag-key-long"),
    pytest.param({"repository-tags": "k=" + "v" * 257}, "input 'repository-tags': line 1 has a value longer "
                 "than 256 characters; expected key=value lines with a non-empty key, keys up to 128 and values "
                 "up to 256 characters", id="repository-tag-value-long"),
    pytest.param({"repository-tags": "\n".join(f"k{number}=v" for number in range(51))}, "input "
                 "'repository-tags': 51 pairs, more than 50; expected key=value lines with a non-empty key, keys "
                 "up to 128 and values up to 256 characters", id="repository-tags-too-many"),
    pytest.param({"build-args": "A=1\nghp_s3cr3tt0k3n"}, "input 'build-args': line 2 is not key=value; "
                 "expected key=value lines with a non-empty key", id="build-arg-not-echoed"),
    pytest.param({"build-args": "A=1\nA=2"}, "input 'build-args': line 2 repeats the key 'A'; expected "
                 "key=value lines with a non-empty key", id="build-arg-repeated"),
    pytest.param({"labels": "a=1\nb\nc"}, "input 'labels': line 2 is not key=value; line 3 is not key=value; "
                 "expected key=value lines with a non-empty key", id="labels-two-bad-lines"),
    pytest.param({"context": "missing"}, "input 'context': got 'missing'; expected an existing directory (none "
                 "at {workspace}/missing)", id="context-missing"),
    pytest.param({"context": "Dockerfile"}, "input 'context': got 'Dockerfile'; expected an existing directory "
                 "(none at {workspace}/Dockerfile)", id="context-is-file"),
    pytest.param({"context": "empty"}, "input 'context': got 'empty'; expected a directory with the files to "
                 "build ({workspace}/empty is empty)", id="context-empty"),
    pytest.param({"file": "app/Dockerfile.prod"}, "input 'file': got 'app/Dockerfile.prod'; expected an "
                 "existing file (nothing readable at {workspace}/app/Dockerfile.prod)", id="file-missing"),
    pytest.param({"file": "", "context": "src"}, "input 'file': not given, and the default src/Dockerfile does "
                 "not exist: add a Dockerfile there or set file", id="default-file-missing"),
    pytest.param({"pull": "on"}, "input 'pull': got 'on'; expected true or false (also True, TRUE, False, "
                 "FALSE)", id="pull-on"),
    pytest.param({"no-cache": "tRUE"}, "input 'no-cache': got 'tRUE'; expected true or false (also True, TRUE, "
                 "False, FALSE)", id="no-cache-mixed-case"),
    pytest.param({"tags": "v1,-bad"}, "input 'tags': got '-bad'; expected image tags of letters, digits and "
                 "_.- (not starting with . or -), at most 128 characters", id="tag-leading-dash"),
    pytest.param({"tags": "v1 beta"}, "input 'tags': got 'v1 beta'; expected image tags of letters, digits "
                 "and _.- (not starting with . or -), at most 128 characters", id="tag-space"),
    pytest.param({"tags": " , \n,"}, "input 'tags': got ', \\n,'; expected at least one tag",
                 id="tags-only-separators"),
    pytest.param({"tags": "t" * 129}, f"input 'tags': got '{'t' * 57}...'; expected image tags of letters, "
                 "digits and _.- (not starting with . or -), at most 128 characters", id="tag-long"),
    pytest.param({"tags": ",".join(f"t{number}" for number in range(1001))}, "input 'tags': got 1001 tags; "
                 "expected at most 1000 (the ECR limit per image)", id="too-many-tags"),
    pytest.param({"if-tag-exists": "replace"}, "input 'if-tag-exists': got 'replace'; expected one of fail, "
                 "skip-same-digest, overwrite", id="if-tag-exists"),
    pytest.param({"push": "no"}, "input 'push': got 'no'; expected true or false (also True, TRUE, False, "
                 "FALSE)", id="push-no"),
    pytest.param({"retries": "0"}, "input 'retries': got '0'; expected a whole number from 1 to 20",
                 id="retries-zero"),
    pytest.param({"retries": "21"}, "input 'retries': got '21'; expected a whole number from 1 to 20",
                 id="retries-high"),
    pytest.param({"retry-max-seconds": "3601"}, "input 'retry-max-seconds': got '3601'; expected a whole "
                 "number from 1 to 3600", id="retry-budget-high"),
    pytest.param({"dry-run": "maybe"}, "input 'dry-run': got 'maybe'; expected true or false (also True, TRUE, "
                 "False, FALSE)", id="dry-run-maybe"),
    pytest.param({"scan": "always"}, "input 'scan': got 'always'; expected one of on-push, manual, skip",
                 id="scan-mode"),
    pytest.param({"scan-timeout": "0"}, "input 'scan-timeout': got '0'; expected a whole number from 1 to "
                 "86400", id="scan-timeout-zero"),
    pytest.param({"scan-poll-interval": "2.5"}, "input 'scan-poll-interval': got '2.5'; expected a whole "
                 "number from 1 to 300", id="poll-interval-fraction"),
    pytest.param({"fail-on": "severe"}, "input 'fail-on': got 'severe'; expected one of none, informational, "
                 "low, medium, high, critical", id="fail-on-severe"),
    pytest.param({"fail-on-fixable-only": "fixable"}, "input 'fail-on-fixable-only': got 'fixable'; expected "
                 "true or false (also True, TRUE, False, FALSE)", id="fixable-only"),
    pytest.param({"ignore": "CVE-2024-12"}, "input 'ignore': got 'CVE-2024-12'; expected vulnerability ids "
                 "such as CVE-2024-1234, GHSA-xxxx-xxxx-xxxx or a vendor's id", id="ignore-cve-short"),
    pytest.param({"ignore": "cve-2024-1234"}, "input 'ignore': got 'cve-2024-1234'; expected vulnerability ids "
                 "such as CVE-2024-1234, GHSA-xxxx-xxxx-xxxx or a vendor's id", id="ignore-cve-lower-case"),
    pytest.param({"ignore": "GHSA-1234"}, "input 'ignore': got 'GHSA-1234'; expected vulnerability ids such as "
                 "CVE-2024-1234, GHSA-xxxx-xxxx-xxxx or a vendor's id", id="ignore-ghsa-short"),
    pytest.param({"ignore": "CVE-2024-1234 (not reachable)"}, "input 'ignore': got 'CVE-2024-1234 (not "
                 "reachable)'; expected vulnerability ids such as CVE-2024-1234, GHSA-xxxx-xxxx-xxxx or a "
                 "vendor's id", id="ignore-with-comment"),
    pytest.param({"ignore-file": "ignores.yml"}, "input 'ignore-file': got 'ignores.yml'; expected an existing "
                 "file (nothing readable at {workspace}/ignores.yml)", id="ignore-file-missing"),
    pytest.param({"baseline-tag": ".stable"}, "input 'baseline-tag': got '.stable'; expected image tags of "
                 "letters, digits and _.- (not starting with . or -), at most 128 characters",
                 id="baseline-tag-dot"),
    pytest.param({"sarif-file": "reports"}, "input 'sarif-file': got 'reports'; expected a file path "
                 "({workspace}/reports is a directory)", id="sarif-file-directory"),
    pytest.param({"sarif-file": "Dockerfile/scan.sarif"}, "input 'sarif-file': got 'Dockerfile/scan.sarif'; "
                 "expected a path whose folders can be made ({workspace}/Dockerfile is a file)",
                 id="sarif-file-under-a-file"),
    pytest.param({"build-timeout": "0"}, "input 'build-timeout': got '0'; expected a whole number from 1 to 86400",
                 id="build-timeout-zero"),
    pytest.param({"annotations": "51"}, "input 'annotations': got '51'; expected a whole number from 0 to 50",
                 id="annotations-high"),
    pytest.param({"summary": "False!"}, "input 'summary': got 'False!'; expected true or false (also True, "
                 "TRUE, False, FALSE)", id="summary"),
]


@pytest.mark.parametrize(("inputs", "problem"), BAD_INPUTS)
def test_a_bad_input_is_reported_by_name_with_the_accepted_form(
    workspace: Path, inputs: dict[str, str], problem: str
) -> None:
    expected = problem.replace("{workspace}", str(workspace))
    assert problems_of(runner_environment(workspace, inputs)) == [expected]
    assert expected.startswith(f"input '{next(iter(inputs))}': ")


def test_there_are_forty_bad_input_cases_or_more() -> None:
    assert len(BAD_INPUTS) >= 40


def test_every_bad_input_is_reported_together_in_table_order(workspace: Path) -> None:
    problems = problems_of(runner_environment(workspace, {
        "kms-key": "alias/ecr", "encryption-type": "AES256", "fail-on": "severe", "aws-region": "mars",
        "retries": "many", "tags": "a b",
    }))
    assert [problem.split(":")[0] for problem in problems] == [
        "input 'aws-region'", "input 'tags'", "input 'retries'", "input 'fail-on'", "input 'kms-key'",
    ]


def test_missing_sha_without_tags_is_reported(workspace: Path) -> None:
    environment = runner_environment(workspace) | {"GITHUB_SHA": ""}
    assert problems_of(environment) == [
        "input 'tags': missing, and there is no commit SHA (GITHUB_SHA) to default to: set tags"
    ]


def test_required_inputs_missing_entirely_are_reported(workspace: Path) -> None:
    assert problems_of({"GITHUB_WORKSPACE": str(workspace), "GITHUB_SHA": SHA}) == [
        "input 'aws-region': missing; it is required: set it in the step's `with:`",
        "input 'repository': missing; it is required: set it in the step's `with:`",
    ]


@pytest.mark.parametrize("spelling", ["true", "True", "TRUE", "false", "False", "FALSE", " true\n"])
def test_booleans_accept_the_yaml_core_spellings(workspace: Path, spelling: str) -> None:
    inputs = read(runner_environment(workspace, {"dry-run": spelling}))
    assert inputs.dry_run is (spelling.strip().lower() == "true")


@pytest.mark.parametrize(
    ("given", "expected"),
    [("HIGH", FailOn.HIGH), ("Medium", FailOn.MEDIUM), ("none", FailOn.NONE)],
    ids=["upper", "capitalised", "none"],
)
def test_choices_forgive_case(workspace: Path, given: str, expected: FailOn) -> None:
    assert read(runner_environment(workspace, {"fail-on": given})).fail_on is expected


@pytest.mark.parametrize(
    ("fail_on", "severity"),
    [(FailOn.NONE, None), (FailOn.INFORMATIONAL, Severity.INFORMATIONAL), (FailOn.CRITICAL, Severity.CRITICAL)],
    ids=["none", "informational", "critical"],
)
def test_fail_on_names_a_severity(fail_on: FailOn, severity: Severity | None) -> None:
    assert fail_on.severity == severity


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("a,b", ("a", "b")),
        ("a\nb\n", ("a", "b")),
        (" a , ,b,\n\n c ", ("a", "b", "c")),
        ("b,a,b,a", ("b", "a")),
    ],
    ids=["commas", "lines", "blanks-dropped", "duplicates-dropped-keeping-order"],
)
def test_lists_take_commas_and_lines(workspace: Path, given: str, expected: tuple[str, ...]) -> None:
    assert read(runner_environment(workspace, {"tags": given})).tags == expected


@pytest.mark.parametrize(
    ("environment", "labels"),
    [
        pytest.param({}, {
            "org.opencontainers.image.source": "https://github.com/octo/shop",
            "org.opencontainers.image.revision": SHA,
            "org.opencontainers.image.created": "2025-01-02T03:04:05Z",
            "org.opencontainers.image.url": "https://github.com/octo/shop",
        }, id="from-the-run"),
        pytest.param({"GITHUB_SERVER_URL": "https://ghe.example/", "INPUT_LABELS": "a=1\nb = two words"}, {
            "org.opencontainers.image.source": "https://ghe.example/octo/shop",
            "org.opencontainers.image.revision": SHA,
            "org.opencontainers.image.created": "2025-01-02T03:04:05Z",
            "org.opencontainers.image.url": "https://ghe.example/octo/shop",
            "a": "1",
            "b": "two words",
        }, id="enterprise-server-and-user-labels"),
        pytest.param({"INPUT_LABELS": "org.opencontainers.image.source=https://mirror.example/shop"}, {
            "org.opencontainers.image.source": "https://mirror.example/shop",
            "org.opencontainers.image.revision": SHA,
            "org.opencontainers.image.created": "2025-01-02T03:04:05Z",
            "org.opencontainers.image.url": "https://github.com/octo/shop",
        }, id="user-label-wins"),
        pytest.param({"GITHUB_REPOSITORY": "", "INPUT_TAGS": "dev"} | {"GITHUB_SHA": ""}, {
            "org.opencontainers.image.created": "2025-01-02T03:04:05Z",
        }, id="outside-a-run"),
    ],
)
def test_oci_labels_come_from_the_run(
    workspace: Path, environment: dict[str, str], labels: dict[str, str]
) -> None:
    assert read(runner_environment(workspace) | environment).labels == tuple(labels.items())


def test_created_label_is_utc_whatever_the_clock_zone(workspace: Path) -> None:
    local = NOW.astimezone(timezone(timedelta(hours=-5)))
    environment = runner_environment(workspace)
    labels = dict(read_inputs(environment, read_github_context(environment), now=lambda: local).labels)
    assert labels["org.opencontainers.image.created"] == "2025-01-02T03:04:05Z"


@pytest.mark.parametrize(
    ("run_id", "run_attempt", "expected"),
    [
        ("1234567890", "2", "ecr-action-1234567890-2"),
        ("", "", "ecr-action"),
        ("7", "", "ecr-action-7"),
        ("12 34/é", "1", "ecr-action-12-34---1"),
        ("9" * 80, "1", "ecr-action-" + "9" * 53),
    ],
    ids=["run", "no-run", "no-attempt", "odd-characters", "long"],
)
def test_session_name_is_derived_from_the_run(
    workspace: Path, run_id: str, run_attempt: str, expected: str
) -> None:
    environment = runner_environment(workspace) | {"GITHUB_RUN_ID": run_id, "GITHUB_RUN_ATTEMPT": run_attempt}
    assert read(environment).role_session_name == expected


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("context", ".."),
        ("context", "app/../../elsewhere"),
        ("file", "../Dockerfile"),
        ("lifecycle-policy", "../lifecycle.json"),
        ("repository-policy", "/etc/passwd"),
        ("ignore-file", "../ignore.yml"),
        ("sarif-file", "../out.sarif"),
    ],
)
def test_paths_outside_the_workspace_are_refused(workspace: Path, name: str, value: str) -> None:
    outside = (workspace / value).resolve()
    assert problems_of(runner_environment(workspace, {name: value})) == [
        f"input '{name}': got '{value}'; expected a path inside the workspace {workspace} (it resolves to "
        f"{outside})"
    ]


@pytest.mark.parametrize(
    ("name", "link", "target_is_directory", "value"),
    [
        ("context", "linked", True, "linked"),
        ("file", "Dockerfile.linked", False, "Dockerfile.linked"),
        ("lifecycle-policy", "policy.json", False, "policy.json"),
        ("ignore-file", "ignore-linked.yml", False, "ignore-linked.yml"),
        ("sarif-file", "out", True, "out/ecr.sarif"),
    ],
)
def test_symlinks_out_of_the_workspace_are_refused(
    workspace: Path, name: str, link: str, target_is_directory: bool, value: str
) -> None:
    outside = workspace.parent / "outside"
    outside.mkdir()
    (outside / "Dockerfile").write_text("FROM scratch\n")
    target = outside if target_is_directory else outside / "Dockerfile"
    (workspace / link).symlink_to(target)
    resolved = (workspace / value).resolve()
    assert problems_of(runner_environment(workspace, {name: value})) == [
        f"input '{name}': got '{value}'; expected a path inside the workspace {workspace} (it resolves to "
        f"{resolved})"
    ]


def test_symlinks_inside_the_workspace_are_followed(workspace: Path) -> None:
    (workspace / "current").symlink_to(workspace / "app")
    inputs = read(runner_environment(workspace, {"context": "current"}))
    assert (inputs.context, inputs.file) == (workspace / "app", workspace / "app" / "Dockerfile")


def test_absolute_paths_inside_the_workspace_are_accepted(workspace: Path) -> None:
    inputs = read(runner_environment(workspace, {"lifecycle-policy": str(workspace / "lifecycle.json")}))
    assert inputs.lifecycle_policy == LIFECYCLE_CANONICAL


def test_workspace_defaults_to_the_current_directory(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(workspace)
    assert read_github_context({}).workspace == workspace


@pytest.mark.parametrize(
    ("event", "is_fork"),
    [
        ({"pull_request": {"head": {"repo": {"full_name": "fork/shop"}}, "base": {"repo": {"full_name": "octo/shop"}}}},
         True),
        ({"pull_request": {"head": {"repo": {"full_name": "octo/shop"}}, "base": {"repo": {"full_name": "octo/shop"}}}},
         False),
        ({"pull_request": {"head": {"repo": None}, "base": {"repo": {"full_name": "octo/shop"}}}}, True),
        ({"pull_request": {"head": {"repo": {"full_name": "fork/shop"}}}}, True),
        ({"ref": "refs/heads/main"}, False),
        ([], False),
        ("not json", False),
    ],
    ids=["fork", "same-repository", "deleted-fork", "no-base-uses-repository", "push", "odd-payload", "unreadable"],
)
def test_fork_pull_requests_are_recognised(tmp_path: Path, event: object, is_fork: bool) -> None:
    path = tmp_path / "event.json"
    path.write_text(event if isinstance(event, str) else json.dumps(event))
    context = read_github_context({"GITHUB_EVENT_PATH": str(path), "GITHUB_REPOSITORY": "octo/shop"})
    assert context.is_fork_pull_request is is_fork


def test_github_context_outside_a_run() -> None:
    context = read_github_context({"GITHUB_WORKSPACE": "/w", "GITHUB_EVENT_PATH": "/no/such/event.json"})
    assert (context.server_url, context.output_path, context.summary_path, context.debug) == (
        "https://github.com", None, None, False,
    )
    assert (context.oidc_request_url, context.oidc_request_token, context.is_fork_pull_request) == (
        None, None, False,
    )


def test_secrets_stay_out_of_repr(workspace: Path) -> None:
    environment = runner_environment(workspace, {"build-args": "TOKEN=ghp_build_secret"}) | {
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "oidc-request-secret",
    }
    text = repr(read(environment))
    assert "ghp_build_secret" not in text
    assert "oidc-request-secret" not in text


@pytest.mark.parametrize(
    ("argv", "environment"),
    [
        (["--repository", "app", "--tags", "a,b", "--dry-run"],
         {"INPUT_REPOSITORY": "app", "INPUT_TAGS": "a,b", "INPUT_DRY-RUN": "true"}),
        (["--aws-region=eu-west-1", "--push", "false"], {"INPUT_AWS-REGION": "eu-west-1", "INPUT_PUSH": "false"}),
        (["--fail-on", "high", "--fail-on", "low"], {"INPUT_FAIL-ON": "low"}),
        (["--build-args", "A=1\nB=2"], {"INPUT_BUILD-ARGS": "A=1\nB=2"}),
        ([], {}),
    ],
    ids=["flags-and-bare-boolean", "equals-and-boolean-value", "last-wins", "multi-line-value", "none"],
)
def test_cli_flags_become_input_variables(argv: list[str], environment: dict[str, str]) -> None:
    assert parse_cli(argv) == environment


@pytest.mark.parametrize(
    ("argv", "problems"),
    [
        (["--repo", "app"], ["unknown flag '--repo': see --help for the inputs", "unexpected argument 'app': "
                             "every input is given as --<input-name> VALUE"]),
        (["--frobnicate"], ["unknown flag '--frobnicate': see --help for the inputs"]),
        (["--repository"], ["command line: argument --repository: expected one argument"]),
    ],
    ids=["abbreviation-is-unknown", "unknown-flag", "missing-value"],
)
def test_cli_mistakes_are_input_errors(argv: list[str], problems: list[str]) -> None:
    with pytest.raises(InputError) as raised:
        parse_cli(argv)
    assert raised.value.problems == problems


def test_cli_help_lists_every_input(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        parse_cli(["--help"])
    assert exited.value.code == 0
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines to the terminal's width
    for spec in INPUT_SPECS:
        assert f"--{spec.name}" in text
    assert "lowest severity that fails the gate (one of none, informational, low, medium, high, critical;" in text


def test_cli_flags_and_runner_variables_go_through_one_parser(workspace: Path) -> None:
    environment = {"GITHUB_WORKSPACE": str(workspace), "GITHUB_SHA": SHA, "INPUT_FAIL-ON": "low"}
    flags = parse_cli(["--aws-region", "us-west-2", "--repository", "team/app", "--dry-run", "--fail-on", "high"])
    inputs = read(environment | flags)
    assert (inputs.aws_region, inputs.repository, inputs.dry_run, inputs.fail_on) == (
        "us-west-2", "team/app", True, FailOn.HIGH,
    )
    with pytest.raises(InputError) as raised:
        read(environment | parse_cli(["--repository", "team/app", "--aws-region", "moon-1", "--push", "nope"]))
    assert [problem.split(";")[0] for problem in raised.value.problems] == [
        "input 'aws-region': got 'moon-1'", "input 'push': got 'nope'",
    ]
