"""The action's image, built from the repository's Dockerfile and run the way GitHub's runner runs a
container action, against the local stack: what lands in the registry and what the step outputs.

`ECR_ACTION_IMAGE=<image id>` runs these tests on an image already built instead: scripts/release tests
the exact image it is about to push."""

from __future__ import annotations

import json
import os
from pathlib import Path

import docker
import pytest

from stack.apps import write_app, write_multiarch_app
from stack.base_image import ensure_base_image
from stack.client import StackClient
from stack.config import REPO_ROOT
from stack.runner import RunnerStep
from tests.helpers import HIGH_FINDING, action_code_files, app_inputs, ecr_login, queue_findings

pytestmark = pytest.mark.stack

ACTION_IMAGE = "ecr-action:test"
# The image's size limit, uncompressed (what `docker images` shows): the runner pulls and unpacks it
# before the step starts.
SIZE_LIMIT_BYTES = 100_000_000


@pytest.fixture(scope="module")
def action_image(stack: StackClient) -> docker.models.images.Image:
    if given := os.environ.get("ECR_ACTION_IMAGE"):
        return stack.docker().images.get(given)
    # The base is made locally (nothing can be pulled here) once per machine; the build's layers are
    # cached, so only a change to the lock or the code rebuilds anything.
    base = ensure_base_image(stack.config)
    image, _ = stack.docker().images.build(
        path=str(REPO_ROOT),
        tag=ACTION_IMAGE,
        buildargs={"BASE_IMAGE": base},
        # The stack's engine has no bridge network: pip reaches PyPI through the host's.
        network_mode="host",
        rm=True,
    )
    return image


def run_as_runner(
    stack: StackClient,
    image: docker.models.images.Image,
    step: RunnerStep,
    environment: dict[str, str],
    entrypoint: list[str] | None = None,
) -> tuple[int, str]:
    """(exit code, log) of the step, run as the runner's `docker run --rm --workdir /github/workspace`."""
    container = stack.docker().containers.run(
        image.id,
        entrypoint=entrypoint,
        detach=True,
        working_dir="/github/workspace",
        environment=environment,
        volumes=step.container_mounts(stack),
        # The runner puts the step on the job's network; here that is the host's, where the stack's
        # gateway and OIDC endpoint listen on loopback.
        network_mode="host",
        extra_hosts=step.container_hosts(stack),
    )
    try:
        status = container.wait(timeout=300)["StatusCode"]
        return status, container.logs().decode()
    finally:
        container.remove(force=True)


def test_the_image_built_from_the_dockerfile_pushes_and_reports_like_the_action(
    stack: StackClient, action_image: docker.models.images.Image, tmp_path: Path, unique_name: str
) -> None:
    step = RunnerStep.in_directory(tmp_path / "runner")
    write_app(step.workspace / "app", marker=tmp_path.name)
    queue_findings(stack, unique_name, HIGH_FINDING)
    role = stack.github_role(unique_name.replace("/", "-"))
    environment = step.container_environment(stack, stack.github_job(), app_inputs(stack, role, unique_name))

    status, log = run_as_runner(stack, action_image, step, environment)

    assert status == 0, log
    outputs = step.outputs()
    digest = outputs["image-digest"]
    host = f"{stack.default_account}.dkr.ecr.{stack.region}.amazonaws.com"
    assert outputs["image-uri"] == f"{host}/{unique_name}@{digest}"
    # The default tag, the short commit SHA, as the action computes it when `tags` is left empty.
    assert json.loads(outputs["tags"]) == ["8f14e45"]
    manifest = stack.registry_manifest(unique_name, "8f14e45")
    assert manifest.status_code == 200
    assert manifest.headers["Docker-Content-Digest"] == digest
    assert outputs["gate"] == "pass"
    # Workflow commands reach the runner's log from the container, relative to the mounted workspace.
    assert "::warning file=app/Dockerfile,line=1,title=CVE-2024-1111 in busybox::" in log
    assert digest in step.summary_file.read_text()


def test_the_image_builds_two_platforms_with_a_secret_as_the_runner_runs_it(
    stack: StackClient, action_image: docker.models.images.Image, tmp_path: Path, unique_name: str
) -> None:
    step = RunnerStep.in_directory(tmp_path / "runner")
    app = write_multiarch_app(step.workspace / "app", marker=tmp_path.name, config=stack.config)
    secret = f"container-secret-{tmp_path.name}"
    dockerfile = (app / "Dockerfile").read_text()
    (app / "Dockerfile").write_text(
        dockerfile
        + 'RUN --mount=type=secret,id=token,required=true ["/bin/busybox", "test", "-s", "/run/secrets/token"]\n'
    )
    role = stack.github_role(unique_name.replace("/", "-"))
    inputs = app_inputs(
        stack, role, unique_name, platforms="linux/amd64,linux/arm64", secrets=f"token={secret}", scan="skip"
    )
    environment = step.container_environment(stack, stack.github_job(), inputs)

    status, log = run_as_runner(stack, action_image, step, environment)

    assert status == 0, log
    assert secret not in log.replace(f"::add-mask::{secret}", "")
    platforms = json.loads(step.outputs()["platform-digests"])
    assert sorted(platforms) == ["linux/amd64", "linux/arm64"]
    index = stack.registry_manifest(unique_name, step.outputs()["image-digest"]).json()
    assert sorted(child["digest"] for child in index["manifests"]) == sorted(platforms.values())


