"""The AWS endpoint of the stack: moto, plus the parts of ECR and STS that moto leaves out.

Clients reach it through `AWS_ENDPOINT_URL`. Every request is forwarded to the moto server; around
that, the gateway makes the pieces behave as one ECR:

- registry → API: the registry's notifications (`POST /_stack/registry-events`) put each pushed
  manifest into moto with the registry's own digest, and start a scan when the repository scans on push;
- API → registry: a `PutImage` (adding a tag through the API) writes the same manifest to the registry;
- scans: a scan stays `IN_PROGRESS` for the delay a test sets (`POST /_stack/scan-delay`), and findings
  are served in pages of `maxResults` with `nextToken`, as ECR does (moto returns them all at once);
- STS: `AssumeRoleWithWebIdentity` checks the token's signature and the role's trust policy, as IAM does
  (moto accepts any token for any role).
"""

from __future__ import annotations

import fnmatch
import json
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import jwt
import requests
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import serialization

from stack import oidc
from stack.aws import admin_client
from stack.config import OIDC_ISSUER, OIDC_ISSUER_HOST, StackConfig

ECR_TARGET = "AmazonEC2ContainerRegistry_V20150921."
MANIFEST_TYPES = {
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
}
DEFAULT_FINDINGS_PAGE = 100
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "server", "date"}


