"""The whole action building from private base images in ECR (the run's own account, another account's
repository that allows the pull, a registry the role cannot read), with both builders; and the build
cache in ECR (`cache-from`, `cache-to: inline`), run as the runner runs it against the stack."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
    build_and_push(stack, app, repository, "v1", account_id=account_id, region=region)
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
@pytest.mark.parametrize("owner", ["own", "other"])
def test_a_base_image_in_ecr_named_in_from_is_pulled_with_its_registrys_login(
    stack: StackClient,
    step: RunnerStep,
    role: str,
    unique_name: str,
    base_name: str,
    tmp_path: Path,
    builder: str,
    owner: str,
) -> None:
    """The run's own account, or another account of the region whose repository policy lets the role pull."""
    account = stack.default_account if owner == "own" else stack.other_account
    host = push_base(stack, tmp_path, base_name, account_id=account)
    if owner == "other":
        allow_pull(stack, account, base_name, role)
    write_child(step, f"{host}/{base_name}:v1")
    inputs = app_inputs(stack, role, unique_name, builder=builder, scan="skip")

    result = run_action(step.environment(stack, stack.github_job(), inputs))

    assert result.returncode == 0, result.stdout + result.stderr
    if builder == "auto":
        assert f"BuildKit asked for registry credentials for {host}: sent" in result.stdout
    image = step.outputs()["image-uri"]
    assert run_pushed(stack, image, ["/bin/busybox", "cat", "/www/marker.txt", "/www/index.html"]).startswith("child")


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


@dataclass(frozen=True)
class Fault:
    """A rule of the fault proxies (stack.faults), matching only this test's requests."""

    proxy: str
    match: dict[str, str]
    respond: dict[str, Any]
    times: int | None = None
    skip: int = 0


def run_with_faults(
    stack: StackClient, faults: list[Fault], environment: Callable[[], dict[str, str]]
) -> subprocess.CompletedProcess[str]:
    """The action run with `faults` in place. Another test session may clear every rule at any time (the
    rules are the stack's, shared): a run during which this test's rules went away is run again."""
    for _ in range(3):
        added = {stack.add_fault(f.proxy, f.match, f.respond, times=f.times, skip=f.skip)["id"] for f in faults}
        result = run_action(environment())
        if added <= {rule["id"] for rule in stack.faults()["rules"]}:
            return result
    pytest.fail("another test session cleared the fault rules during each of 3 runs")


def run_with_cache_lookup(
    stack: StackClient, step: RunnerStep, role: str, repository: str, cache_image: str, answer: dict[str, Any]
) -> subprocess.CompletedProcess[str]:
    """The action with `cache-from: cache_image`, ECR answering the action's BatchGetImage of it with `answer`."""
    inputs = app_inputs(stack, role, repository, scan="skip", **{"cache-from": cache_image})
    cache_repository = cache_image.split("/", 1)[1].partition(":")[0]
    fault = Fault("aws", {"operation": "BatchGetImage", "repository": cache_repository}, answer)
    return run_with_faults(stack, [fault], lambda: through_fault_proxy(stack, step, inputs))


def aws_answer(status: int, body: dict) -> dict:
    """A fault proxy's `respond`: an answer as ECR's JSON API gives it."""
    return {"status": status, "headers": {"Content-Type": "application/x-amz-json-1.1"}, "body": json.dumps(body)}


def access_denied(role: str, action: str, resource: str) -> dict:
    message = f"User: {role} is not authorized to perform: {action} on resource: {resource}"
    return aws_answer(400, {"__type": "AccessDeniedException", "message": message})


def through_fault_proxy(stack: StackClient, step: RunnerStep, inputs: dict[str, str], **more: str) -> dict[str, str]:
    """The step's environment with AWS reached through the fault proxy (and `more` variables)."""
    return {
        **step.environment(stack, stack.github_job(), inputs),
        "AWS_ENDPOINT_URL": stack.config.fault_proxy_url,
        **more,
    }


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


DENIED_BODY = (
    '{"errors":[{"code":"DENIED","message":"User: arn:aws:sts::123456789012:assumed-role/ci/run is not authorized '
    "to perform: ecr:BatchGetImage on resource: arn:aws:ecr:us-west-2:210987654321:repository/base because no "
    'resource-based policy allows the ecr:BatchGetImage action"}]}'
)
DENIED = {"status": 403, "headers": {"Content-Type": "application/json"}, "body": DENIED_BODY}


