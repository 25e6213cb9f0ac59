"""GitHub's OIDC token endpoint, as a job sees it through ACTIONS_ID_TOKEN_REQUEST_URL/TOKEN.

`GET /idtoken?api-version=2.0&audience=AUD` with `Authorization: Bearer <request token>` answers
`{"value": "<JWT>"}`, an RS256 token with GitHub's claim set, signed by the stack's key. Each job is a
request token with its own claims: `up` registers a default job; a test registers its own with
`POST /_stack/jobs` (claims to override) and gets `{"url": ..., "token": ...}` back.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
import uuid
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt

from stack.config import OIDC_ISSUER, StackConfig
from stack.serving import serve

DEFAULT_REPOSITORY = "octo-org/octo-app"
TOKEN_LIFETIME_SECONDS = 300


def default_claims(repository: str = DEFAULT_REPOSITORY, ref: str = "refs/heads/main") -> dict[str, Any]:
    owner = repository.split("/")[0]
    return {
        "sub": f"repo:{repository}:ref:{ref}",
        "repository": repository,
        "repository_owner": owner,
        "repository_id": "100200300",
        "repository_owner_id": "400500600",
        "repository_visibility": "private",
        "ref": ref,
        "ref_type": "branch",
        "sha": "0123456789abcdef0123456789abcdef01234567",
        "workflow": "build",
        "workflow_ref": f"{repository}/.github/workflows/build.yml@{ref}",
        "job_workflow_ref": f"{repository}/.github/workflows/build.yml@{ref}",
        "event_name": "push",
        "actor": "octocat",
        "actor_id": "1",
        "run_id": "9000000001",
        "run_number": "1",
        "run_attempt": "1",
        "runner_environment": "github-hosted",
    }


def private_key_path(config: StackConfig) -> Path:
    return config.oidc_dir / "signing-key.pem"


def default_job_path(config: StackConfig) -> Path:
    return config.oidc_dir / "default-job.json"


class TokenIssuer:
    """Jobs (request token → claims) and the signing of their ID tokens."""

    def __init__(self, config: StackConfig) -> None:
        self._config = config
        self._key = private_key_path(config).read_bytes()
        self._jobs: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        default = json.loads(default_job_path(config).read_text())
        self._jobs[default["token"]] = default["claims"]

    def register(self, overrides: dict[str, Any]) -> dict[str, str]:
        claims = default_claims(
            overrides.get("repository", DEFAULT_REPOSITORY), overrides.get("ref", "refs/heads/main")
        )
        claims.update(overrides)
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._jobs[token] = claims
        return {"url": f"{self._config.oidc_url}/idtoken?api-version=2.0", "token": token}

    def issue(self, request_token: str, audience: str | None) -> str | None:
        with self._lock:
            claims = self._jobs.get(request_token)
        if claims is None:
            return None
        now = int(time.time())
        payload = {
            **claims,
            "iss": OIDC_ISSUER,
            # GitHub's default audience is the URL of the repository owner.
            "aud": audience or f"https://github.com/{claims['repository_owner']}",
            "jti": str(uuid.uuid4()),
            "iat": now,
            "nbf": now - 5,
            "exp": now + TOKEN_LIFETIME_SECONDS,
        }
        return jwt.encode(payload, self._key, algorithm="RS256", headers={"kid": "ecr-action-stack"})


def make_handler(issuer: TokenIssuer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "stack-oidc"

        def log_message(self, format: str, *args: Any) -> None:
            print(f"{self.address_string()} {format % args}", flush=True)

        def _reply(self, status: HTTPStatus, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path == "/_stack/health":
                self._reply(HTTPStatus.OK, {"status": "ok"})
                return
            if url.path != "/idtoken":
                self._reply(HTTPStatus.NOT_FOUND, {"message": "not found"})
                return
            scheme, _, request_token = self.headers.get("Authorization", "").partition(" ")
            audience = parse_qs(url.query).get("audience", [None])[0]
            token = issuer.issue(request_token, audience) if scheme.lower() == "bearer" else None
            if token is None:
                self._reply(HTTPStatus.UNAUTHORIZED, {"message": "Bad credentials: the bearer token is not valid"})
                return
            self._reply(HTTPStatus.OK, {"count": 2000, "value": token})

        def do_POST(self) -> None:
            if urlsplit(self.path).path != "/_stack/jobs":
                self._reply(HTTPStatus.NOT_FOUND, {"message": "not found"})
                return
            length = int(self.headers.get("Content-Length", "0"))
            overrides = json.loads(self.rfile.read(length) or b"{}")
            self._reply(HTTPStatus.CREATED, issuer.register(overrides))

    return Handler


def main() -> None:
    config = StackConfig.load()
    serve(config.oidc_port, make_handler(TokenIssuer(config)), f"OIDC token endpoint on {config.oidc_url}")


if __name__ == "__main__":
    main()
