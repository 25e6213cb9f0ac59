"""Push by digest through the registry API: manifests and indexes, deterministic layers, errors; and, against
the stack, an untagged push that the registry serves, the engine pulls and runs, and a re-run skips."""

from __future__ import annotations

import base64
import json
import os
import re
import time
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest

from ecr_action.errors import (
    AccessDeniedError,
    PushError,
    RegistryLoginError,
    RepositoryMissingError,
)
from ecr_action.imagelayout import (
    DOCKER_MANIFEST_LIST,
    Platform,
    image_index,
    sha256_digest,
)
from ecr_action.registry import _Retry, _Transient, push_by_digest, registry_failure
from ecr_action.retries import RetryPolicy
from ecr_action.secrets import RegistryCredentials
from stack import buildkit
from stack.apps import write_app
from stack.client import StackClient

# Errors and retries ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "errors", "kind", "words"),
    [
        (401, {"UNAUTHORIZED": "authentication required"}, RegistryLoginError, ["registry-id", "HTTP 401"]),
        (403, {"DENIED": "not authorized"}, AccessDeniedError, ["ecr:InitiateLayerUpload", "ecr:PutImage"]),
        (400, {"DENIED": "denied"}, AccessDeniedError, ["ecr:UploadLayerPart", "ecr:CompleteLayerUpload"]),
        (404, {"NAME_UNKNOWN": "The repository does not exist"}, RepositoryMissingError, ["create-repository"]),
        (503, {}, _Transient, ["HTTP 503"]),
        (429, {"TOOMANYREQUESTS": "slow down"}, _Transient, ["HTTP 429", "slow down"]),
        (400, {"MANIFEST_INVALID": "bad"}, PushError, ["MANIFEST_INVALID: bad", "uploading x"]),
    ],
)
def test_registry_failures_are_classified(status: int, errors: dict[str, str], kind: type, words: list[str]) -> None:
    error = registry_failure(status, errors, "host/repo", "uploading x")
    assert type(error) is kind
    assert all(word in str(error) for word in words), str(error)


def test_a_transient_failure_is_retried_with_a_line_each_then_fails_once() -> None:
    log: list[str] = []
    sleeps: list[float] = []

    def always_busy() -> None:
        raise _Transient("HTTP 503")

    with pytest.raises(PushError, match=r"upload of sha256:ab to repo failed after 3 attempts \(HTTP 503\)"):
        _Retry(RetryPolicy(3, 600), log.append, sleeps.append)("upload of sha256:ab to repo", always_busy)
    assert len(log) == len(sleeps) == 2
    assert log[0].startswith("upload of sha256:ab to repo: attempt 1 of 3 failed (HTTP 503); retrying in ")


# Against the stack -----------------------------------------------------------------------------------


class Target:
    """A new repository in the stack's ECR, its registry login, and pushes into it."""

    def __init__(self, stack: StackClient, repository: str, region: str | None = None) -> None:
        self.stack, self.repository, self.region = stack, repository, region or stack.region
        session = boto3.Session(aws_access_key_id="AKIATEST", aws_secret_access_key="x", region_name=self.region)
        self.ecr = session.client("ecr", endpoint_url=stack.config.gateway_url)
        self.ecr.create_repository(repositoryName=repository)
        data = self.ecr.get_authorization_token()["authorizationData"][0]
        username, password = base64.b64decode(data["authorizationToken"]).decode().split(":", 1)
        self.login = RegistryCredentials(data["proxyEndpoint"].removeprefix("https://"), username, password)
        self.log: list[str] = []

    def push(self, image_id: str, **changes: Any):
        arguments: dict[str, Any] = {
            "repository": self.repository,
            "login": self.login,
            "retry": RetryPolicy(3, 60),
            "log": self.log.append,
            "sleep": lambda _: None,
            **changes,
        }
        return push_by_digest(self.stack.docker().api, image_id, **arguments)

    def pull_and_run(self, reference: str, command: list[str], platform: str | None = None) -> str:
        engine = self.stack.docker()
        auth = {"username": self.login.username, "password": self.login.password}
        # The Engine API's pull takes a tag or a digest as `tag`.
        name, _, tag = reference.partition("@") if "@" in reference else reference.rpartition(":")
        engine.api.pull(name, tag=tag, platform=platform, auth_config=auth)
        output = engine.containers.run(reference, command, remove=True, network_mode="none")
        return output.decode()