@pytest.mark.parametrize("builder", ["auto", "classic"])
def test_a_base_image_the_role_cannot_read_is_one_error_naming_the_registry_and_the_permissions(
    stack: StackClient, step: RunnerStep, role: str, unique_name: str, base_name: str, tmp_path: Path, builder: str
) -> None:
    # The stack's registries take any token GetAuthorizationToken gives (moto hands one out for every
    # registry id and models no repository policy), so ECR's refusal is played by the fault proxy of the
    # fault region's registries, for this repository only.
    region = stack.fault_region
    host = push_base(stack, tmp_path, base_name, account_id=stack.other_account, region=region)
    write_child(step, f"{host}/{base_name}:v1")
    inputs = {**app_inputs(stack, role, unique_name, builder=builder, scan="skip"), "aws-region": region}

    result = run_with_faults(
        stack,
        [Fault("registry", {"repository": base_name}, DENIED)],
        lambda: step.environment(stack, stack.github_job(), inputs),
    )

    assert result.returncode == 1
    [error] = [line for line in result.stdout.splitlines() if line.startswith("::error")]
    assert error.startswith(f"::error title=Base image not readable::The build could not pull the base image {host}/")
    assert f"the registry {host} refused it" in error
    assert "ecr:BatchGetImage and ecr:GetDownloadUrlForLayer" in error
    assert "::group::Push" not in result.stdout


def test_a_registry_whose_login_is_denied_is_one_error_naming_it_and_the_permission(
    stack: StackClient, step: RunnerStep, role: str, unique_name: str, base_name: str, tmp_path: Path
) -> None:
    host = push_base(stack, tmp_path, base_name, account_id=stack.other_account)
    write_child(step, f"{host}/{base_name}:v1")
    # The token for both registries is denied, then for the run's own alone it is given, and for the
    # other account's alone denied again. Only this run's calls (its user agent) meet the faults.
    app_id = f"bases-{uuid.uuid4().hex[:10]}"
    denied = access_denied(role, "ecr:GetAuthorizationToken", "*")
    match = {"operation": "GetAuthorizationToken", "user_agent": f"app/{app_id}"}
    inputs = app_inputs(stack, role, unique_name, scan="skip")

    result = run_with_faults(
        stack,
        [Fault("aws", match, denied, times=1), Fault("aws", match, denied, times=1, skip=1)],
        lambda: through_fault_proxy(stack, step, inputs, AWS_SDK_UA_APP_ID=app_id),
    )

    assert result.returncode == 1, result.stdout
    [error] = [line for line in result.stdout.splitlines() if line.startswith("::error")]
    assert error.startswith(f"::error title=Access denied::The login to the registry {host} was denied: ")
    assert "'ecr:GetAuthorizationToken'" in error
    assert f"{stack.default_account}.dkr" not in error


# The build cache ------------------------------------------------------------------------------------
@pytest.mark.parametrize("missing", ["tag", "repository", "other account's repository"])
def test_a_cache_image_that_does_not_exist_is_a_warning_and_the_build_goes_on(
    stack: StackClient, step: RunnerStep, role: str, unique_name: str, missing: str
) -> None:
    write_app(step.workspace / "app", marker=uuid.uuid4().hex)
    account = stack.other_account if missing.startswith("other") else stack.default_account
    host = stack.config.registry(account, stack.region).host
    name = unique_name if missing == "tag" else f"nothing-{uuid.uuid4().hex[:8]}"
    inputs = app_inputs(stack, role, unique_name, scan="skip", **{"cache-from": f"{host}/{name}:v1"})

    result = run_action(step.environment(stack, stack.github_job(), inputs))

    assert result.returncode == 0, result.stdout + result.stderr
    [warning] = [line for line in result.stdout.splitlines() if line.startswith("::warning")]
    assert warning.startswith(f"::warning title=Build cache::cache-from {host}/{name}:v1 is not used: ")
    assert ("no image in ECR has that tag" if missing == "tag" else f"the repository {name} does not exist") in warning
    assert "importing cache manifest" not in result.stdout


def test_a_cache_image_the_role_cannot_read_is_a_warning_and_the_build_goes_on(
    stack: StackClient, step: RunnerStep, role: str, unique_name: str, base_name: str, tmp_path: Path
) -> None:
    host = push_base(stack, tmp_path, base_name, account_id=stack.other_account)
    write_app(step.workspace / "app", marker=uuid.uuid4().hex)
    denied = access_denied(role, "ecr:BatchGetImage", base_name)

    result = run_with_cache_lookup(stack, step, role, unique_name, f"{host}/{base_name}:v1", denied)

    assert result.returncode == 0, result.stdout + result.stderr
    [warning] = [line for line in result.stdout.splitlines() if line.startswith("::warning")]
    assert warning.startswith(f"::warning title=Build cache::cache-from {host}/{base_name}:v1 is not used: ")
    assert "this role may not read it" in warning and "ecr:BatchGetImage" in warning


