"""The local stack itself behaves as ECR, its registry and GitHub's token endpoint do."""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path

import boto3
import docker.errors
import jwt
import pytest
import requests

from stack import arm64, buildkit, ecr_names
from stack.client import StackClient
from stack.runner import RunnerStep, run_in_step
from tests.helpers import build_and_push, ecr_login

pytestmark = pytest.mark.stack


def push(stack: StackClient, reference: str, tag: str, auth: dict[str, str] | None) -> list[dict]:
    return list(stack.docker().api.push(reference, tag=tag, stream=True, decode=True, auth_config=auth))


def push_error(lines: list[dict]) -> str:
    return " ".join(line["error"] for line in lines if "error" in line)


def build(stack: StackClient, app_dir: Path, reference: str) -> None:
    stack.docker().images.build(path=str(app_dir), tag=reference, rm=True)


def test_push_needs_the_ecr_token_and_ecr_sees_the_registry_digest(
    stack: StackClient, app_dir: Path, unique_name: str
) -> None:
    ecr = stack.ecr()
    ecr.create_repository(repositoryName=unique_name)
    host, auth = ecr_login(stack, stack.default_account)
    assert host == f"{stack.default_account}.dkr.ecr.{stack.region}.amazonaws.com"
    reference = f"{host}/{unique_name}"
    build(stack, app_dir, f"{reference}:v1")

    assert "no basic auth credentials" in push_error(push(stack, reference, "v1", None))
    wrong = {"username": "AWS", "password": "not-the-token"}
    assert "unauthorized" in push_error(push(stack, reference, "v1", wrong))

    lines = push(stack, reference, "v1", auth)
    assert not push_error(lines)
    digest = next(line["aux"]["Digest"] for line in lines if "aux" in line)

    served = stack.registry_manifest(unique_name, "v1")
    assert served.status_code == 200
    assert served.headers["Docker-Content-Digest"] == digest
    images = ecr.describe_images(repositoryName=unique_name)["imageDetails"]
    assert [(image["imageDigest"], image["imageTags"]) for image in images] == [(digest, ["v1"])]


RESOLVE_AND_GET = """
import json, os, socket, sys, requests
seen = {}
for host in sys.argv[1:]:
    try:
        status = requests.get(f"https://{host}/v2/", timeout=10).status_code
    except requests.exceptions.SSLError as error:
        status = "SSLError"
    seen[host] = [socket.gethostbyname(host), status]
print(json.dumps({"cwd": os.getcwd(), "hosts": seen}))
"""


def test_a_steps_process_reaches_the_registries_under_their_ecr_hostnames_with_tls_verified(
    stack: StackClient, tmp_path: Path
) -> None:
    """As run_action runs the action: the genuine hostnames resolve to the registries (the fault region's
    to the fault proxy), whose certificate verifies against the step's CA bundle and not without it."""
    step = RunnerStep.in_directory(tmp_path / "runner")
    environment = step.environment(stack, None, {})
    hosts = [
        stack.config.registry(stack.default_account, stack.region).host,
        stack.config.registry(stack.other_account, stack.fault_region).host,
    ]
    addresses = ecr_names.addresses(stack.config)
    command = [sys.executable, "-c", RESOLVE_AND_GET, *hosts]

    verified = run_in_step(command, environment, timeout=60)
    assert verified.returncode == 0, verified.stderr
    seen = json.loads(verified.stdout)
    assert seen == {"cwd": os.getcwd(), "hosts": {host: [addresses[host], 401] for host in hosts}}

    without_bundle = {k: v for k, v in environment.items() if k not in ecr_names.ca_environment("")}
    unverified = run_in_step(command, without_bundle, timeout=60)
    assert unverified.returncode == 0, unverified.stderr
    assert json.loads(unverified.stdout)["hosts"] == {host: [addresses[host], "SSLError"] for host in hosts}


