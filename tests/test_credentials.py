"""Credentials: OIDC → AssumeRoleWithWebIdentity, environment credentials, chaining, against the stack; the
token endpoint's odd answers against a local HTTP server."""

from __future__ import annotations

import dataclasses
import http.server
import socket
import threading
from collections.abc import Iterator

import pytest

from ecr_action.credentials import CredentialRequest, request_oidc_token, resolve_credentials, token_claims
from ecr_action.errors import CredentialsError, OidcNotPermittedError, OidcTokenError, TrustRefusedError
from stack.client import StackClient


def request_for(stack: StackClient, role: str | None, **changes: object) -> CredentialRequest:
    job = stack.github_job()
    base = CredentialRequest(
        region=stack.region,
        role_to_assume=role,
        audience="sts.amazonaws.com",
        session_name="ecr-action-test",
        duration_seconds=900,
        role_chaining=False,
        chain_role_to_assume=None,
        allowed_account_ids=(),
        oidc_request_url=job.request_url,
        oidc_request_token=job.request_token,
        is_fork_pull_request=False,
    )
    return dataclasses.replace(base, **changes)


@pytest.fixture
def role(aws_env: StackClient, unique_name: str) -> str:
    return aws_env.github_role(unique_name.replace("/", "-"))


@pytest.mark.stack
def test_oidc_web_identity_masks_every_secret_before_returning(aws_env: StackClient, role: str) -> None:
    masked: list[str] = []
    resolved = resolve_credentials(request_for(aws_env, role), mask=masked.append)

    assert resolved.account_id == aws_env.default_account
    assert resolved.identity_arn.startswith(f"arn:aws:sts::{aws_env.default_account}:assumed-role/")
    credentials = resolved.credentials
    assert credentials is not None
    assert {credentials.access_key_id, credentials.secret_access_key, credentials.session_token} <= set(masked)
    token = masked[0]
    assert token_claims(token)["aud"] == "sts.amazonaws.com"
    assert "secret_access_key" not in repr(credentials)


@pytest.mark.stack
def test_chaining_into_a_role_in_another_account(aws_env: StackClient, role: str, unique_name: str) -> None:
    target = aws_env.chained_role(
        unique_name.replace("/", "-") + "-b", account_id=aws_env.other_account, trusted_role_arn=role
    )
    resolved = resolve_credentials(request_for(aws_env, role, chain_role_to_assume=target), mask=lambda _: None)
    assert resolved.account_id == aws_env.other_account


@pytest.mark.stack
def test_a_trust_policy_that_does_not_match_names_role_and_token(aws_env: StackClient, unique_name: str) -> None:
    role = aws_env.github_role(unique_name.replace("/", "-"), subjects=("repo:someone-else/app:*",))
    with pytest.raises(TrustRefusedError) as refused:
        resolve_credentials(request_for(aws_env, role), mask=lambda _: None)
    message = refused.value.message
    assert role in message
    assert "sub 'repo:octo-org/octo-app:ref:refs/heads/main'" in message
    assert "aud 'sts.amazonaws.com'" in message


@pytest.mark.stack
def test_a_wrong_audience_is_refused(aws_env: StackClient, role: str) -> None:
    with pytest.raises(TrustRefusedError, match="aud 'api://other'"):
        resolve_credentials(request_for(aws_env, role, audience="api://other"), mask=lambda _: None)


@pytest.mark.stack
def test_no_token_request_url_explains_the_permission(aws_env: StackClient, role: str) -> None:
    with pytest.raises(OidcNotPermittedError, match="id-token: write"):
        resolve_credentials(request_for(aws_env, role, oidc_request_url=None), mask=lambda _: None)


@pytest.mark.stack
def test_fork_pull_requests_get_their_own_explanation(aws_env: StackClient, role: str) -> None:
    request = request_for(aws_env, role, oidc_request_url=None, oidc_request_token=None, is_fork_pull_request=True)
    with pytest.raises(OidcNotPermittedError, match="forks"):
        resolve_credentials(request, mask=lambda _: None)


@pytest.mark.stack
def test_a_refused_bearer_token_is_not_retried(aws_env: StackClient, role: str) -> None:
    with pytest.raises(OidcTokenError, match="HTTP 401"):
        resolve_credentials(request_for(aws_env, role, oidc_request_token="wrong"), mask=lambda _: None)


