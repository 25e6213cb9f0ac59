"""The whole action building from private base images in ECR (the run's own account, another account's
repository that allows the pull, a registry the role cannot read), with both builders; and the build
cache in ECR (`cache-from`, `cache-to: inline`), run as the runner runs it against the stack."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from stack.apps import write_app
from stack.client import StackClient
from stack.runner import RunnerStep, run_action
from tests.helpers import app_inputs, build_and_push, ecr_login

pytestmark = pytest.mark.stack


@pytest.fixture
def step(tmp_path: Path) -> RunnerStep:
    return RunnerStep.in_directory(tmp_path / "runner")


@pytest.fixture
def role(stack: StackClient, unique_name: str) -> str:
    return stack.github_role(unique_name.replace("/", "-"))


@pytest.fixture
def base_name() -> str:
    return f"base-{uuid.uuid4().hex[:10]}"


def push_base(
    stack: StackClient, tmp_path: Path, repository: str, *, account_id: str | None = None, region: str | None = None
) -> str:
    """A busybox image pushed as `repository:v1` (created in `account_id`); its registry host."""
    account_id = account_id or stack.default_account
    stack.ecr(account_id, region).create_repository(repositoryName=repository)
    host = stack.config.registry(account_id, region or stack.region).host
    app = write_app(tmp_path / f"base-{account_id}", marker=uuid.uuid4().hex)
    build_and_push(stack, app, repository, "v1", account_id=account_id)
    # Not left on the engine: the build must pull it from the registry, with the login the action gives.
    stack.docker().images.remove(f"{host}/{repository}:v1")
    return host


def write_child(step: RunnerStep, base: str, *, marker: str = "child") -> None:
    """The app built on `base`: one file added to the base's busybox and page."""
    app = step.workspace / "app"
    app.mkdir(parents=True, exist_ok=True)
    (app / "marker.txt").write_text(f"{marker}\n")
    (app / "Dockerfile").write_text(f"FROM {base}\nCOPY marker.txt /www/marker.txt\n")


def run_pushed(stack: StackClient, image_uri: str, command: list[str]) -> str:
    _, auth = ecr_login(stack, stack.default_account)
    engine = stack.docker()
    name, _, digest = image_uri.partition("@")
    engine.api.pull(name, tag=digest, auth_config=auth)
    return engine.containers.run(image_uri, command, remove=True, network_mode="none").decode().strip()


# Private base images --------------------------------------------------------------------------------
@pytest.mark.parametrize("builder", ["auto", "classic"])
def test_a_base_image_in_the_runs_own_registry_is_pulled_with_its_login(
    stack: StackClient, step: RunnerStep, role: str, unique_name: str, base_name: str, tmp_path: Path, builder: str
) -> None:
    host = push_base(stack, tmp_path, base_name)
    write_child(step, f"{host}/{base_name}:v1")
    inputs = app_inputs(stack, role, unique_name, builder=builder, scan="skip")

    result = run_action(step.environment(stack, stack.github_job(), inputs))

    assert result.returncode == 0, result.stdout + result.stderr
    if builder == "auto":
        assert f"BuildKit asked for registry credentials for {host}: sent" in result.stdout
    image = step.outputs()["image-uri"]
    assert run_pushed(stack, image, ["/bin/busybox", "cat", "/www/marker.txt", "/www/index.html"]).startswith("child")


@pytest.mark.parametrize("builder", ["auto", "classic"])
def test_a_base_image_in_another_account_named_in_from_is_pulled_with_that_registrys_login(
    stack: StackClient, step: RunnerStep, role: str, unique_name: str, base_name: str, tmp_path: Path, builder: str
) -> None:
    host = push_base(stack, tmp_path, base_name, account_id=stack.other_account)
    allow_pull(stack, stack.other_account, base_name, role)
    write_child(step, f"{host}/{base_name}:v1")
    inputs = app_inputs(stack, role, unique_name, builder=builder, scan="skip")

    result = run_action(step.environment(stack, stack.github_job(), inputs))

    assert result.returncode == 0, result.stdout + result.stderr
    if builder == "auto":
        assert f"BuildKit asked for registry credentials for {host}: sent" in result.stdout
    image = step.outputs()["image-uri"]
    assert run_pushed(stack, image, ["/bin/busybox", "cat", "/www/marker.txt"]) == "child"


def test_a_base_image_the_from_line_names_through_an_arg_needs_the_registries_input(
    stack: StackClient, step: RunnerStep, role: str, unique_name: str, base_name: str, tmp_path: Path
) -> None:
    host = push_base(stack, tmp_path, base_name, account_id=stack.other_account)
    allow_pull(stack, stack.other_account, base_name, role)
    write_child(step, "${BASE}")
    dockerfile = step.workspace / "app" / "Dockerfile"
    dockerfile.write_text("ARG BASE\n" + dockerfile.read_text())
    inputs = app_inputs(
        stack,
        role,
        unique_name,
        scan="skip",
        registries=stack.other_account,
        **{"build-args": f"BASE={host}/{base_name}:v1"},
    )

    result = run_action(step.environment(stack, stack.github_job(), inputs))

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"BuildKit asked for registry credentials for {host}: sent" in result.stdout
    assert run_pushed(stack, step.outputs()["image-uri"], ["/bin/busybox", "cat", "/www/marker.txt"]) == "child"


def allow_pull(stack: StackClient, account_id: str, repository: str, role: str) -> None:
    """A repository policy of `account_id`'s `repository` that lets `role` (another account's) pull."""
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "pull",
                "Effect": "Allow",
                "Principal": {"AWS": role},
                "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
            }
        ],
    }
    stack.ecr(account_id).set_repository_policy(repositoryName=repository, policyText=json.dumps(policy))
