"""The inputs turned into the plain values each stage takes: what to ask of it, nothing else.

Pure, so that `ecr_action.main` only sequences the stages.
"""

from __future__ import annotations

from collections.abc import Sequence

from ecr_action import build, credentials, push, repository, scan, signing
from ecr_action.inputs import Inputs
from ecr_action.inputs.choices import CacheTo, ScanMode
from ecr_action.retries import RetryPolicy
from ecr_action.secrets import RegistryCredentials


def retry_policy(inputs: Inputs) -> RetryPolicy:
    return RetryPolicy.from_inputs(inputs.retries, inputs.retry_max_seconds)


def credential_request(inputs: Inputs) -> credentials.CredentialRequest:
    return credentials.CredentialRequest(
        region=inputs.aws_region,
        role_to_assume=inputs.role_to_assume,
        audience=inputs.audience,
        session_name=inputs.role_session_name,
        duration_seconds=inputs.role_duration_seconds,
        role_chaining=inputs.role_chaining,
        chain_role_to_assume=inputs.chain_role_to_assume,
        allowed_account_ids=inputs.allowed_account_ids,
        oidc_request_url=inputs.github.oidc_request_url,
        oidc_request_token=inputs.github.oidc_request_token,
        is_fork_pull_request=inputs.github.is_fork_pull_request,
    )


def repository_spec(inputs: Inputs) -> repository.RepositorySpec:
    return repository.RepositorySpec(
        name=inputs.repository,
        registry_id=inputs.registry_id,
        create=inputs.create_repository,
        # Scanning on push is what `scan: on-push` waits for, so that mode turns it on.
        scan_on_push=inputs.scan_on_push or inputs.scan is ScanMode.ON_PUSH,
        tag_mutability=inputs.image_tag_mutability,
        tag_mutability_exclusions=inputs.image_tag_mutability_exclusions,
        encryption_type=inputs.encryption_type,
        kms_key=inputs.kms_key,
        lifecycle_policy=inputs.lifecycle_policy,
        repository_policy=inputs.repository_policy,
        tags=inputs.repository_tags,
    )


def push_spec(
    inputs: Inputs, repository_uri: str, registry_id: str | None, ensured: repository.RepositoryResult
) -> push.PushSpec:
    return push.PushSpec(
        repository=inputs.repository,
        repository_uri=repository_uri,
        registry_id=registry_id,
        tags=inputs.tags,
        if_tag_exists=inputs.if_tag_exists,
        immutable=ensured.tag_mutability.immutable,
        retry=retry_policy(inputs),
    )


def signing_request(
    inputs: Inputs, registry_id: str, account_id: str, digest: str, seconds_scanning: float
) -> signing.SigningRequest:
    return signing.SigningRequest(
        repository=inputs.repository,
        registry_id=registry_id,
        own_registry=registry_id == account_id,
        digest=digest,
        timeout_seconds=max(0.0, inputs.scan_timeout - seconds_scanning),
        poll_interval_seconds=inputs.scan_poll_interval,
    )


def scan_request(inputs: Inputs, registry_id: str | None, digest: str, media_type: str = "") -> scan.ScanRequest:
    return scan.ScanRequest(
        repository=inputs.repository,
        registry_id=registry_id,
        digest=digest,
        mode=inputs.scan,
        timeout_seconds=inputs.scan_timeout,
        poll_interval_seconds=inputs.scan_poll_interval,
        media_type=media_type or None,
        unavailable=inputs.scan_unavailable,
    )


def build_spec(
    inputs: Inputs,
    registries: Sequence[RegistryCredentials],
    local_name: str | None,
    cache_from: tuple[str, ...],
) -> build.BuildSpec:
    return build.BuildSpec(
        context=inputs.context,
        dockerfile=inputs.file,
        build_args=inputs.build_args,
        target=inputs.target,
        labels=inputs.labels,
        pull=inputs.pull,
        no_cache=inputs.no_cache,
        registries=tuple(registries),
        timeout_seconds=inputs.build_timeout,
        local_name=local_name,
        builder=inputs.builder,
        platforms=inputs.platforms,
        network=inputs.network,
        secrets=inputs.secrets,
        cache_from=cache_from,
        inline_cache=inputs.cache_to is CacheTo.INLINE,
    )