def build(stack: StackClient, directory: Path) -> str:
    return stack.docker().images.build(path=str(directory), rm=True)[0].id


@pytest.fixture
def target(stack: StackClient, unique_name: str, ecr_hosts: StackClient) -> Target:
    return Target(stack, unique_name)


@pytest.fixture
def fault_target(stack: StackClient, unique_name: str, ecr_hosts: StackClient) -> Target:
    """A repository whose registry is reached through the fault proxy."""
    return Target(stack, unique_name, region=stack.fault_region)


@pytest.fixture
def image_id(stack: StackClient, app_dir: Path) -> str:
    """The engine's image of `app_dir` (whose index.html holds a marker unique to the test)."""
    return build(stack, app_dir)


@pytest.mark.stack
def test_an_image_pushed_by_digest_is_served_pulled_and_run(
    stack: StackClient, target: Target, app_dir: Path, image_id: str, unique_name: str
) -> None:
    pushed = target.push(image_id)

    served = stack.registry_manifest(unique_name, pushed.digest)
    assert served.status_code == 200 and served.content.decode() == pushed.manifest
    assert served.headers["Docker-Content-Digest"] == pushed.digest == sha256_digest(pushed.manifest.encode())
    assert json.loads(pushed.manifest)["config"]["digest"] == image_id
    assert pushed.uploaded_blobs == 1 + len(json.loads(pushed.manifest)["layers"])
    assert stack.registry_manifest(unique_name, "latest").status_code == 404  # untagged
    reference = f"{target.login.registry}/{unique_name}@{pushed.digest}"
    served_page = target.pull_and_run(reference, ["/bin/busybox", "cat", "/www/index.html"])
    assert served_page == (app_dir / "index.html").read_text()

    again = target.push(image_id)
    assert (again.digest, again.uploaded_blobs, again.uploaded_bytes) == (pushed.digest, 0, 0)
    assert target.log == []


@pytest.mark.stack
def test_ecr_lists_an_image_pushed_by_digest_as_untagged(target: Target, image_id: str, unique_name: str) -> None:
    pushed = target.push(image_id)
    details = target.ecr.describe_images(repositoryName=unique_name, imageIds=[{"imageDigest": pushed.digest}])
    assert details["imageDetails"][0].get("imageTags", []) == []


@pytest.mark.stack
def test_a_wrong_registry_password_is_a_login_error_that_does_not_show_it(target: Target, image_id: str) -> None:
    wrong = RegistryCredentials(target.login.registry, target.login.username, "not-the-password-" + uuid.uuid4().hex)
    with pytest.raises(RegistryLoginError) as raised:
        target.push(image_id, login=wrong)
    assert "HTTP 401" in str(raised.value) and wrong.password not in str(raised.value)
    assert target.log == []  # not retried


@pytest.mark.stack
def test_each_blob_upload_is_retried_on_its_own(
    stack: StackClient, fault_target: Target, image_id: str, unique_name: str
) -> None:
    """Through the fault proxy: the first blob PUT gets a 503, the next a reset connection; both retried."""
    blob_put = {"method": "PUT", "path": "/blobs/uploads/", "repository": unique_name}
    stack.add_fault("registry", blob_put, {"status": 503, "body": "busy"})
    stack.add_fault("registry", blob_put, {"reset": True})
    try:
        pushed = fault_target.push(image_id)
    finally:
        stack.clear_faults()
    assert len(fault_target.log) == 2, fault_target.log
    reasons = sorted(line.partition("failed (")[2].partition(")")[0] for line in fault_target.log)
    assert reasons == ["HTTP 503", "the connection to the registry failed"]
    # Concurrent uploads: the reset may hit another blob's first PUT or the 503'd blob's second.
    assert all(
        re.match(r"upload of sha256:\w+ to test/\S+: attempt [12] of 3 failed", line) for line in fault_target.log
    )
    assert not any("?" in line or "_state" in line or fault_target.login.password in line for line in fault_target.log)
    assert stack.registry_manifest(unique_name, pushed.digest, region=stack.fault_region).status_code == 200