def test_a_manifest_pushed_by_digest_is_in_ecr_untagged(stack: StackClient, app_dir: Path, unique_name: str) -> None:
    """Pushed through the registry API without a tag (as a multi-platform image's children are): ECR lists
    it untagged and serves it by digest."""
    ecr = stack.ecr()
    ecr.create_repository(repositoryName=unique_name)
    build_and_push(stack, app_dir, unique_name, "v1")
    tagged = stack.registry_manifest(unique_name, "v1")
    variant = tagged.content + b"\n"  # the same image in other bytes: another manifest, another digest
    digest = f"sha256:{hashlib.sha256(variant).hexdigest()}"

    put = stack.put_registry_manifest(unique_name, digest, variant, tagged.headers["Content-Type"])
    assert put.status_code == 201, put.text

    details = ecr.describe_images(repositoryName=unique_name, imageIds=[{"imageDigest": digest}])["imageDetails"]
    assert [(d["imageDigest"], d.get("imageTags", [])) for d in details] == [(digest, [])]
    images = ecr.batch_get_image(repositoryName=unique_name, imageIds=[{"imageDigest": digest}])["images"]
    assert [image["imageManifest"] for image in images] == [variant.decode()]
    every = ecr.describe_images(repositoryName=unique_name)["imageDetails"]
    assert sorted(len(d.get("imageTags", [])) for d in every) == [0, 1]


def test_an_index_is_refused_unless_the_repository_has_its_children(
    stack: StackClient, app_dir: Path, unique_name: str
) -> None:
    ecr = stack.ecr()
    ecr.create_repository(repositoryName=unique_name)
    digest = build_and_push(stack, app_dir, unique_name, "v1")
    served = stack.registry_manifest(unique_name, digest)
    child = {
        "mediaType": served.headers["Content-Type"],
        "digest": digest,
        "size": len(served.content),
        "platform": {"architecture": "amd64", "os": "linux"},
    }
    elsewhere = {**child, "digest": f"sha256:{'0' * 64}", "platform": {"architecture": "arm64", "os": "linux"}}
    list_type = "application/vnd.docker.distribution.manifest.list.v2+json"

    def put_index(children: list[dict]) -> dict:
        index = json.dumps({"schemaVersion": 2, "mediaType": list_type, "manifests": children})
        return ecr.put_image(
            repositoryName=unique_name, imageManifest=index, imageManifestMediaType=list_type, imageTag="multi"
        )

    with pytest.raises(ecr.exceptions.ReferencedImagesNotFoundException, match=elsewhere["digest"]):
        put_index([child, elsewhere])
    assert stack.registry_manifest(unique_name, "multi").status_code == 404
    assert [d.get("imageTags") for d in ecr.describe_images(repositoryName=unique_name)["imageDetails"]] == [["v1"]]

    put_index([child])
    assert stack.registry_manifest(unique_name, "multi").status_code == 200


def test_pull_by_digest_through_the_engine(stack: StackClient, app_dir: Path, unique_name: str) -> None:
    stack.ecr().create_repository(repositoryName=unique_name)
    host, auth = ecr_login(stack, stack.default_account)
    reference = f"{host}/{unique_name}"
    build(stack, app_dir, f"{reference}:v1")
    digest = next(line["aux"]["Digest"] for line in push(stack, reference, "v1", auth) if "aux" in line)
    stack.docker().images.remove(f"{reference}:v1", force=True)

    pulled = stack.docker().images.pull(f"{reference}@{digest}", auth_config=auth)
    assert f"{reference}@{digest}" in pulled.attrs["RepoDigests"]


def test_accounts_have_separate_registries(stack: StackClient, app_dir: Path, unique_name: str) -> None:
    stack.ecr(stack.other_account).create_repository(repositoryName=unique_name)
    host, auth = ecr_login(stack, stack.other_account)
    assert host.startswith(f"{stack.other_account}.dkr.ecr.")
    reference = f"{host}/{unique_name}"
    build(stack, app_dir, f"{reference}:v1")
    _, first_account_auth = ecr_login(stack, stack.default_account)
    assert "unauthorized" in push_error(push(stack, reference, "v1", first_account_auth))
    assert not push_error(push(stack, reference, "v1", auth))
    assert stack.ecr(stack.other_account).describe_images(repositoryName=unique_name)["imageDetails"]
    assert stack.registry_manifest(unique_name, "v1", account_id=stack.default_account).status_code == 404


def test_api_put_image_adds_the_tag_in_the_registry(stack: StackClient, app_dir: Path, unique_name: str) -> None:
    ecr = stack.ecr()
    ecr.create_repository(repositoryName=unique_name)
    host, auth = ecr_login(stack, stack.default_account)
    reference = f"{host}/{unique_name}"
    build(stack, app_dir, f"{reference}:v1")
    push(stack, reference, "v1", auth)
    image = ecr.batch_get_image(repositoryName=unique_name, imageIds=[{"imageTag": "v1"}])["images"][0]

    ecr.put_image(repositoryName=unique_name, imageManifest=image["imageManifest"], imageTag="v2")

    served = stack.registry_manifest(unique_name, "v2")
    assert served.status_code == 200
    assert served.headers["Docker-Content-Digest"] == image["imageId"]["imageDigest"]