class StsRefusal(Exception):
    def __init__(self, status: HTTPStatus, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class Gateway:
    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.http = requests.Session()
        self.scan_delays: dict[tuple[str, str, str], float] = {}
        self.scan_started: dict[tuple[str, str, str, str], float] = {}
        self.lock = threading.Lock()
        key = serialization.load_pem_private_key(oidc.private_key_path(config).read_bytes(), password=None)
        self.oidc_public_key = key.public_key()

    # Registry side ----------------------------------------------------------------------------
    def registry_url(self, account_id: str, path: str) -> str:
        return f"https://{self.config.account(account_id).address}{path}"

    def registry_auth(self, account_id: str) -> tuple[str, str]:
        return ("AWS", self.config.account(account_id).registry_password)

    def on_registry_events(self, envelope: dict[str, Any]) -> None:
        for event in envelope.get("events", []):
            target = event.get("target", {})
            if event.get("action") != "push" or target.get("mediaType") not in MANIFEST_TYPES:
                continue
            account, region = self.config.account_for_host(event["request"]["host"])
            self.import_manifest(account.account_id, region, target)

    def import_manifest(self, account_id: str, region: str, target: dict[str, Any]) -> None:
        repository, digest = target["repository"], target["digest"]
        manifest = self.http.get(
            self.registry_url(account_id, f"/v2/{repository}/manifests/{digest}"),
            headers={"Accept": target["mediaType"]},
            auth=self.registry_auth(account_id),
            verify=False,
            timeout=10,
        )
        manifest.raise_for_status()
        ecr = admin_client(self.config, "ecr", account_id, region, direct=True)
        request = {
            "repositoryName": repository,
            "imageManifest": manifest.content.decode(),
            "imageManifestMediaType": target["mediaType"],
            "imageDigest": digest,
        }
        if target.get("tag"):
            request["imageTag"] = target["tag"]
        try:
            ecr.put_image(**request)
        except ClientError as error:
            # The echo of an API PutImage that the gateway mirrored into the registry, or a push into a
            # repository ECR does not have: neither changes ECR's view.
            print(f"registry push of {repository}@{digest} not imported: {error}", flush=True)
            return
        except Exception as error:  # moto raises plain exceptions for a missing repository
            print(f"registry push of {repository}@{digest} not imported: {error!r}", flush=True)
            return
        scanning = ecr.describe_repositories(repositoryNames=[repository])["repositories"][0]
        if scanning["imageScanningConfiguration"]["scanOnPush"]:
            try:
                ecr.start_image_scan(repositoryName=repository, imageId={"imageDigest": digest})
            except ClientError:
                return  # already scanned: ECR scans one digest once
            self.note_scan_started(account_id, region, repository, digest)

    def mirror_put_image(self, account_id: str, request: dict[str, Any], response: dict[str, Any]) -> None:
        image = response["image"]
        tag = image["imageId"].get("imageTag")
        if not tag:
            return
        media_type = request.get("imageManifestMediaType") or json.loads(request["imageManifest"])["mediaType"]
        reply = self.http.put(
            self.registry_url(account_id, f"/v2/{image['repositoryName']}/manifests/{tag}"),
            data=request["imageManifest"].encode(),
            headers={"Content-Type": media_type},
            auth=self.registry_auth(account_id),
            verify=False,
            timeout=10,
        )
        if reply.status_code >= 300:
            print(f"mirroring PutImage to the registry failed: {reply.status_code} {reply.text}", flush=True)

    # Scans -------------------------------------------------------------------------------------
    def note_scan_started(self, account_id: str, region: str, repository: str, digest: str) -> None:
        with self.lock:
            self.scan_started[(account_id, region, repository, digest)] = time.monotonic()

    def scan_in_progress(self, account_id: str, region: str, repository: str, digest: str) -> bool:
        with self.lock:
            started = self.scan_started.get((account_id, region, repository, digest))
            delay = self.scan_delays.get((account_id, region, repository), 0.0)
        return started is not None and time.monotonic() < started + delay

    def shape_findings(self, account_id: str, region: str, request: dict[str, Any], body: dict[str, Any]) -> None:
        digest = body.get("imageId", {}).get("imageDigest", "")
        if self.scan_in_progress(account_id, region, body["repositoryName"], digest):
            body.pop("imageScanFindings", None)
            body["imageScanStatus"] = {"status": "IN_PROGRESS", "description": "The scan is in progress."}
            return
        findings = body.get("imageScanFindings")
        if not findings:
            return
        start = int(request.get("nextToken") or 0)
        size = int(request.get("maxResults") or DEFAULT_FINDINGS_PAGE)
        remaining = False
        for key in ("findings", "enhancedFindings"):
            if key in findings:
                remaining |= len(findings[key]) > start + size
                findings[key] = findings[key][start : start + size]
        body.pop("nextToken", None)
        if remaining:
            body["nextToken"] = str(start + size)

    # STS ---------------------------------------------------------------------------------------
    def check_web_identity(self, form: dict[str, str]) -> None:
        role_arn = form.get("RoleArn", "")
        try:
            claims = jwt.decode(
                form.get("WebIdentityToken", ""),
                self.oidc_public_key,
                algorithms=["RS256"],
                issuer=OIDC_ISSUER,
                options={"verify_aud": False},
            )
        except jwt.PyJWTError as error:
            raise StsRefusal(HTTPStatus.BAD_REQUEST, "InvalidIdentityToken", f"Invalid token: {error}") from None
        account_id = role_arn.split(":")[4] if role_arn.count(":") >= 5 else ""
        iam = admin_client(self.config, "iam", account_id or "000000000000", "us-east-1", direct=True)
        provider_arn = f"arn:aws:iam::{account_id}:oidc-provider/{OIDC_ISSUER_HOST}"
        providers = {p["Arn"] for p in iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]}
        if provider_arn not in providers:
            raise StsRefusal(
                HTTPStatus.BAD_REQUEST,
                "InvalidIdentityToken",
                f"No OpenIDConnect provider found in your account for {OIDC_ISSUER}",
            )
        try:
            role = iam.get_role(RoleName=role_arn.split("/")[-1])["Role"]
        except ClientError:
            role = None
        if role is None or not trust_allows(role["AssumeRolePolicyDocument"], provider_arn, claims):
            raise StsRefusal(
                HTTPStatus.FORBIDDEN, "AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity"
            )


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def trust_allows(document: Any, provider_arn: str, claims: dict[str, Any]) -> bool:
    """Whether an IAM trust policy lets a token with `claims` assume the role (Allow statements)."""
    if isinstance(document, str):
        document = json.loads(document)
    for statement in as_list(document.get("Statement", [])):
        if statement.get("Effect") != "Allow":
            continue
        if "sts:AssumeRoleWithWebIdentity" not in as_list(statement.get("Action", [])):
            continue
        if provider_arn not in as_list(statement.get("Principal", {}).get("Federated", [])):
            continue
        if all(
            condition_holds(operator, key, as_list(expected), claims)
            for operator, entries in statement.get("Condition", {}).items()
            for key, expected in entries.items()
        ):
            return True
    return False