@pytest.mark.stack
def test_a_registry_that_keeps_failing_fails_the_push_after_the_attempts(
    stack: StackClient, fault_target: Target, image_id: str, unique_name: str
) -> None:
    stack.add_fault("registry", {"method": "POST", "repository": unique_name}, {"status": 502}, times=None)
    try:
        with pytest.raises(PushError, match=r"failed after 2 attempts \(HTTP 502\).*'retries'"):
            fault_target.push(image_id, retry=RetryPolicy(2, 60))
    finally:
        stack.clear_faults()


@pytest.mark.stack
def test_two_platforms_pushed_by_digest_join_one_index_that_pulls_per_platform(
    stack: StackClient, target: Target, multiarch_app_dir: Path, unique_name: str
) -> None:
    children = []
    for platform in ("linux/amd64", "linux/arm64"):
        messages = buildkit.build(stack.config, multiarch_app_dir, platform=platform)
        assert buildkit.build_error(messages) is None
        image_id = next(m["aux"]["ID"] for m in messages if m.get("id") == "moby.image.id")
        children.append((target.push(image_id).descriptor(), Platform.parse(platform)))
    index = image_index(children)
    assert index.media_type == DOCKER_MANIFEST_LIST
    target.ecr.put_image(
        repositoryName=unique_name, imageManifest=index.document, imageManifestMediaType=index.media_type, imageTag="v1"
    )
    reference = f"{target.login.registry}/{unique_name}:v1"
    assert target.pull_and_run(reference, ["/bin/busybox", "uname", "-m"], "linux/arm64").strip() == "aarch64"
    assert target.pull_and_run(reference, ["/bin/busybox", "cat", "/arch"], "linux/amd64").strip() == "x86_64"


@pytest.mark.stack
def test_time_a_50_mb_layer_by_digest_against_the_engines_push(
    stack: StackClient, target: Target, tmp_path: Path, unique_name: str
) -> None:
    """Prints both times (run with -s); asserts only that both pushed the same image."""
    app = write_app(tmp_path / "app", marker=uuid.uuid4().hex)
    (app / "random.bin").write_bytes(os.urandom(50 * 1024 * 1024))
    with (app / "Dockerfile").open("a") as dockerfile:
        dockerfile.write("COPY random.bin /random.bin\n")
    image_id = build(stack, app)

    started = time.monotonic()
    pushed = target.push(image_id)
    by_digest = time.monotonic() - started

    engine = stack.docker()
    engine.api.tag(image_id, f"{target.login.registry}/{unique_name}", "engine")
    auth = {"username": target.login.username, "password": target.login.password}
    started = time.monotonic()
    lines = list(
        engine.api.push(
            f"{target.login.registry}/{unique_name}", tag="engine", stream=True, decode=True, auth_config=auth
        )
    )
    by_engine = time.monotonic() - started
    assert not [line for line in lines if "error" in line]
    engine_digest = next(line["aux"]["Digest"] for line in lines if "Digest" in line.get("aux", {}))
    engine_manifest = stack.registry_manifest(unique_name, engine_digest).json()
    assert engine_manifest["config"]["digest"] == json.loads(pushed.manifest)["config"]["digest"] == image_id
    print(
        f"\n50 MiB random layer: by digest {by_digest:.2f} s ({pushed.uploaded_bytes / 2**20:.1f} MiB sent), "
        f"engine push {by_engine:.2f} s"
    )
    engine.api.remove_image(f"{target.login.registry}/{unique_name}:engine")
