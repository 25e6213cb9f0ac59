"""AWS credentials for the run: GitHub OIDC → sts:AssumeRoleWithWebIdentity, the credentials already in
the environment, or either of those chained into a second role (cross-account).

Every secret is masked the moment it exists, before anything else can run: if a later step fails and
prints, the value is already hidden.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from ecr_action import aws, retries
from ecr_action.errors import CredentialsError, OidcNotPermittedError, OidcTokenError, TrustRefusedError

PERMISSIONS_YAML = "permissions:\n  id-token: write\n  contents: read"


@dataclass(frozen=True, slots=True)
class CredentialRequest:
    region: str
    role_to_assume: str | None
    audience: str
    session_name: str
    duration_seconds: int
    role_chaining: bool
    chain_role_to_assume: str | None
    allowed_account_ids: tuple[str, ...]
    oidc_request_url: str | None
    oidc_request_token: str | None = field(repr=False)
    is_fork_pull_request: bool


@dataclass(frozen=True, slots=True)
class ResolvedCredentials:
    credentials: aws.AwsCredentials | None  # None: botocore's default chain (environment, profile)
    account_id: str
    identity_arn: str


class _TransientTokenError(Exception):
    pass


def resolve_credentials(
    request: CredentialRequest, *, mask: Callable[[str], None], log: Callable[[str], None] | None = None
) -> ResolvedCredentials:
    credentials: aws.AwsCredentials | None = None
    identity_arn = ""
    if request.role_to_assume and not request.role_chaining:
        # The STS client (CPU: botocore's data files) is made while the token request waits on GitHub.
        with ThreadPoolExecutor(max_workers=1) as pool:
            sts = pool.submit(web_identity_client, request.region)
            token = request_oidc_token(request, log=log)
            mask(token)
            credentials, identity_arn = assume_with_web_identity(
                request, request.role_to_assume, token, mask, sts=sts.result()
            )
    elif request.role_to_assume:
        credentials, identity_arn = assume_role(request, None, request.role_to_assume, mask)
    if request.chain_role_to_assume:
        credentials, identity_arn = assume_role(request, credentials, request.chain_role_to_assume, mask)
    if not identity_arn:
        sts = aws.client(aws.session(credentials, request.region), "sts", retry=retries.CREDENTIALS)
        with aws.translated("sts"):
            identity_arn = sts.get_caller_identity()["Arn"]
    account_id = identity_arn.split(":")[4]
    if request.allowed_account_ids and account_id not in request.allowed_account_ids:
        raise CredentialsError(
            f"The credentials are for account {account_id}, which is not in 'allowed-account-ids' "
            f"({', '.join(request.allowed_account_ids)}): check 'role-to-assume' and 'chain-role-to-assume'."
        )
    return ResolvedCredentials(credentials, account_id, identity_arn)


def request_oidc_token(request: CredentialRequest, *, log: Callable[[str], None] | None = None) -> str:
    if not request.oidc_request_url or not request.oidc_request_token:
        if request.is_fork_pull_request:
            raise OidcNotPermittedError(
                "GitHub gives no OIDC token to workflows run for pull requests from forks, so 'role-to-assume' "
                "cannot be used here. Build without pushing for forks ('push: false'), or run the push in a "
                "workflow triggered after review (e.g. on push to the base branch)."
            )
        raise OidcNotPermittedError(
            "This job cannot request a GitHub OIDC token, which 'role-to-assume' needs. "
            f"Add to the job (or the workflow):\n{PERMISSIONS_YAML}"
        )
    separator = "&" if "?" in request.oidc_request_url else "?"
    url = f"{request.oidc_request_url}{separator}audience={urllib.parse.quote(request.audience, safe='')}"
    http_request = urllib.request.Request(url, headers={"Authorization": f"Bearer {request.oidc_request_token}"})
    retrying = retries.CREDENTIALS.retrying("OIDC token request", _TransientTokenError, log=log)
    try:
        return retrying(_fetch_token, http_request)
    except _TransientTokenError as error:
        raise OidcTokenError(
            f"GitHub's OIDC token endpoint did not answer after {retries.attempts_made(retrying)} attempts "
            f"({error}). This is usually a passing GitHub outage: re-run the job."
        ) from None


def _fetch_token(http_request: urllib.request.Request) -> str:
    try:
        with urllib.request.urlopen(http_request, timeout=15) as reply:
            answer = json.load(reply)
    except urllib.error.HTTPError as error:
        if error.code >= 500 or error.code == 429:
            raise _TransientTokenError(f"HTTP {error.code}") from None
        raise OidcTokenError(
            f"GitHub's OIDC token endpoint refused the request (HTTP {error.code}). The job's token request "
            "credentials are not valid: make sure nothing overrides ACTIONS_ID_TOKEN_REQUEST_TOKEN."
        ) from None
    except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
        raise _TransientTokenError(str(getattr(error, "reason", error))) from None
    except ValueError:
        raise OidcTokenError("GitHub's OIDC token endpoint answered with something that is not JSON.") from None
    value = answer.get("value") if isinstance(answer, dict) else None
    if isinstance(answer, dict) and not value:
        raise OidcTokenError("GitHub's OIDC token endpoint answered without a token.")
    if not isinstance(value, str):
        # Described by JSON type only: the answer may hold a token, which must not reach the log.
        said = f"an object whose `value` is {_json_type(value)}" if isinstance(answer, dict) else _json_type(answer)
        raise OidcTokenError(
            f"GitHub's OIDC token endpoint answered with {said} instead of a token (an object with a string "
            "`value`). Check that nothing in the job (a proxy, or a step that sets ACTIONS_ID_TOKEN_REQUEST_URL) "
            "stands in for GitHub's endpoint."
        )
    return value


def _json_type(value: object) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", int: "number", float: "number"}
    return f"a JSON {names.get(type(value), 'null')}"


def token_claims(token: str) -> dict[str, object]:
    """The claims of a JWT, unverified: only used to explain a refusal (STS did the verifying)."""
    try:
        payload = token.split(".")[1]
        return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return {}


def web_identity_client(region: str) -> Any:
    # No credentials are needed (or wanted) to call AssumeRoleWithWebIdentity: the token is the proof.
    return aws.client(aws.session(None, region), "sts", retry=retries.CREDENTIALS, unsigned=True)


def assume_with_web_identity(
    request: CredentialRequest, role_arn: str, token: str, mask: Callable[[str], None], *, sts: Any = None
) -> tuple[aws.AwsCredentials, str]:
    sts = sts or web_identity_client(request.region)
    with aws.translated("sts", role_arn):
        try:
            reply = sts.assume_role_with_web_identity(
                RoleArn=role_arn,
                RoleSessionName=request.session_name,
                WebIdentityToken=token,
                DurationSeconds=request.duration_seconds,
            )
        except ClientError as error:
            if aws.error_code(error) not in ("AccessDenied", "InvalidIdentityToken", "IDPRejectedClaim"):
                raise
            raise TrustRefusedError(trust_refusal(role_arn, error, token_claims(token))) from None
    return _take(reply, mask)


def trust_refusal(role_arn: str, error: ClientError, claims: dict[str, object]) -> str:
    said = error.response["Error"].get("Message") or aws.error_code(error)
    seen = f"sub '{claims.get('sub', '?')}', aud '{claims.get('aud', '?')}'"
    if "job_workflow_ref" in claims:
        seen += f", job_workflow_ref '{claims['job_workflow_ref']}'"
    return (
        f"AWS refused to let this workflow assume {role_arn} ({said}). The role's trust policy must allow "
        f"sts:AssumeRoleWithWebIdentity from the GitHub OIDC provider for this token: {seen}. Fix the "
        "trust policy's 'token.actions.githubusercontent.com:sub' and ':aud' conditions, or the 'audience' input."
    )


def assume_role(
    request: CredentialRequest, current: aws.AwsCredentials | None, role_arn: str, mask: Callable[[str], None]
) -> tuple[aws.AwsCredentials, str]:
    sts = aws.client(aws.session(current, request.region), "sts", retry=retries.CREDENTIALS)
    with aws.translated("sts", role_arn):
        reply = sts.assume_role(
            RoleArn=role_arn, RoleSessionName=request.session_name, DurationSeconds=request.duration_seconds
        )
    return _take(reply, mask)


def _take(reply: dict, mask: Callable[[str], None]) -> tuple[aws.AwsCredentials, str]:
    issued = reply["Credentials"]
    # Masked before they are used or returned: from here on, nothing can print them in clear.
    for secret in (issued["AccessKeyId"], issued["SecretAccessKey"], issued["SessionToken"]):
        mask(secret)
    credentials = aws.AwsCredentials(
        access_key_id=issued["AccessKeyId"],
        secret_access_key=issued["SecretAccessKey"],
        session_token=issued["SessionToken"],
        expiration=issued.get("Expiration"),
    )
    return credentials, reply["AssumedRoleUser"]["Arn"]
