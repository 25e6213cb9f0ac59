"""The AWS endpoint of the stack: moto, plus the parts of ECR and STS that moto leaves out.

Clients reach it through `AWS_ENDPOINT_URL`. Every request is forwarded to the moto server; around
that, the gateway makes the pieces behave as one ECR:

- registry → API: before any call about a repository, what the registry serves (read from its storage:
  each tag, and each manifest pushed by digest without one, untagged as in ECR) is put into moto with
  the registry's own digest, and a scan starts when the repository scans on push; so a read right after
  a push sees it;
- API → registry: a `PutImage` (adding a tag, or an image index, through the API) writes the same manifest
  to the registry, and the image gets ECR's digest, the manifest's sha256 (moto makes one up); an index
  whose children the repository does not have is refused (`ReferencedImagesNotFoundException`), as ECR does;
- scans: a scan stays `IN_PROGRESS` for the delay a test sets (`POST /_stack/scan-delay`), and findings
  are served in pages of `maxResults` with `nextToken`, as ECR does (moto returns them all at once);
- signing (moto has no signing API): `GetSigningConfiguration` and `DescribeImageSigningStatus` answer
  from what a test sets (`POST /_stack/signing`): a rule covering the repository, and the statuses its
  images go through;
- lifecycle policies that archive (moto's schema predates ECR's archive storage class): moto keeps a
  stand-in it accepts, and the gateway answers with the policy it stands for (see `lifecycle_stand_in`);
- STS: `AssumeRoleWithWebIdentity` checks the token's signature and the role's trust policy, as IAM does
  (moto accepts any token for any role).
"""

from __future__ import annotations

import fnmatch
import hashlib
import html
import json
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import jwt
import requests
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import serialization

from stack import oidc
from stack.aws import admin_client
from stack.config import OIDC_ISSUER, OIDC_ISSUER_HOST, Registry, StackConfig
from stack.serving import serve

ECR_TARGET = "AmazonEC2ContainerRegistry_V20150921."
DEFAULT_FINDINGS_PAGE = 100
# What this gateway answers beyond moto, for tests to tell it from a gateway started from older code.
FEATURES = ("scan-delay", "signing", "lifecycle-archive")
SIGNING_OPERATIONS = ("GetSigningConfiguration", "DescribeImageSigningStatus")
LIFECYCLE_OPERATIONS = ("PutLifecyclePolicy", "GetLifecyclePolicy", "DeleteLifecyclePolicy")
# What ECR's archive storage class added to lifecycle policies, mapped to what moto knows.
ARCHIVE_ACTION = {"type": "transition", "targetStorageClass": "archive"}
SELECTION_STORAGE_CLASSES = ("standard", "archive")
DAY_COUNT_TYPES_MOTO_LACKS = ("sinceImagePulled", "sinceImageTransitioned")
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "server", "date"}