@pytest.mark.stack
def test_token_endpoint_down_is_a_clear_error(aws_env: StackClient, role: str) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    request = request_for(aws_env, role, oidc_request_url=f"http://127.0.0.1:{port}/idtoken?api-version=2.0")
    with pytest.raises(OidcTokenError, match="did not answer after 3 attempts"):
        resolve_credentials(request, mask=lambda _: None)


@pytest.mark.stack
def test_environment_credentials_are_used_without_a_role(aws_env: StackClient) -> None:
    resolved = resolve_credentials(request_for(aws_env, None), mask=lambda _: None)
    assert resolved.credentials is None
    assert resolved.account_id == aws_env.default_account


@pytest.mark.stack
def test_an_account_outside_allowed_account_ids_stops_the_run(aws_env: StackClient, role: str) -> None:
    request = request_for(aws_env, role, allowed_account_ids=(aws_env.other_account,))
    with pytest.raises(CredentialsError, match=f"account {aws_env.default_account}, which is not in"):
        resolve_credentials(request, mask=lambda _: None)


# The token endpoint's answers, from a local server: GitHub's is only reachable inside a job.


class TokenEndpoint(http.server.ThreadingHTTPServer):
    """An OIDC token endpoint that answers every request with `body` (HTTP 200) and counts the requests."""

    def __init__(self, body: bytes) -> None:
        self.body, self.requests = body, 0
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(server.body)))
                self.end_headers()
                self.wfile.write(server.body)

            def log_message(self, *_: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)


@pytest.fixture
def endpoint(request: pytest.FixtureRequest) -> Iterator[TokenEndpoint]:
    server = TokenEndpoint(request.param)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def token_request(url: str) -> CredentialRequest:
    return CredentialRequest(
        region="us-east-1",
        role_to_assume="arn:aws:iam::123456789012:role/ci",
        audience="sts.amazonaws.com",
        session_name="ecr-action-test",
        duration_seconds=900,
        role_chaining=False,
        chain_role_to_assume=None,
        allowed_account_ids=(),
        oidc_request_url=url,
        oidc_request_token="request-token",
        is_fork_pull_request=False,
    )


SECRET = "eyJhbGciOiJSUzI1NiJ9.secret-looking.token"


@pytest.mark.parametrize(
    ("endpoint", "said"),
    [
        pytest.param(f'["{SECRET}"]'.encode(), "a JSON array", id="list"),
        pytest.param(f'"{SECRET}"'.encode(), "a JSON string", id="string"),
        pytest.param(b"42", "a JSON number", id="number"),
        pytest.param(b"null", "a JSON null", id="null"),
        pytest.param(
            f'{{"value": {{"token": "{SECRET}"}}}}'.encode(),
            "an object whose `value` is a JSON object",
            id="value-object",
        ),
        pytest.param(f'{{"value": ["{SECRET}"]}}'.encode(), "an object whose `value` is a JSON array", id="value-list"),
        pytest.param(b'{"value": 12345}', "an object whose `value` is a JSON number", id="value-number"),
    ],
    indirect=["endpoint"],
)
def test_a_token_endpoint_answer_that_is_not_a_token_is_refused_once_without_its_text(
    endpoint: TokenEndpoint, said: str
) -> None:
    with pytest.raises(OidcTokenError) as raised:
        request_oidc_token(token_request(f"http://127.0.0.1:{endpoint.server_port}/idtoken?api-version=2.0"))

    assert raised.value.message == (
        f"GitHub's OIDC token endpoint answered with {said} instead of a token (an object with a string "
        "`value`). Check that nothing in the job (a proxy, or a step that sets ACTIONS_ID_TOKEN_REQUEST_URL) "
        "stands in for GitHub's endpoint."
    )
    assert SECRET not in raised.value.message
    assert endpoint.requests == 1  # such an answer will not improve on a second try


@pytest.mark.parametrize(
    "endpoint", [pytest.param(f'{{"count": 1, "value": "{SECRET}"}}'.encode(), id="token")], indirect=True
)
def test_a_token_endpoint_answer_with_a_token_gives_the_token(endpoint: TokenEndpoint) -> None:
    assert request_oidc_token(token_request(f"http://127.0.0.1:{endpoint.server_port}/idtoken")) == SECRET
