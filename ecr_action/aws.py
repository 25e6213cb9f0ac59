"""The AWS adapter: sessions and clients, and AWS errors turned into messages a user can act on.

Retries of API calls are botocore's own (standard mode: throttling, 5xx and connection errors, with
exponential backoff and jitter), bounded by the run's `RetryPolicy`; a second retry layer on top would
multiply them. ECR calls go through `ecr_call`.
Endpoints come from botocore's standard configuration (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_ECR`, ...).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import botocore.session
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from ecr_action.errors import AccessDeniedError, ActionError, AwsCallError, CredentialsError
from ecr_action.retries import RetryPolicy, retry_line

ACCESS_DENIED_CODES = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnrecognizedClientException"}
EXPIRED_CODES = {"ExpiredToken", "ExpiredTokenException", "RequestExpired"}
USER_AGENT = "ecr-action/0.1"


@dataclass(frozen=True, slots=True)
class AwsCredentials:
    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)
    expiration: datetime | None = None


# One loader of botocore's data files (endpoints, service models) for every session of the run: each
# session would otherwise parse the same JSON again (~0.1 s a client).
_shared_loader: Any = None


def session(credentials: AwsCredentials | None, region: str) -> botocore.session.Session:
    """A session with these credentials, or with the default chain (environment, profile) when None.

    botocore's own session, not boto3's: the same clients, without importing boto3 and s3transfer at
    start-up (~0.1 s).
    """
    global _shared_loader
    made = botocore.session.Session()
    if _shared_loader is None:
        _shared_loader = made.get_component("data_loader")
    else:
        made.register_component("data_loader", _shared_loader)
    made.set_config_variable("region", region)
    if credentials is not None:
        made.set_credentials(credentials.access_key_id, credentials.secret_access_key, credentials.session_token)
    return made


def client(
    aws_session: botocore.session.Session,
    service: str,
    *,
    retry: RetryPolicy,
    log: Callable[[str], None] | None = None,
    unsigned: bool = False,
) -> Any:
    """A client whose calls botocore retries as `retry` says; each retry is passed to `log`.
    `unsigned`: requests carry no signature (AssumeRoleWithWebIdentity, whose token is the proof)."""
    config = Config(
        retries=retry.botocore(),
        connect_timeout=10,
        read_timeout=60,
        user_agent_extra=USER_AGENT,
        **({"signature_version": UNSIGNED} if unsigned else {}),
    )
    made = aws_session.create_client(service, config=config)
    if log is not None:

        def log_retry(request: Any, operation_name: str, **_: Any) -> None:
            # botocore makes a new request for each attempt and counts them in the request's context.
            attempt = request.context.get("retries", {}).get("attempt", 1)
            if attempt > 1:
                log(retry_line(f"{service}:{operation_name}", attempt - 1, retry.attempts))

        made.meta.events.register("request-created", log_retry)
    return made


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def error_for(error: ClientError, service: str, resource: str = "") -> ActionError:
    """One message for one failed call: what failed, the permission or setting involved, the fix."""
    code = error_code(error)
    said = error.response.get("Error", {}).get("Message", "") or code
    operation = error.operation_name
    where = f" on {resource}" if resource else ""
    if code in ACCESS_DENIED_CODES:
        return AccessDeniedError(
            f"{operation}{where} was denied: allow the IAM action '{service}:{operation}' for this role "
            f"(see the README's 'IAM permissions'). AWS said: {said}"
        )
    if code in EXPIRED_CODES:
        return CredentialsError(
            f"{operation}{where} failed: the AWS credentials have expired; raise 'role-duration-seconds' "
            f"or shorten the job. AWS said: {said}"
        )
    attempts = int(error.response.get("ResponseMetadata", {}).get("RetryAttempts", 0)) + 1
    if attempts > 1:
        # botocore retried it (throttling, 5xx): say so, and what to change if it keeps happening.
        return AwsCallError(
            f"{operation}{where} failed ({code}) after {attempts} attempts: {said}. AWS kept failing; re-run "
            "the job, or raise 'retries' if this service is often busy."
        )
    return AwsCallError(f"{operation}{where} failed ({code}): {said}")


@contextmanager
def translated(service: str, resource: str = "") -> Iterator[None]:
    """Turn the AWS errors raised inside into the action's errors."""
    try:
        yield
    except ClientError as error:
        raise error_for(error, service, resource) from error
    except NoCredentialsError as error:
        raise CredentialsError(
            "No AWS credentials: set 'role-to-assume' (with 'permissions: id-token: write'), or run "
            "aws-actions/configure-aws-credentials before this step."
        ) from error
    except BotoCoreError as error:
        raise AwsCallError(f"Could not reach AWS ({service}): {error}") from error


def ecr_call(
    operation: Callable[..., Any],
    repository: str | None,
    registry_id: str | None,
    *,
    resource: str = "",
    none_on: Collection[str] = (),
    errors: Mapping[str, ActionError] | None = None,
    **arguments: Any,
) -> Any:
    """`operation(**arguments)` on the repository `repository` (`repositoryName`) in the registry
    `registry_id` (`registryId`, left out for the caller's own), each sent only when given.

    AWS errors become the action's, naming `resource` (default: the repository). An error code in
    `none_on` is what "not found" means for this call: the answer is None. A code in `errors` raises that
    error instead (a failure with its own message, e.g. a tag that is IMMUTABLE).
    """
    if repository is not None:
        arguments["repositoryName"] = repository
    if registry_id:
        arguments["registryId"] = registry_id
    with translated("ecr", resource or repository or ""):
        try:
            return operation(**arguments)
        except ClientError as error:
            code = error_code(error)
            if code in none_on:
                return None
            if errors and code in errors:
                raise errors[code] from None
            raise
