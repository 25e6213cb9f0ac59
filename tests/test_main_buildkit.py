"""The whole action with BuildKit, run as the runner runs it against the stack: a multi-platform image
(amd64 and arm64 under the stack's QEMU), per-runner images merged into one index, and build secrets
that reach the build and nowhere else."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import tarfile
import urllib.parse
import uuid
from pathlib import Path

import pytest

from stack.apps import write_multiarch_app
from stack.client import StackClient
from stack.runner import RunnerStep, run_action
from tests.helpers import app_inputs, ecr_login

pytestmark = pytest.mark.stack


@pytest.fixture
def step(tmp_path: Path, stack: StackClient) -> RunnerStep:
    step = RunnerStep.in_directory(tmp_path / "runner")
    write_multiarch_app(step.workspace / "app", marker=uuid.uuid4().hex, config=stack.config)
    return step


@pytest.fixture
def role(stack: StackClient, unique_name: str) -> str:
    return stack.github_role(unique_name.replace("/", "-"))


def run_and_pull(stack: StackClient, reference: str, command: list[str]) -> str:
    """`command`'s output in the single-platform image `reference` pulled by digest (arm64 runs under QEMU)."""
    _, auth = ecr_login(stack, stack.default_account)
    engine = stack.docker()
    name, _, digest = reference.partition("@")
    engine.api.pull(name, tag=digest, auth_config=auth)
    output = engine.containers.run(reference, command, remove=True, network_mode="none")
    return output.decode().strip()


def index_children(stack: StackClient, repository: str, digest: str) -> dict[str, str]:
    manifest = stack.registry_manifest(repository, digest).json()
    return {
        "/".join(filter(None, (m["platform"]["os"], m["platform"]["architecture"], m["platform"].get("variant")))): m[
            "digest"
        ]
        for m in manifest["manifests"]
    }


def test_two_platforms_make_one_index_whose_children_run(
    stack: StackClient, step: RunnerStep, role: str, unique_name: str
) -> None:
    inputs = app_inputs(stack, role, unique_name, tags="v1,latest", platforms="linux/amd64,linux/arm64")
    result = run_action(step.environment(stack, stack.github_job(), inputs))

    assert result.returncode == 0, result.stdout + result.stderr
    outputs = step.outputs()
    children = index_children(stack, unique_name, outputs["image-digest"])
    assert sorted(children) == ["linux/amd64", "linux/arm64"]
    for tag in ("v1", "latest"):
        assert stack.registry_manifest(unique_name, tag).headers["Docker-Content-Digest"] == outputs["image-digest"]
    repository_uri = outputs["repository-uri"]
    arm64 = run_and_pull(stack, f"{repository_uri}@{children['linux/arm64']}", ["/bin/busybox", "cat", "/arch"])
    amd64 = run_and_pull(stack, f"{repository_uri}@{children['linux/amd64']}", ["/bin/busybox", "uname", "-m"])
    assert (arm64, amd64) == ("aarch64", "x86_64")
    assert json.loads(outputs["platform-digests"]) == children
    # The children are untagged: no tag other than those asked for is left in the repository.
    described = stack.ecr().describe_images(repositoryName=unique_name)["imageDetails"]
    assert sorted(tag for image in described for tag in image.get("imageTags", [])) == ["latest", "v1"]


def test_images_built_on_separate_runners_are_merged_into_one_index(
    stack: StackClient, step: RunnerStep, role: str, unique_name: str, tmp_path: Path
) -> None:
    digests = []
    for platform in ("linux/amd64", "linux/arm64"):
        run = RunnerStep.in_directory(tmp_path / platform.replace("/", "-"))
        write_multiarch_app(run.workspace / "app", marker="same-source", config=stack.config)
        inputs = app_inputs(stack, role, unique_name, tags=platform.replace("/", "-"), platforms=platform)
        result = run_action(run.environment(stack, stack.github_job(), inputs))
        assert result.returncode == 0, result.stdout + result.stderr
        digests.append(run.outputs()["image-digest"])

    inputs = app_inputs(stack, role, unique_name, tags="v2", **{"merge-digests": "\n".join(digests)})
    merged = run_action(step.environment(stack, stack.github_job(), inputs))

    assert merged.returncode == 0, merged.stdout + merged.stderr
    assert "::group::Build" not in merged.stdout
    children = index_children(stack, unique_name, step.outputs()["image-digest"])
    assert children == {"linux/amd64": digests[0], "linux/arm64": digests[1]}


