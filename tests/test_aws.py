"""The AWS adapter: botocore's retries are bounded and logged; AWS errors become actionable messages."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator

import pytest
from botocore.exceptions import ClientError

from ecr_action import aws
from ecr_action.errors import AccessDeniedError, AwsCallError, CredentialsError
from ecr_action.retries import RetryPolicy


class ThrottlingEcr(http.server.ThreadingHTTPServer):
    """An ECR endpoint that throttles the first `failures` calls, then answers."""

    def __init__(self, failures: int) -> None:
        self.failures, self.calls = failures, 0
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                server.calls += 1
                if server.calls <= server.failures:
                    status, body = 400, {"__type": "ThrottlingException", "message": "Rate exceeded"}
                else:
                    status, body = 200, {"repositories": []}
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)


@pytest.fixture
def throttling(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Iterator[ThrottlingEcr]:
    server = ThrottlingEcr(request.param)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{server.server_port}")
    monkeypatch.setenv("AWS_RETRY_MODE", "legacy")  # ignored: the client's own config wins
    yield server
    server.shutdown()


def ecr_client(attempts: int, log: list[str]) -> object:
    session = aws.session(aws.AwsCredentials("AKIATEST", "secret"), "us-east-1")
    return aws.client(session, "ecr", retry=RetryPolicy(attempts), log=log.append)


@pytest.mark.parametrize("throttling", [2], indirect=True)
def test_throttling_is_retried_and_each_retry_logged(throttling: ThrottlingEcr) -> None:
    log: list[str] = []
    assert ecr_client(5, log).describe_repositories()["repositories"] == []
    assert throttling.calls == 3
    assert log == [
        "ecr:DescribeRepositories: attempt 1 of 5 failed; retrying",
        "ecr:DescribeRepositories: attempt 2 of 5 failed; retrying",
    ]


@pytest.mark.parametrize("throttling", [10], indirect=True)
def test_retries_stop_at_the_bound(throttling: ThrottlingEcr) -> None:
    with (
        pytest.raises(AwsCallError, match=r"DescribeRepositories failed \(ThrottlingException\)"),
        aws.translated("ecr"),
    ):
        ecr_client(3, []).describe_repositories()
    assert throttling.calls == 3


def client_error(code: str, message: str = "said") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, "PutLifecyclePolicy")


@pytest.mark.parametrize(
    ("code", "kind", "text"),
    [
        ("AccessDeniedException", AccessDeniedError, "allow the IAM action 'ecr:PutLifecyclePolicy'"),
        ("ExpiredTokenException", CredentialsError, "raise 'role-duration-seconds'"),
        ("InvalidParameterException", AwsCallError, "PutLifecyclePolicy on app failed (InvalidParameterException)"),
    ],
)
def test_errors_name_the_action_and_the_fix(code: str, kind: type, text: str) -> None:
    error = aws.error_for(client_error(code), "ecr", "app")
    assert isinstance(error, kind)
    assert text in error.message