BASIC_FINDINGS = {
    "findings": [
        {
            "name": "CVE-2024-0001",
            "severity": "CRITICAL",
            "uri": "https://example.test/CVE-2024-0001",
            "attributes": [
                {"key": "package_name", "value": "openssl"},
                {"key": "package_version", "value": "3.0.1"},
            ],
        },
        {
            "name": "CVE-2024-0002",
            "severity": "LOW",
            "uri": "https://example.test/CVE-2024-0002",
            "attributes": [],
        },
    ],
    "findingSeverityCounts": {"CRITICAL": 1, "LOW": 1},
}


def scan_response(repository: str, findings: dict, status: str = "COMPLETE") -> dict:
    return {
        "repositoryName": repository,
        "imageId": {},
        "imageScanStatus": {"status": status, "description": "fixture"},
        "imageScanFindings": findings,
    }


def test_scan_on_push_serves_the_fixture_findings(stack: StackClient, app_dir: Path, unique_name: str) -> None:
    ecr = stack.ecr()
    ecr.create_repository(repositoryName=unique_name, imageScanningConfiguration={"scanOnPush": True})
    stack.scan_results(scan_response(unique_name, BASIC_FINDINGS))
    digest = build_and_push(stack, app_dir, unique_name, "v1")

    result = ecr.describe_image_scan_findings(repositoryName=unique_name, imageId={"imageDigest": digest})
    assert result["imageScanStatus"]["status"] == "COMPLETE"
    assert [f["name"] for f in result["imageScanFindings"]["findings"]] == ["CVE-2024-0001", "CVE-2024-0002"]


def test_no_scan_without_scan_on_push(stack: StackClient, app_dir: Path, unique_name: str) -> None:
    ecr = stack.ecr()
    ecr.create_repository(repositoryName=unique_name)
    digest = build_and_push(stack, app_dir, unique_name, "v1")
    with pytest.raises(ecr.exceptions.ScanNotFoundException):
        ecr.describe_image_scan_findings(repositoryName=unique_name, imageId={"imageDigest": digest})


def test_scan_stays_in_progress_for_the_delay_then_completes(
    stack: StackClient, app_dir: Path, unique_name: str
) -> None:
    ecr = stack.ecr()
    ecr.create_repository(repositoryName=unique_name, imageScanningConfiguration={"scanOnPush": True})
    stack.scan_results(scan_response(unique_name, BASIC_FINDINGS))
    stack.scan_delay(unique_name, 1.5)
    digest = build_and_push(stack, app_dir, unique_name, "v1")
    image_id = {"imageDigest": digest}

    first = ecr.describe_image_scan_findings(repositoryName=unique_name, imageId=image_id)
    assert first["imageScanStatus"]["status"] == "IN_PROGRESS"
    assert "imageScanFindings" not in first
    time.sleep(1.6)
    assert (
        ecr.describe_image_scan_findings(repositoryName=unique_name, imageId=image_id)["imageScanStatus"]["status"]
        == "COMPLETE"
    )


def test_findings_come_in_pages(stack: StackClient, app_dir: Path, unique_name: str) -> None:
    ecr = stack.ecr()
    ecr.create_repository(repositoryName=unique_name, imageScanningConfiguration={"scanOnPush": True})
    many = [
        {"packageVulnerabilityDetails": {"vulnerabilityId": f"CVE-2024-{n:04}"}, "severity": "HIGH"} for n in range(250)
    ]
    stack.scan_results(scan_response(unique_name, {"enhancedFindings": many, "findingSeverityCounts": {"HIGH": 250}}))
    digest = build_and_push(stack, app_dir, unique_name, "v1")

    paginator = ecr.get_paginator("describe_image_scan_findings")
    pages = list(paginator.paginate(repositoryName=unique_name, imageId={"imageDigest": digest}))
    assert [len(page["imageScanFindings"]["enhancedFindings"]) for page in pages] == [100, 100, 50]
    ids = [
        f["packageVulnerabilityDetails"]["vulnerabilityId"]
        for p in pages
        for f in p["imageScanFindings"]["enhancedFindings"]
    ]
    assert ids == [f"CVE-2024-{n:04}" for n in range(250)]