def test_a_cache_image_in_another_account_is_imported_with_that_registrys_login(
    stack: StackClient, step: RunnerStep, role: str, unique_name: str, base_name: str, tmp_path: Path
) -> None:
    host = push_base(stack, tmp_path, base_name, account_id=stack.other_account)
    allow_pull(stack, stack.other_account, base_name, role)
    write_app(step.workspace / "app", marker=uuid.uuid4().hex)
    # moto answers API calls from the caller's account only (another registryId: RepositoryNotFound), so
    # ECR's answer to BatchGetImage across accounts, which the repository policy allows, is given canned.
    image = {"registryId": stack.other_account, "repositoryName": base_name, "imageId": {"imageTag": "v1"}}
    found = aws_answer(200, {"images": [{**image, "imageManifest": "{}"}], "failures": []})

    result = run_with_cache_lookup(stack, step, role, unique_name, f"{host}/{base_name}:v1", found)

    assert result.returncode == 0, result.stdout + result.stderr
    log = result.stdout.splitlines()
    assert log[log.index(f"#1 importing cache manifest from {host}/{base_name}:v1") + 1].startswith("#1 DONE")
    assert f"BuildKit asked for registry credentials for {host}: sent" in log
    assert not [line for line in log if line.startswith("::warning")]


def test_an_inline_cache_in_ecr_is_reused_by_the_next_run_on_an_engine_without_it(
    stack: StackClient, step: RunnerStep, role: str, unique_name: str
) -> None:
    marker = uuid.uuid4().hex
    app = write_app(step.workspace / "app", marker="first")
    # A step only this test builds: its cache record is this test's alone, and can be pruned alone.
    (app / "Dockerfile").write_text(
        "FROM scratch\nCOPY busybox /bin/busybox\n"
        f'RUN ["/bin/busybox", "sh", "-c", "echo {marker} > /dependencies"]\n'
        "COPY index.html /www/index.html\n"
    )
    # The branch's tag first: the default cache-from is the image under the first tag.
    inputs = app_inputs(
        stack, role, unique_name, scan="skip", tags="main", **{"cache-to": "inline", "if-tag-exists": "overwrite"}
    )
    first = run_action(step.environment(stack, stack.github_job(), inputs))
    assert first.returncode == 0, first.stdout + first.stderr
    cache_image = f"{step.outputs()['repository-uri']}:main"

    # A fresh runner's engine: neither this run's image nor the cache of the step is left on it.
    engine = stack.docker()
    (built,) = [line.split()[1] for line in first.stdout.splitlines() if line.startswith("built sha256:")]
    engine.images.remove(built, force=True)
    assert prune_build_cache(stack, marker), "the step's cache record is on the engine after the first run"
    assert not [record for record in engine.df()["BuildCache"] if marker in (record.get("Description") or "")]

    (app / "index.html").write_text("<h1>second</h1>\n")
    second = run_action(step.environment(stack, stack.github_job(), inputs))

    assert second.returncode == 0, second.stdout + second.stderr
    log = second.stdout.splitlines()
    assert f"#1 importing cache manifest from {cache_image}" in log
    [run_step] = [line.split()[0] for line in log if line.startswith("#") and f"echo {marker}" in line]
    assert f"{run_step} CACHED" in log
    assert run_pushed(stack, step.outputs()["image-uri"], ["/bin/busybox", "cat", "/dependencies"]) == marker


def prune_build_cache(stack: StackClient, marker: str) -> list[str]:
    """Remove the engine's build cache records whose description holds `marker` (a step only this test
    builds), and the records built on them (later steps of the same build), newest first; no other
    record is touched. Returns the ids removed."""
    engine = stack.docker()
    records = engine.df()["BuildCache"] or []
    chosen = [record["ID"] for record in records if marker in (record.get("Description") or "")]
    for parent in chosen:  # grows while it is read: the children of each chosen record are chosen too
        chosen.extend(record["ID"] for record in records if record.get("Parent") == parent)
    for record_id in reversed(chosen):  # a record can go only once nothing is built on it
        engine.api.prune_builds(filters={"id": [record_id]})
    return chosen
