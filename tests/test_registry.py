"""Push by digest through the registry API: manifests and indexes, deterministic layers, errors; and, against
the stack, an untagged push that the registry serves, the engine pulls and runs, and a re-run skips."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import os
import re
import tarfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from ecr_action.build import RegistryCredentials
from ecr_action.errors import (
    AccessDeniedError,
    DockerEngineError,
    PushError,
    RegistryLoginError,
    RepositoryMissingError,
)
from ecr_action.registry import (
    DOCKER_CONFIG,
    DOCKER_LAYER,
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    OCI_INDEX,
    OCI_MANIFEST,
    Descriptor,
    Platform,
    _Retry,
    _Transient,
    export_image,
    gzip_layer,
    image_index,
    image_manifest,
    push_by_digest,
    registry_failure,
)
from ecr_action.retries import RetryPolicy
from stack import buildkit
from stack.apps import write_app
from stack.client import StackClient


def sha256(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def child(name: str, media_type: str = DOCKER_MANIFEST) -> Descriptor:
    return Descriptor(media_type, sha256(name.encode()), 500)


# Manifests and indexes -----------------------------------------------------------------------------


def test_the_manifest_names_the_config_and_the_gzipped_layers_in_order() -> None:
    config = Descriptor(DOCKER_CONFIG, sha256(b"config"), 6)
    layers = [Descriptor(DOCKER_LAYER, sha256(b"one"), 3), Descriptor(DOCKER_LAYER, sha256(b"two"), 3)]
    manifest = image_manifest(config, layers)
    assert json.loads(manifest.document) == {
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": {"mediaType": DOCKER_CONFIG, "size": 6, "digest": sha256(b"config")},
        "layers": [
            {"mediaType": DOCKER_LAYER, "size": 3, "digest": sha256(b"one")},
            {"mediaType": DOCKER_LAYER, "size": 3, "digest": sha256(b"two")},
        ],
    }
    assert (manifest.media_type, manifest.digest) == (DOCKER_MANIFEST, sha256(manifest.document.encode()))
    assert manifest.size == len(manifest.document.encode())


@pytest.mark.parametrize(
    ("children", "media_type", "platforms"),
    [
        (
            [(child("a"), "linux/amd64"), (child("b"), "linux/arm64")],
            DOCKER_MANIFEST_LIST,
            [{"os": "linux", "architecture": "amd64"}, {"os": "linux", "architecture": "arm64"}],
        ),
        (
            [(child("a", OCI_MANIFEST), "linux/amd64"), (child("b", OCI_MANIFEST), "linux/arm/v7")],
            OCI_INDEX,
            [{"os": "linux", "architecture": "amd64"}, {"os": "linux", "architecture": "arm", "variant": "v7"}],
        ),
        # A Docker manifest list may not refer to an OCI manifest; an OCI index may refer to both.
        (
            [(child("a"), "linux/amd64"), (child("b", OCI_MANIFEST), "linux/arm64/v8")],
            OCI_INDEX,
            [{"os": "linux", "architecture": "amd64"}, {"os": "linux", "architecture": "arm64", "variant": "v8"}],
        ),
    ],
)
def test_an_index_matches_its_childrens_media_types(
    children: list[tuple[Descriptor, str]], media_type: str, platforms: list[dict[str, str]]
) -> None:
    index = image_index([(descriptor, Platform.parse(platform)) for descriptor, platform in children])
    document = json.loads(index.document)
    assert (index.media_type, document["mediaType"], document["schemaVersion"]) == (media_type, media_type, 2)
    assert [entry["platform"] for entry in document["manifests"]] == platforms
    assert [(e["mediaType"], e["digest"], e["size"]) for e in document["manifests"]] == [
        (d.media_type, d.digest, d.size) for d, _ in children
    ]


@pytest.mark.parametrize(
    ("children", "problem"),
    [
        ([], "at least one child"),
        ([(child("a"), "linux/amd64"), (child("b"), "linux/amd64")], "two children for linux/amd64"),
        ([(child("a", DOCKER_MANIFEST_LIST), "linux/amd64")], "not a single-platform image manifest"),
    ],
)
def test_an_index_refuses_what_ecr_could_not_serve(children: list[tuple[Descriptor, str]], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        image_index([(descriptor, Platform.parse(platform)) for descriptor, platform in children])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("linux/amd64", Platform("linux", "amd64")),
        (" linux/arm/v7 ", Platform("linux", "arm", "v7")),
        ("linux", None),
        ("linux//v7", None),
        ("linux/arm64/v8/x", None),
    ],
)
def test_platform_parse(text: str, expected: Platform | None) -> None:
    if expected is None:
        with pytest.raises(ValueError, match="os/arch"):
            Platform.parse(text)
    else:
        assert Platform.parse(text) == expected
        assert str(expected) == text.strip()


# Layers ----------------------------------------------------------------------------------------------


def test_gzip_of_the_same_layer_gives_the_same_digest(tmp_path: Path) -> None:
    layer = os.urandom(3 * 1024 * 1024) + b"some text\n" * 100_000
    first, diff_id = gzip_layer(io.BytesIO(layer), tmp_path / "1.gz")
    time.sleep(1.1)  # a gzip header with a time in it would now differ
    second, _ = gzip_layer(io.BytesIO(layer), tmp_path / "2.gz")
    packed = (tmp_path / "1.gz").read_bytes()
    assert first == second
    assert (first.digest, first.size, first.media_type) == (sha256(packed), len(packed), DOCKER_LAYER)
    assert diff_id == sha256(layer)
    assert gzip.decompress(packed) == layer


def save_tar(
    layers: list[bytes], *, layout: str = "legacy", duplicate_last: bool = False
) -> tuple[bytes, str, list[str]]:
    """(a `docker save` tar, the image id, its diff ids) as engines write it: `legacy` (before 25: a
    directory a layer, in name order, a layer seen twice saved once and linked), `oci` (from 25: blobs
    named by digest, uncompressed layers), `containerd` (the containerd image store: gzipped layers)."""
    layers = [*layers, layers[-1]] if duplicate_last else layers
    diff_ids = [sha256(layer) for layer in layers]
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": diff_ids}})
    image_id = sha256(config.encode())
    files: dict[str, bytes] = {}
    links: dict[str, str] = {}
    if layout == "legacy":
        directories = [hashlib.sha256(f"layer{n}".encode()).hexdigest() for n in range(len(layers))]
        for n, directory in enumerate(directories):
            files[f"{directory}/VERSION"] = b"1.0"
            first = diff_ids.index(diff_ids[n])
            if first == n:
                files[f"{directory}/layer.tar"] = layers[n]
            else:
                links[f"{directory}/layer.tar"] = f"../{directories[first]}/layer.tar"
        paths, config_path = [f"{d}/layer.tar" for d in directories], f"{image_id[7:]}.json"
    else:
        blobs = layers if layout == "oci" else [gzip.compress(layer, mtime=0) for layer in layers]
        paths = [f"blobs/sha256/{sha256(blob)[7:]}" for blob in blobs]
        files.update(zip(paths, blobs, strict=True))
        config_path = f"blobs/sha256/{image_id[7:]}"
        files["oci-layout"] = b'{"imageLayoutVersion": "1.0.0"}'
    files[config_path] = config.encode()
    files["manifest.json"] = json.dumps([{"Config": config_path, "RepoTags": None, "Layers": paths}]).encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name in sorted([*files, *links]):
            info = tarfile.TarInfo(name)
            if name in links:
                info.type, info.linkname = tarfile.SYMTYPE, links[name]
                tar.addfile(info)
            else:
                info.size = len(files[name])
                tar.addfile(info, io.BytesIO(files[name]))
    return buffer.getvalue(), image_id, diff_ids


def chunks(data: bytes, size: int = 7000) -> Iterator[bytes]:
    yield from (data[start : start + size] for start in range(0, len(data), size))


@pytest.mark.parametrize("layout", ["legacy", "oci"])
def test_an_export_gives_the_config_and_each_layer_in_the_images_order(tmp_path: Path, layout: str) -> None:
    layers = [b"first layer" * 5000, os.urandom(20_000), b"third"]
    saved, image_id, diff_ids = save_tar(layers, layout=layout, duplicate_last=True)
    handed: list[str] = []
    config, blobs = export_image(
        chunks(saved), image_id, diff_ids, tmp_path, on_blob=lambda b: handed.append(b.descriptor.digest)
    )
    assert config.descriptor.digest == image_id and config.descriptor.media_type == DOCKER_CONFIG
    assert [gzip.decompress(blob.path.read_bytes()) for blob in blobs] == [*layers, layers[-1]]
    assert blobs[-1] == blobs[-2]  # a layer the image has twice is one blob, uploaded once
    assert sorted(handed) == sorted({blob.descriptor.digest for blob in blobs} | {image_id})


def test_an_export_with_compressed_layers_is_refused_naming_the_image_store(tmp_path: Path) -> None:
    saved, image_id, diff_ids = save_tar([b"layer"], layout="containerd")
    with pytest.raises(DockerEngineError, match="containerd image store"):
        export_image(chunks(saved), image_id, diff_ids, tmp_path)


def test_an_export_of_another_image_is_refused(tmp_path: Path) -> None:
    saved, _, diff_ids = save_tar([b"layer"])
    with pytest.raises(DockerEngineError, match="does not hold that one image"):
        export_image(chunks(saved), "sha256:" + "0" * 64, diff_ids, tmp_path)


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
    assert served.headers["Docker-Content-Digest"] == pushed.digest == sha256(pushed.manifest.encode())
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