def test_oidc_endpoint_refuses_a_wrong_bearer_token(stack: StackClient) -> None:
    job = stack.github_job()
    reply = requests.get(
        f"{job.request_url}&audience=sts.amazonaws.com", headers={"Authorization": "Bearer nope"}, timeout=5
    )
    assert reply.status_code == 401
    assert requests.get(f"{job.request_url}&audience=x", timeout=5).status_code == 401


def test_oidc_token_has_githubs_claims(stack: StackClient) -> None:
    job = stack.github_job(repository="acme/widgets", ref="refs/heads/release")
    reply = requests.get(
        f"{job.request_url}&audience=sts.amazonaws.com",
        headers={"Authorization": f"Bearer {job.request_token}"},
        timeout=5,
    )
    assert reply.status_code == 200
    claims = jwt.decode(reply.json()["value"], options={"verify_signature": False})
    assert claims["iss"] == "https://token.actions.githubusercontent.com"
    assert claims["aud"] == "sts.amazonaws.com"
    assert claims["sub"] == "repo:acme/widgets:ref:refs/heads/release"
    assert claims["job_workflow_ref"] == "acme/widgets/.github/workflows/build.yml@refs/heads/release"
    assert {"repository", "ref", "sha", "run_id", "exp", "iat"} <= claims.keys()


def web_identity(stack: StackClient, job_claims: dict, role_arn: str) -> dict:
    job = stack.github_job(**job_claims)
    token = requests.get(
        f"{job.request_url}&audience=sts.amazonaws.com",
        headers={"Authorization": f"Bearer {job.request_token}"},
        timeout=5,
    ).json()["value"]
    sts = boto3.client("sts", region_name=stack.region, endpoint_url=stack.config.gateway_url)
    return sts.assume_role_with_web_identity(RoleArn=role_arn, RoleSessionName="test", WebIdentityToken=token)


def test_sts_honours_the_roles_trust_policy(stack: StackClient, unique_name: str) -> None:
    role = stack.github_role(unique_name.replace("/", "-"), subjects=("repo:acme/widgets:ref:refs/heads/main",))
    granted = web_identity(stack, {"repository": "acme/widgets"}, role)
    assert granted["Credentials"]["AccessKeyId"]

    sts_errors = boto3.client("sts", region_name=stack.region).exceptions
    with pytest.raises(sts_errors.ClientError, match="AccessDenied"):
        web_identity(stack, {"repository": "acme/other"}, role)


def test_sts_credentials_act_in_the_roles_account(stack: StackClient, unique_name: str) -> None:
    role = stack.github_role(unique_name.replace("/", "-"), account_id=stack.other_account)
    credentials = web_identity(stack, {}, role)["Credentials"]
    session = boto3.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=stack.region,
    )
    identity = session.client("sts", endpoint_url=stack.config.gateway_url).get_caller_identity()
    assert identity["Account"] == stack.other_account


def test_engine_is_the_stacks_own(stack: StackClient) -> None:
    info = stack.docker().info()
    assert info["DockerRootDir"].startswith(str(stack.config.root))
    with pytest.raises(docker.errors.ImageNotFound):
        stack.docker().images.get("image-that-was-never-built")


# arm64 and BuildKit ---------------------------------------------------------------------------------
def buildkit_build(stack: StackClient, app_dir: Path, reference: str, platform: str) -> None:
    messages = buildkit.build(stack.config, app_dir, tag=reference, platform=platform)
    assert buildkit.build_error(messages) is None, buildkit.build_error(messages)


def test_arm64_emulation_is_registered_with_the_fix_binary_flag(stack: StackClient) -> None:
    entry = arm64.binfmt_entry()
    assert entry["enabled"] == "enabled"
    assert "F" in entry["flags"]
    assert Path(entry["interpreter"]).resolve() == arm64.QEMU_AARCH64
    assert arm64.emulation_problem(stack.config) is None