class StsRefusal(Exception):
    def __init__(self, status: HTTPStatus, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class Gateway:
    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.http = requests.Session()
        self.scan_delays: dict[tuple[str, str], float] = {}
        self.scan_started: dict[tuple[str, str, str], float] = {}
        # (region, repository) → {"profile": signing profile ARN, "statuses": the answers still to give}
        self.signing: dict[tuple[str, str], dict[str, Any]] = {}
        # (registryId, region, repository) → (the stand-in moto holds, the lifecycle policy it stands for)
        self.lifecycle_stand_ins: dict[tuple[str, str, str], tuple[str, str]] = {}
        self.lock = threading.Lock()
        self.sync_locks: dict[tuple[str, str], threading.Lock] = {}
        key = serialization.load_pem_private_key(oidc.private_key_path(config).read_bytes(), password=None)
        self.oidc_public_key = key.public_key()

    # Registry side ----------------------------------------------------------------------------
    def registry_request(self, registry: Registry, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.http.request(
            method,
            f"https://{registry.address}{path}",
            auth=("AWS", registry.password),
            verify=str(self.config.tls_dir / "registry.crt"),
            timeout=10,
            **kwargs,
        )

    def storage(self, registry: Registry) -> Path:
        """The registry's storage (its filesystem driver's layout, stable across distribution releases)."""
        return self.config.registry_dir(registry) / "data" / "docker" / "registry" / "v2"

    def served_tags(self, registry: Registry, repository: str) -> dict[str, str]:
        """Tag → digest as the registry serves them, read from its storage: a push is there as soon as
        the registry has answered it, with no request to make (this runs before every ECR call)."""
        tags = self.storage(registry) / "repositories" / repository / "_manifests" / "tags"
        served = {}
        for link in tags.glob("*/current/link") if tags.is_dir() else ():
            served[link.parent.parent.name] = link.read_text().strip()
        return served

    def served_revisions(self, registry: Registry, repository: str) -> set[str]:
        """Every manifest digest the registry serves in `repository`, tagged or not (pushed by digest, as
        a multi-platform image's children are). A deleted manifest loses its link; its folder may stay."""
        revisions = self.storage(registry) / "repositories" / repository / "_manifests" / "revisions" / "sha256"
        links = revisions.glob("*/link") if revisions.is_dir() else ()
        return {f"sha256:{link.parent.name}" for link in links}

    @staticmethod
    def ecr_images(ecr: Any, repository: str) -> tuple[dict[str, str], set[str]] | None:
        """(tag → digest, every digest) of `repository` in ECR (moto), or None when it has no such repository."""
        try:
            pages = ecr.get_paginator("describe_images").paginate(repositoryName=repository)
            details = [detail for page in pages for detail in page["imageDetails"]]
        except ClientError:
            return None
        tags = {tag: d["imageDigest"] for d in details for tag in d.get("imageTags", [])}
        return tags, {d["imageDigest"] for d in details}

    def sync_repository(self, registry: Registry, repository: str) -> None:
        """Make ECR's view of `repository` match what the registry serves: each tag, and each manifest
        pushed without one (untagged in ECR, found by its digest).

        Run before every call about a repository, so that a read right after a push sees the push,
        as it does in ECR, where the registry and the API are one service.
        """
        with self.lock:
            sync_lock = self.sync_locks.setdefault((registry.name, repository), threading.Lock())
        # One sync of a repository at a time: two calls at once would both import what is new, and moto
        # refuses the second (a tag) or drops the first (an untagged manifest put twice).
        with sync_lock:
            self._sync_repository(registry, repository)

    def _sync_repository(self, registry: Registry, repository: str) -> None:
        served = self.served_tags(registry, repository)
        revisions = self.served_revisions(registry, repository)
        if not served and not revisions:
            return
        ecr = admin_client(self.config, "ecr", registry.account_id, registry.region, direct=True)
        images = self.ecr_images(ecr, repository)
        if images is None:
            return  # no such repository in ECR: a push ECR would have refused
        known_tags, known_digests = images
        moved = [(tag, digest) for tag, digest in served.items() if known_tags.get(tag) != digest]
        for tag, digest in moved:
            self.import_manifest(ecr, registry, repository, digest, tag)
        if moved:
            # A tag that moved leaves its old image untagged, which moto deletes: count it as missing.
            images = self.ecr_images(ecr, repository)
            known_digests = images[1] if images else known_digests
        for digest in sorted(revisions - known_digests):
            self.import_manifest(ecr, registry, repository, digest, None)

    def missing_children(self, region: str, request: dict[str, Any]) -> list[str]:
        """The children of the image index a PutImage puts that its repository does not have (ECR refuses
        it with ReferencedImagesNotFoundException). [] for a single image, and when no account of the
        region has the repository (moto then answers RepositoryNotFoundException).

        The gateway does not know the caller's account (moto does): without `registryId`, a child held by
        the same-named repository of any account in the region counts (tests use unique names).
        """
        try:
            children = [entry["digest"] for entry in json.loads(request.get("imageManifest", "{}"))["manifests"]]
        except (ValueError, KeyError, TypeError):
            return []
        held: set[str] | None = None
        for registry in self.config.registries:
            if registry.region != region or request.get("registryId") not in (None, registry.account_id):
                continue
            ecr = admin_client(self.config, "ecr", registry.account_id, registry.region, direct=True)
            images = self.ecr_images(ecr, request.get("repositoryName", ""))
            if images is not None:
                held = (held or set()) | images[1]
        return [] if held is None else [digest for digest in children if digest not in held]

    def import_manifest(self, ecr: Any, registry: Registry, repository: str, digest: str, tag: str | None) -> None:
        algorithm, _, hexdigest = digest.partition(":")
        manifest = (self.storage(registry) / "blobs" / algorithm / hexdigest[:2] / hexdigest / "data").read_bytes()
        document = json.loads(manifest)
        media_type = document.get("mediaType") or (
            "application/vnd.oci.image.index.v1+json"
            if "manifests" in document
            else "application/vnd.oci.image.manifest.v1+json"
        )
        try:
            ecr.put_image(
                repositoryName=repository,
                imageManifest=manifest.decode(),
                imageManifestMediaType=media_type,
                imageDigest=digest,
                **({"imageTag": tag} if tag else {}),
            )
        except ClientError as error:
            print(f"registry image {repository}:{tag or '(untagged)'}@{digest} not imported: {error}", flush=True)
            return
        settings = ecr.describe_repositories(repositoryNames=[repository])["repositories"][0]
        if settings["imageScanningConfiguration"]["scanOnPush"]:
            try:
                ecr.start_image_scan(repositoryName=repository, imageId={"imageDigest": digest})
            except ClientError:
                return  # this digest was scanned already (pushed before under another tag)
            self.note_scan_started(registry.region, repository, digest)

    def mirror_put_image(self, registry: Registry, request: dict[str, Any], response: dict[str, Any]) -> None:
        """A tag added through the API is served by the registry too."""
        image = response["image"]
        tag = image["imageId"].get("imageTag")
        if not tag:
            return
        media_type = request.get("imageManifestMediaType") or json.loads(request["imageManifest"])["mediaType"]
        reply = self.registry_request(
            registry,
            "PUT",
            f"/v2/{image['repositoryName']}/manifests/{tag}",
            data=request["imageManifest"].encode(),
            headers={"Content-Type": media_type},
        )
        if reply.status_code >= 300:
            print(f"mirroring PutImage to the registry failed: {reply.status_code} {reply.text}", flush=True)

    # Scans -------------------------------------------------------------------------------------
    # Keyed by region, repository and digest, not account: the gateway does not know which account a
    # caller's keys belong to (moto does), and tests give every repository a unique name.
    def note_scan_started(self, region: str, repository: str, digest: str) -> None:
        with self.lock:
            self.scan_started[(region, repository, digest)] = time.monotonic()

    def scan_in_progress(self, region: str, repository: str, digest: str) -> bool:
        with self.lock:
            started = self.scan_started.get((region, repository, digest))
            delay = self.scan_delays.get((region, repository), 0.0)
        return started is not None and time.monotonic() < started + delay

    def shape_findings(self, region: str, request: dict[str, Any], body: dict[str, Any]) -> None:
        # A canned result holds only what the test wrote: complete it as ECR would answer.
        body.setdefault("repositoryName", request["repositoryName"])
        body["imageId"] = {**request.get("imageId", {}), **body.get("imageId", {})}
        digest = body["imageId"].get("imageDigest", "")
        if self.scan_in_progress(region, body["repositoryName"], digest):
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
                HTTPStatus.FORBIDDEN,
                "AccessDenied",
                "Not authorized to perform sts:AssumeRoleWithWebIdentity",
            )


def signing_reply(
    signing: dict[tuple[str, str], dict[str, Any]], region: str, operation: str, request: dict[str, Any]
) -> tuple[int, dict[str, Any]]:
    """ECR's answer to a signing operation from the state tests set: the registry's configuration has
    one rule per repository given a profile; an image's statuses are the next of its repository's
    (the last repeats). Pops the answer given, so the caller holds the lock."""
    if operation == "GetSigningConfiguration":
        rules = [
            {
                "signingProfileArn": entry["profile"],
                "repositoryFilters": [{"filter": name, "filterType": "WILDCARD_MATCH"}],
            }
            for (entry_region, name), entry in signing.items()
            if entry_region == region
        ]
        if not rules:
            return 400, {
                "__type": "SigningConfigurationNotFoundException",
                "message": "The registry does not have a signing configuration.",
            }
        return 200, {"signingConfiguration": {"rules": rules}}
    entry = signing.get((region, request.get("repositoryName", "")))
    statuses: list[Any] = []
    if entry is not None:
        answers = entry["statuses"]
        statuses = answers.pop(0) if len(answers) > 1 else answers[0]
    reply = {"repositoryName": request.get("repositoryName"), "imageId": request.get("imageId", {})}
    return 200, {**reply, "signingStatuses": statuses}


# Lifecycle policies ---------------------------------------------------------------------------------
# Moto 5.2.5 refuses a lifecycle policy that archives (a `transition` action, a selection's `storageClass`,
# the `sinceImagePulled` and `sinceImageTransitioned` count types). Rather than keep every lifecycle policy
# itself, the gateway sends moto a stand-in for such a policy only: the same rules, each archive-era field
# mapped to one moto knows. So moto still does all the rest as ECR does: it checks the rest of the policy
# (a stand-in it refuses is refused, with ECR's InvalidParameterException), resolves the caller's account
# (which the gateway does not know), answers RepositoryNotFoundException and
# LifecyclePolicyNotFoundException, and forgets the policy with its repository. The gateway only remembers
# which stand-in stands for which policy, and gives the policy back wherever moto answers with the stand-in.
# Every put replaces its repository's entry, so an entry is used only while moto holds the stand-in put with it.
# A malformed archive-era field is left as it is, for moto to refuse as ECR refuses it.
def lifecycle_stand_in(text: str) -> str | None:
    """A lifecycle policy moto accepts in place of `text`, or None when `text` needs none (it has no
    archive-era field, or is not a policy at all: moto answers it as it is)."""
    try:
        document = json.loads(text)
    except (ValueError, TypeError):
        return None
    rules = document.get("rules") if isinstance(document, dict) else None
    if not isinstance(rules, list):
        return None
    changed = False
    for rule in rules:
        if not isinstance(rule, dict):
            continue
        if rule.get("action") == ARCHIVE_ACTION:
            rule["action"] = {"type": "expire"}
            changed = True
        selection = rule.get("selection")
        if not isinstance(selection, dict):
            continue
        if selection.get("storageClass") in SELECTION_STORAGE_CLASSES:
            del selection["storageClass"]
            changed = True
        if selection.get("countType") in DAY_COUNT_TYPES_MOTO_LACKS:
            selection["countType"] = "sinceImagePushed"  # days too
            changed = True
    return json.dumps(document) if changed else None


def with_lifecycle_stand_in(body: bytes) -> bytes:
    """A PutLifecyclePolicy request carrying the stand-in moto accepts, when its policy needs one."""
    request = json.loads(body or b"{}")
    stand_in = lifecycle_stand_in(request.get("lifecyclePolicyText", ""))
    return body if stand_in is None else json.dumps({**request, "lifecyclePolicyText": stand_in}).encode()


def restore_lifecycle_policy(
    stand_ins: dict[tuple[str, str, str], tuple[str, str]],
    region: str,
    operation: str,
    request: dict[str, Any],
    response: dict[str, Any],
) -> None:
    """Moto's answer to a lifecycle operation (`request` as the client sent it) with the policy in place of
    its stand-in; notes which stand-in a put policy has (none: forgets the one before). The caller holds
    the lock."""
    key = (response["registryId"], region, response["repositoryName"])
    if operation == "PutLifecyclePolicy":
        text = request["lifecyclePolicyText"]
        stand_in = lifecycle_stand_in(text)
        if stand_in is None:
            stand_ins.pop(key, None)
        else:
            stand_ins[key] = (stand_in, text)
        response["lifecyclePolicyText"] = text
        return
    held, policy = stand_ins.get(key, (None, None))
    if policy is not None and response.get("lifecyclePolicyText") == held:
        response["lifecyclePolicyText"] = policy
    if operation == "DeleteLifecyclePolicy":
        stand_ins.pop(key, None)


def with_manifest_digest(body: bytes) -> bytes:
    """A PutImage request naming the image by its manifest's digest (sha256 of its bytes), as ECR and the
    registry name it: moto otherwise derives one from the layers, or makes one up for an image index."""
    request = json.loads(body or b"{}")
    if "imageDigest" in request or "imageManifest" not in request:
        return body
    request["imageDigest"] = f"sha256:{hashlib.sha256(request['imageManifest'].encode()).hexdigest()}"
    return json.dumps(request).encode()


def name_images_as_requested(request: dict[str, Any], response: dict[str, Any]) -> None:
    """ECR names each image returned by BatchGetImage by the tag it was asked for; moto names it by the
    last tag it was given, so an image asked for under two tags comes back twice under the same one."""
    missing = [failure["imageId"] for failure in response.get("failures", [])]
    found = iter(response.get("images", []))
    for image_id in request.get("imageIds", []):
        if image_id in missing or {"imageTag": image_id.get("imageTag", "null")} in missing:
            continue
        image = next(found, None)
        if image is None:
            return
        image["imageId"] = {"imageDigest": image["imageId"]["imageDigest"], **image_id}


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

        def log_message(self, format: str, *args: Any) -> None:
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
                self._json(200, {"status": "ok", "features": list(FEATURES)})
            else:
                self._forward(b"")

        def do_POST(self) -> None:
            body = self._body()
            if self.path == "/_stack/scan-delay":
                spec = json.loads(body)
                with gateway.lock:
                    gateway.scan_delays[(spec["region"], spec["repository"])] = float(spec["seconds"])
                self._json(200, {})
            elif self.path == "/_stack/signing":
                spec = json.loads(body)
                with gateway.lock:
                    gateway.signing[(spec["region"], spec["repository"])] = {
                        "profile": spec["profile"],
                        "statuses": [list(answer) for answer in spec["statuses"]] or [[]],
                    }
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
            if target.removeprefix(ECR_TARGET) in SIGNING_OPERATIONS:
                with gateway.lock:
                    status, payload = signing_reply(
                        gateway.signing, self._region(), target.removeprefix(ECR_TARGET), json.loads(body or b"{}")
                    )
                self._send(status, json.dumps(payload).encode(), {"Content-Type": "application/x-amz-json-1.1"})
                return
            request = json.loads(body or b"{}") if target.startswith(ECR_TARGET) else {}
            if target.startswith(ECR_TARGET):
                self._sync(target.removeprefix(ECR_TARGET), request)
            if target == f"{ECR_TARGET}PutLifecyclePolicy":
                body = with_lifecycle_stand_in(body)
            if target == f"{ECR_TARGET}PutImage":
                missing = gateway.missing_children(self._region(), request)
                if missing:
                    self._ecr_error(
                        "ReferencedImagesNotFoundException",
                        f"The manifest list is referencing an image that does not exist: {', '.join(missing)}",
                    )
                    return
                body = with_manifest_digest(body)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
            reply = gateway.http.request(
                self.command, config.moto_url + self.path, data=body, headers=headers, timeout=60
            )
            content = reply.content
            if target.startswith(ECR_TARGET) and reply.status_code == 200:
                content = self._after_ecr(target.removeprefix(ECR_TARGET), request, reply.json())
            self._send(reply.status_code, content, dict(reply.headers))

        def _sync(self, operation: str, request: dict[str, Any]) -> None:
            repository = request.get("repositoryName")
            if not repository or operation in ("CreateRepository", "DeleteRepository"):
                return
            region = self._region()
            for registry in config.registries:
                if registry.region == region:
                    gateway.sync_repository(registry, repository)

        def _after_ecr(self, operation: str, request: dict[str, Any], response: dict[str, Any]) -> bytes:
            if operation == "PutImage":
                gateway.mirror_put_image(
                    config.registry(response["image"]["registryId"], self._region()), request, response
                )
            elif operation == "StartImageScan":
                gateway.note_scan_started(
                    self._region(),
                    response["repositoryName"],
                    response["imageId"]["imageDigest"],
                )
            elif operation == "BatchGetImage":
                name_images_as_requested(request, response)
            elif operation == "DescribeImageScanFindings":
                gateway.shape_findings(self._region(), request, response)
            elif operation in LIFECYCLE_OPERATIONS:
                with gateway.lock:
                    restore_lifecycle_policy(gateway.lifecycle_stand_ins, self._region(), operation, request, response)
            return json.dumps(response).encode()

        def _ecr_error(self, code: str, message: str) -> None:
            """An ECR error as the JSON protocol carries it (botocore raises `code`)."""
            payload = json.dumps({"__type": code, "message": message}).encode()
            self._send(400, payload, {"Content-Type": "application/x-amz-json-1.1", "x-amzn-ErrorType": code})

        def _sts_error(self, refusal: StsRefusal) -> None:
            xml = (
                '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
                f"<Error><Type>Sender</Type><Code>{refusal.code}</Code>"
                f"<Message>{html.escape(refusal.message)}</Message></Error>"
                "<RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>"
            )
            self._send(refusal.status, xml.encode(), {"Content-Type": "text/xml"})

    return Handler


def main() -> None:
    config = StackConfig.load()
    serve(config.gateway_port, make_handler(Gateway(config)), f"AWS gateway on {config.gateway_url} in front of moto")


if __name__ == "__main__":
    main()