def condition_holds(operator: str, key: str, expected: list[str], claims: dict[str, Any]) -> bool:
    prefix = f"{OIDC_ISSUER_HOST}:"
    if not key.startswith(prefix):
        return False
    actual = [str(v) for v in as_list(claims.get(key.removeprefix(prefix), []))]
    if operator == "StringEquals":
        return any(a in expected for a in actual)
    if operator == "StringLike":
        return any(fnmatch.fnmatchcase(a, pattern) for a in actual for pattern in expected)
    return False  # operators this stack does not model refuse, as an unmet condition would


def make_handler(gateway: Gateway) -> type[BaseHTTPRequestHandler]:
    config = gateway.config

    class Handler(BaseHTTPRequestHandler):
        server_version = "stack-gateway"
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature is http.server's
            print(f"{self.headers.get('X-Amz-Target', '')} {format % args}", flush=True)

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length", "0")))

        def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
            self.send_response(status)
            for name, value in headers.items():
                if name.lower() not in HOP_BY_HOP:
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, payload: Any) -> None:
            self._send(status, json.dumps(payload).encode(), {"Content-Type": "application/json"})

        def do_GET(self) -> None:
            if self.path == "/_stack/health":
                self._json(200, {"status": "ok"})
            else:
                self._forward(b"")

        def do_POST(self) -> None:
            body = self._body()
            if self.path == "/_stack/registry-events":
                gateway.on_registry_events(json.loads(body))
                self._json(200, {})
            elif self.path == "/_stack/scan-delay":
                spec = json.loads(body)
                with gateway.lock:
                    gateway.scan_delays[(spec["account"], spec["region"], spec["repository"])] = float(spec["seconds"])
                self._json(200, {})
            else:
                self._forward(body)

        def do_PUT(self) -> None:
            self._forward(self._body())

        def do_DELETE(self) -> None:
            self._forward(self._body())

        def _region(self) -> str:
            # SigV4: Credential=AKID/20260101/<region>/<service>/aws4_request
            credential = self.headers.get("Authorization", "").split("Credential=")[-1]
            parts = credential.split("/")
            return parts[2] if len(parts) > 2 else config.regions[0]

        def _forward(self, body: bytes) -> None:
            target = self.headers.get("X-Amz-Target", "")
            if self.command == "POST" and not target and b"AssumeRoleWithWebIdentity" in body:
                form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
                if form.get("Action") == "AssumeRoleWithWebIdentity":
                    try:
                        gateway.check_web_identity(form)
                    except StsRefusal as refusal:
                        self._sts_error(refusal)
                        return
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
            reply = gateway.http.request(
                self.command, config.moto_url + self.path, data=body, headers=headers, timeout=60
            )
            content = reply.content
            if target.startswith(ECR_TARGET) and reply.status_code == 200:
                content = self._after_ecr(target.removeprefix(ECR_TARGET), json.loads(body or b"{}"), reply.json())
            self._send(reply.status_code, content, dict(reply.headers))

        def _after_ecr(self, operation: str, request: dict[str, Any], response: dict[str, Any]) -> bytes:
            if operation == "PutImage":
                gateway.mirror_put_image(response["image"]["registryId"], request, response)
            elif operation == "StartImageScan":
                gateway.note_scan_started(
                    response["registryId"], self._region(), response["repositoryName"],
                    response["imageId"]["imageDigest"],
                )
            elif operation == "DescribeImageScanFindings":
                gateway.shape_findings(response["registryId"], self._region(), request, response)
            return json.dumps(response).encode()

        def _sts_error(self, refusal: StsRefusal) -> None:
            xml = (
                '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
                f"<Error><Type>Sender</Type><Code>{refusal.code}</Code>"
                f"<Message>{refusal.message}</Message></Error>"
                "<RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>"
            )
            self._send(refusal.status, xml.encode(), {"Content-Type": "text/xml"})

    return Handler


def main() -> None:
    config = StackConfig.load()
    requests.packages.urllib3.disable_warnings()  # the registry's certificate is the stack's own
    server = ThreadingHTTPServer(("127.0.0.1", config.gateway_port), make_handler(Gateway(config)))
    server.daemon_threads = True
    print(f"AWS gateway on {config.gateway_url} in front of moto at {config.moto_url}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