def test_an_arm64_image_runs_under_emulation(stack: StackClient, multiarch_app_dir: Path, unique_name: str) -> None:
    reference = f"{unique_name}:arm64"
    buildkit_build(stack, multiarch_app_dir, reference, "linux/arm64")
    engine = stack.docker()
    assert engine.images.get(reference).attrs["Architecture"] == "arm64"
    output = engine.containers.run(reference, ["uname", "-m"], platform="linux/arm64", remove=True)
    assert output.decode().strip() == "aarch64"
    amd64 = f"{unique_name}:amd64"
    buildkit_build(stack, multiarch_app_dir, amd64, "linux/amd64")
    assert engine.containers.run(amd64, ["cat", "/arch"], remove=True).decode().strip() == "x86_64"


def test_buildkit_trusts_the_registries_certificate(
    stack: StackClient, app_dir: Path, unique_name: str, tmp_path: Path
) -> None:
    """BuildKit verifies the registry's certificate (the classic pull does not, on loopback): a base image
    pulls through TLS, anonymously to a 401, and with the ECR login to a build."""
    name = unique_name
    stack.ecr().create_repository(repositoryName=name)
    build_and_push(stack, app_dir, name, "v1")
    host, auth = ecr_login(stack, stack.default_account)
    stack.docker().images.remove(f"{host}/{name}:v1", force=True)
    context = tmp_path / "context"
    context.mkdir()
    (context / "Dockerfile").write_text(f"FROM {host}/{name}:v1\nRUN echo built on the base\n")
    docker_config = tmp_path / "docker-config"
    docker_config.mkdir()

    anonymous = buildkit.cli_build(stack.config, context, docker_config=docker_config)
    assert anonymous.returncode != 0
    assert "401 Unauthorized" in anonymous.stderr
    assert "x509" not in anonymous.stderr

    buildkit.cli_login(stack.config, docker_config, host, auth["username"], auth["password"])
    logged_in = buildkit.cli_build(stack.config, context, docker_config=docker_config)
    assert logged_in.returncode == 0, logged_in.stderr
    assert "built on the base" in logged_in.stderr


LIST_TYPES = {
    "docker": (
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ),
    "oci": ("application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.v2+json"),
}


@pytest.mark.parametrize("kind", LIST_TYPES)
def test_an_image_index_put_through_the_api_is_served_and_pulls_per_platform(
    stack: StackClient, multiarch_app_dir: Path, unique_name: str, kind: str
) -> None:
    list_type, child_type = LIST_TYPES[kind]
    ecr = stack.ecr()
    ecr.create_repository(repositoryName=unique_name)
    host, auth = ecr_login(stack, stack.default_account)
    reference = f"{host}/{unique_name}"
    children = []
    for architecture in ("amd64", "arm64"):
        buildkit_build(stack, multiarch_app_dir, f"{reference}:{architecture}", f"linux/{architecture}")
        pushed = next(line["aux"] for line in push(stack, reference, architecture, auth) if "aux" in line)
        children.append(
            {
                "mediaType": child_type,
                "digest": pushed["Digest"],
                "size": pushed["Size"],
                "platform": {"architecture": architecture, "os": "linux"},
            }
        )
    manifest = json.dumps({"schemaVersion": 2, "mediaType": list_type, "manifests": children}, indent=3)
    digest = f"sha256:{hashlib.sha256(manifest.encode()).hexdigest()}"

    put = ecr.put_image(
        repositoryName=unique_name, imageManifest=manifest, imageManifestMediaType=list_type, imageTag="multi"
    )
    assert put["image"]["imageId"]["imageDigest"] == digest

    served = stack.registry_manifest(unique_name, "multi")
    assert served.status_code == 200
    assert served.headers["Docker-Content-Digest"] == digest
    assert served.headers["Content-Type"] == list_type
    assert served.content == manifest.encode()
    described = ecr.describe_images(repositoryName=unique_name, imageIds=[{"imageTag": "multi"}])["imageDetails"]
    assert [image["imageDigest"] for image in described] == [digest]

    engine = stack.docker()
    for architecture in ("amd64", "arm64"):
        engine.images.remove(f"{reference}:{architecture}", force=True)
    pulled = engine.images.pull(reference, tag="multi", platform="linux/arm64", auth_config=auth)
    assert pulled.attrs["Architecture"] == "arm64"
    assert f"{reference}@{digest}" in pulled.attrs["RepoDigests"]
    output = engine.containers.run(f"{reference}:multi", ["cat", "/arch"], platform="linux/arm64", remove=True)
    assert output.decode().strip() == "aarch64"