PUSH_BY_DIGEST = """
import os, sys, docker
from ecr_action.registry import push_by_digest
from ecr_action.retries import RetryPolicy
from ecr_action.secrets import RegistryCredentials
host, repository, image_id = sys.argv[1:]
login = RegistryCredentials(host, "AWS", os.environ["REGISTRY_PASSWORD"])
pushed = push_by_digest(docker.from_env().api, image_id, repository=repository, login=login,
                        retry=RetryPolicy(2, 60), log=print)
print(pushed.digest)
"""


def test_the_image_pushes_through_the_registry_api_under_the_ecr_hostname(
    stack: StackClient, action_image: docker.models.images.Image, tmp_path: Path, unique_name: str
) -> None:
    """In the action's container as the runner runs it: the ECR hostname resolves to the registry, its
    certificate verifies against the mounted CA bundle, and an untagged push lands in ECR."""
    stack.ecr().create_repository(repositoryName=unique_name)
    host, auth = ecr_login(stack, stack.default_account)
    app = write_app(tmp_path / "app", marker=tmp_path.name)
    image_id = stack.docker().images.build(path=str(app), rm=True)[0].id
    step = RunnerStep.in_directory(tmp_path / "runner")
    environment = {
        **step.container_environment(stack, None, {}),
        "PYTHONPATH": "/app",
        "REGISTRY_PASSWORD": auth["password"],
    }
    script = ["/opt/venv/bin/python", "-c", PUSH_BY_DIGEST, host, unique_name, image_id]

    status, log = run_as_runner(stack, action_image, step, environment, entrypoint=script)

    assert status == 0, log
    digest = log.split()[-1]
    assert stack.registry_manifest(unique_name, digest).status_code == 200
    details = stack.ecr().describe_images(repositoryName=unique_name, imageIds=[{"imageDigest": digest}])
    assert [d.get("imageTags", []) for d in details["imageDetails"]] == [[]]


def test_the_image_holds_only_the_action_s_code(stack: StackClient, action_image: docker.models.images.Image) -> None:
    listing = stack.docker().containers.run(
        action_image.id,
        entrypoint=["find", "/app", "-type", "f", "-not", "-name", "*.pyc"],
        network_mode="none",
        remove=True,
    )
    shipped = {Path(line).relative_to("/app") for line in listing.decode().split()}
    assert shipped == action_code_files()


def test_the_pruned_image_still_makes_the_clients_the_action_uses(
    stack: StackClient, action_image: docker.models.images.Image
) -> None:
    # botocore's data is pruned to ecr and sts in the Dockerfile: the action's modules import, and the
    # clients it makes are made, from what is left (a missing model or endpoint file fails here).
    script = (
        "import ecr_action.main, os, botocore, botocore.session\n"
        "session = botocore.session.get_session()\n"
        "for service in ('ecr', 'sts'):\n"
        "    client = session.create_client(service, region_name='eu-west-1', aws_access_key_id='a',"
        " aws_secret_access_key='b')\n"
        "    print(service, client.meta.endpoint_url)\n"
        "data = os.path.join(os.path.dirname(botocore.__file__), 'data')\n"
        "print(sorted(e for e in os.listdir(data) if os.path.isdir(os.path.join(data, e))))\n"
        # PyYAML's C parser is pruned too: the ignore-file is read by the pure-Python SafeLoader.
        "from ecr_action.ignores import parse_ignore_file\n"
        "import yaml\n"
        "entries = parse_ignore_file('- id: CVE-2024-1\\n  reason: r\\n  expires: 2099-01-31\\n', source='f')\n"
        "print(yaml.__with_libyaml__, entries[0].vulnerability_id, entries[0].expires)\n"
    )
    output = stack.docker().containers.run(
        action_image.id,
        entrypoint=["/opt/venv/bin/python", "-c", script],
        working_dir="/app",
        network_mode="none",
        remove=True,
    )
    assert output.decode().splitlines() == [
        "ecr https://api.ecr.eu-west-1.amazonaws.com",
        "sts https://sts.eu-west-1.amazonaws.com",
        "['ecr', 'sts']",
        "False CVE-2024-1 2099-01-31",
    ]


def test_the_image_is_small_and_carries_no_installer(
    stack: StackClient, action_image: docker.models.images.Image
) -> None:
    assert action_image.attrs["Size"] <= SIZE_LIMIT_BYTES
    listing = stack.docker().containers.run(
        action_image.id,
        entrypoint=[
            "/opt/venv/bin/python",
            "-c",
            "import importlib.util, shutil; print([m for m in ('pip', 'setuptools') if importlib.util.find_spec(m)],"
            " [t for t in ('apt-get', 'perl') if shutil.which(t)])",
        ],
        network_mode="none",
        remove=True,
    )
    assert listing.decode().strip() == "[] []"