def test_merging_two_images_of_one_platform_is_refused(
    stack: StackClient, step: RunnerStep, role: str, unique_name: str
) -> None:
    result = run_action(step.environment(stack, stack.github_job(), app_inputs(stack, role, unique_name, tags="a")))
    assert result.returncode == 0, result.stdout
    first = step.outputs()["image-digest"]
    write_multiarch_app(step.workspace / "app", marker=uuid.uuid4().hex, config=stack.config)
    result = run_action(step.environment(stack, stack.github_job(), app_inputs(stack, role, unique_name, tags="b")))
    second = step.outputs()["image-digest"]

    inputs = app_inputs(stack, role, unique_name, tags="both", **{"merge-digests": f"{first},{second}"})
    merged = run_action(step.environment(stack, stack.github_job(), inputs))

    assert merged.returncode == 1
    assert merged.stdout.splitlines()[-1].startswith("::error title=Merge failed::merge-digests: ")
    assert "are both linux/amd64 images" in merged.stdout


SECRET = 'p@ss/w0rd&value="quoted" ' + uuid.uuid4().hex


def test_a_build_secret_reaches_the_build_and_nothing_else(
    stack: StackClient, step: RunnerStep, role: str, unique_name: str
) -> None:
    digest = hashlib.sha256(SECRET.encode()).hexdigest()
    # The Dockerfile holds only the secret's hash: the value written there would be in the image's history.
    (step.workspace / "app" / "Dockerfile").write_text(
        "FROM scratch\nARG TARGETARCH\nCOPY busybox-${TARGETARCH} /bin/busybox\n"
        'RUN --mount=type=secret,id=token,required=true ["/bin/busybox", "sh", "-c", '
        f'"test \\"$(/bin/busybox sha256sum < /run/secrets/token | /bin/busybox cut -d\\" \\" -f1)\\" = {digest} '
        '&& echo secret-checked"]\n'
    )
    inputs = app_inputs(stack, role, unique_name, secrets=f"token={SECRET}", scan="skip")
    result = run_action(step.environment(stack, stack.github_job(), inputs))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "secret-checked" in result.stdout
    forms = {SECRET, urllib.parse.quote(SECRET), json.dumps(SECRET)[1:-1], base64.b64encode(SECRET.encode()).decode()}
    masked = [line for line in result.stdout.splitlines() if line.startswith("::add-mask::")]
    assert f"::add-mask::{SECRET}" in masked
    shown = "\n".join(line for line in result.stdout.splitlines() if not line.startswith("::add-mask::"))
    for form in forms:
        assert form not in shown + result.stderr
        assert form not in step.summary_file.read_text() if step.summary_file.exists() else True
    # The pushed image, pulled back: neither its layers nor its history hold the value.
    image = step.outputs()["image-uri"]
    engine = stack.docker()
    _, auth = ecr_login(stack, stack.default_account)
    name, _, reference = image.partition("@")
    engine.api.pull(name, tag=reference, auth_config=auth)
    saved = b"".join(engine.api.get_image(image))
    assert SECRET.encode() not in saved
    with tarfile.open(fileobj=io.BytesIO(saved)) as archive:
        for member in archive.getmembers():
            if member.name.endswith(".tar"):
                layer = archive.extractfile(member)
                assert layer is not None and SECRET.encode() not in layer.read()


def test_a_missing_required_secret_is_one_error_naming_it(
    stack: StackClient, step: RunnerStep, role: str, unique_name: str
) -> None:
    (step.workspace / "app" / "Dockerfile").write_text(
        "FROM scratch\nARG TARGETARCH\nCOPY busybox-${TARGETARCH} /bin/busybox\n"
        'RUN --mount=type=secret,id=npmrc,required=true ["/bin/busybox", "true"]\n'
    )
    result = run_action(step.environment(stack, stack.github_job(), app_inputs(stack, role, unique_name)))

    assert result.returncode == 1
    errors = [line for line in result.stdout.splitlines() if line.startswith("::error")]
    assert len(errors) == 1 and "secret npmrc not found" in errors[0]
