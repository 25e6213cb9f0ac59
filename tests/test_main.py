"""The whole action, run as GitHub's runner runs it (INPUT_* with hyphens, file commands, OIDC), against
the local stack: what lands in the registry and in ECR, what the step prints and outputs."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from stack.apps import write_app
from stack.client import StackClient
from stack.config import REPO_ROOT
from stack.runner import RunnerStep, declared_outputs, run_action
from tests.helpers import HIGH_FINDING, app_inputs, queue_findings

pytestmark = pytest.mark.stack

LIFECYCLE = {
    "rules": [
        {
            "rulePriority": 1,
            "description": "expire untagged images after 14 days",
            "selection": {
                "tagStatus": "untagged",
                "countType": "sinceImagePushed",
                "countUnit": "days",
                "countNumber": 14,
            },
            "action": {"type": "expire"},
        }
    ]
}
CRITICAL_FINDING = {**HIGH_FINDING, "name": "CVE-2024-9999", "severity": "CRITICAL"}


@pytest.fixture
def step(tmp_path: Path) -> RunnerStep:
    step = RunnerStep.in_directory(tmp_path / "runner")
    write_app(step.workspace / "app", marker=tmp_path.name)
    return step


@pytest.fixture
def role(stack: StackClient, unique_name: str) -> str:
    return stack.github_role(unique_name.replace("/", "-"))


def test_the_image_lands_under_every_tag_with_the_settings_asked_for(
    stack: StackClient, step: RunnerStep, role: str, unique_name: str
) -> None:
    queue_findings(stack, unique_name, HIGH_FINDING)
    repository_policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "pull",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{stack.other_account}:root"},
                "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
            }
        ],
    }
    environment = step.environment(
        stack,
        stack.github_job(),
        app_inputs(
            stack,
            role,
            unique_name,
            **{
                "tags": "v1\nlatest, stable",
                "image-tag-mutability": "IMMUTABLE",
                "lifecycle-policy": json.dumps(LIFECYCLE),
                "repository-policy": json.dumps(repository_policy),
                "repository-tags": "team=platform\ncost-center=42",
                "sarif-file": "reports/ecr.sarif",
            },
        ),
    )

    result = run_action(environment)

    assert result.returncode == 0, result.stdout + result.stderr
    outputs = step.outputs()
    assert set(outputs) == set(declared_outputs())
    digest = outputs["image-digest"]
    host = f"{stack.default_account}.dkr.ecr.{stack.region}.amazonaws.com"
    assert outputs["registry"] == host
    assert outputs["repository-uri"] == f"{host}/{unique_name}"
    assert outputs["image-uri"] == f"{host}/{unique_name}@{digest}"
    assert json.loads(outputs["tags"]) == ["v1", "latest", "stable"]
    assert outputs["aws-account-id"] == stack.default_account
    assert outputs["scan-status"] == "COMPLETE"
    assert outputs["gate"] == "pass"
    assert json.loads(outputs["findings"])["HIGH"] == 1
    for tag in ("v1", "latest", "stable"):
        assert stack.registry_manifest(unique_name, tag).headers["Docker-Content-Digest"] == digest
    pulled = stack.docker().images.pull(
        outputs["image-uri"], auth_config={"username": "AWS", "password": f"{stack.default_account}-auth-token"}
    )
    assert outputs["image-uri"] in pulled.attrs["RepoDigests"]

    ecr = stack.ecr()
    settings = ecr.describe_repositories(repositoryNames=[unique_name])["repositories"][0]
    assert settings["imageScanningConfiguration"]["scanOnPush"] is True
    assert settings["imageTagMutability"] == "IMMUTABLE"
    assert json.loads(ecr.get_lifecycle_policy(repositoryName=unique_name)["lifecyclePolicyText"]) == LIFECYCLE
    assert json.loads(ecr.get_repository_policy(repositoryName=unique_name)["policyText"]) == repository_policy
    tags = ecr.list_tags_for_resource(resourceArn=settings["repositoryArn"])["tags"]
    assert {(t["Key"], t["Value"]) for t in tags} >= {("team", "platform"), ("cost-center", "42")}

    assert "::warning file=app/Dockerfile,line=1,title=CVE-2024-1111 in busybox::" in result.stdout
    summary = step.summary_file.read_text()
    assert digest in summary and "CVE-2024-1111" in summary
    assert outputs["sarif-file"] == "reports/ecr.sarif"
    sarif = json.loads((step.workspace / "reports" / "ecr.sarif").read_text())
    assert [r["ruleId"] for r in sarif["runs"][0]["results"]] == ["CVE-2024-1111"]


def test_a_rerun_pushes_nothing_and_succeeds(stack: StackClient, step: RunnerStep, role: str, unique_name: str) -> None:
    queue_findings(stack, unique_name)
    inputs = app_inputs(stack, role, unique_name, **{"image-tag-mutability": "IMMUTABLE"})
    first = run_action(step.environment(stack, stack.github_job(), inputs))
    assert first.returncode == 0, first.stdout
    digest = step.outputs()["image-digest"]

    again = run_action(step.environment(stack, stack.github_job(), inputs))
    assert again.returncode == 0, again.stdout
    assert "every tag already names this image" in again.stdout
    assert step.outputs()["image-digest"] == digest
    assert json.loads(step.outputs()["tags"]) == ["8f14e45"]


def test_the_gate_fails_the_step_after_writing_outputs_summary_and_sarif(
    stack: StackClient, step: RunnerStep, role: str, unique_name: str
) -> None:
    queue_findings(stack, unique_name, CRITICAL_FINDING, HIGH_FINDING)
    environment = step.environment(
        stack,
        stack.github_job(),
        app_inputs(stack, role, unique_name, **{"fail-on": "high", "sarif-file": "ecr.sarif"}),
    )
    result = run_action(environment)

    assert result.returncode == 1
    errors = [line for line in result.stdout.splitlines() if line.startswith("::error title=Vulnerability gate::")]
    assert len(errors) == 1 and "2 findings at or above HIGH" in errors[0]
    assert step.outputs()["gate"] == "fail"
    assert (step.workspace / "ecr.sarif").exists()
    assert "CVE-2024-9999" in step.summary_file.read_text()


def test_cross_account_the_image_lands_in_the_other_accounts_registry(
    stack: StackClient, step: RunnerStep, role: str, unique_name: str
) -> None:
    target = stack.chained_role(
        unique_name.replace("/", "-") + "-push", account_id=stack.other_account, trusted_role_arn=role
    )
    environment = step.environment(
        stack,
        stack.github_job(),
        app_inputs(stack, role, unique_name, **{"chain-role-to-assume": target, "scan": "skip"}),
    )
    result = run_action(environment)

    assert result.returncode == 0, result.stdout
    outputs = step.outputs()
    assert outputs["aws-account-id"] == stack.other_account
    assert outputs["registry"].startswith(f"{stack.other_account}.dkr.ecr.")
    served = stack.registry_manifest(unique_name, "8f14e45", account_id=stack.other_account)
    assert served.headers["Docker-Content-Digest"] == outputs["image-digest"]
    assert stack.registry_manifest(unique_name, "8f14e45").status_code == 404


def test_bad_inputs_are_all_reported_and_nothing_is_created(
    stack: StackClient, step: RunnerStep, role: str, unique_name: str
) -> None:
    environment = step.environment(
        stack,
        stack.github_job(),
        app_inputs(
            stack, role, unique_name, **{"fail-on": "severe", "tags": "not a tag", "lifecycle-policy": '{"rules": []}'}
        ),
    )
    result = run_action(environment)

    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert [line.split(":")[4] for line in lines] == ["input 'lifecycle-policy'", "input 'tags'", "input 'fail-on'"]
    assert all(line.startswith("::error title=Invalid input::") for line in lines)
    assert "Traceback" not in result.stdout + result.stderr
    names = [r["repositoryName"] for r in stack.ecr().describe_repositories()["repositories"]]
    assert unique_name not in names


def test_dry_run_prints_the_plan_and_changes_nothing(
    stack: StackClient, step: RunnerStep, role: str, unique_name: str
) -> None:
    environment = step.environment(
        stack,
        stack.github_job(),
        app_inputs(stack, role, unique_name),
    )
    result = run_action(environment, "--dry-run")

    assert result.returncode == 0, result.stdout
    assert f"would change: create: {unique_name}" in result.stdout
    assert "would build" in result.stdout
    names = [r["repositoryName"] for r in stack.ecr().describe_repositories()["repositories"]]
    assert unique_name not in names


def test_a_trust_refusal_is_one_clear_error(stack: StackClient, step: RunnerStep, unique_name: str) -> None:
    role = stack.github_role(unique_name.replace("/", "-"), subjects=("repo:octo-org/other:*",))
    environment = step.environment(
        stack,
        stack.github_job(),
        app_inputs(stack, role, unique_name),
    )
    result = run_action(environment)

    assert result.returncode == 1
    errors = [line for line in result.stdout.splitlines() if line.startswith("::error")]
    assert len(errors) == 1
    assert errors[0].startswith("::error title=Role trust refused::AWS refused to let this workflow assume " + role)
    assert "Traceback" not in result.stdout + result.stderr


def test_without_id_token_permission_the_fix_is_printed(
    stack: StackClient, step: RunnerStep, role: str, unique_name: str
) -> None:
    environment = step.environment(
        stack,
        None,
        app_inputs(stack, role, unique_name),
    )
    result = run_action(environment)
    assert result.returncode == 1
    assert "permissions:%0A  id-token: write%0A  contents: read" in result.stdout


def queue_scan_status(stack: StackClient, repository: str, status: str, description: str) -> None:
    """ECR's scan of the image ends with `status`, and no findings."""
    stack.scan_results(
        {"repositoryName": repository, "imageId": {}, "imageScanStatus": {"status": status, "description": description}}
    )


def test_a_scan_ecr_cannot_make_fails_with_its_status_in_the_outputs(
    stack: StackClient, step: RunnerStep, role: str, unique_name: str
) -> None:
    queue_scan_status(stack, unique_name, "UNSUPPORTED_IMAGE", "The operating system is not supported.")
    result = run_action(step.environment(stack, stack.github_job(), app_inputs(stack, role, unique_name)))

    assert result.returncode == 1
    errors = [line for line in result.stdout.splitlines() if line.startswith("::error")]
    assert len(errors) == 1 and errors[0].startswith("::error title=Scan failed::")
    assert "UNSUPPORTED_IMAGE" in errors[0]
    outputs = step.outputs()
    assert outputs["scan-status"] == "UNSUPPORTED_IMAGE"
    assert outputs["image-digest"].startswith("sha256:")  # the push itself succeeded


def test_with_scan_unavailable_warn_a_scan_without_findings_passes_with_a_warning(
    stack: StackClient, step: RunnerStep, role: str, unique_name: str
) -> None:
    queue_scan_status(stack, unique_name, "SCAN_ELIGIBILITY_EXPIRED", "Continuous scanning ended.")
    inputs = app_inputs(stack, role, unique_name, **{"scan-unavailable": "warn", "tags": "{{short-sha}}, pr-{{pr}}"})
    result = run_action(step.environment(stack, stack.github_job(), inputs))

    assert result.returncode == 0, result.stdout
    assert "tags: skipped 'pr-{{pr}}': {{pr}} has no value on this" in result.stdout
    warnings = [line for line in result.stdout.splitlines() if line.startswith("::warning title=Scan unavailable::")]
    assert len(warnings) == 1 and "SCAN_ELIGIBILITY_EXPIRED: Continuous scanning ended. No findings" in warnings[0]
    assert "gate passed with no findings to check: ECR's scan status is SCAN_ELIGIBILITY_EXPIRED" in result.stdout
    outputs = step.outputs()
    assert (outputs["scan-status"], outputs["gate"], outputs["findings-total"]) == (
        "SCAN_ELIGIBILITY_EXPIRED",
        "pass",
        "0",
    )


def test_push_false_builds_without_aws(stack: StackClient, step: RunnerStep, unique_name: str) -> None:
    # No role and no token request variables: a fork's pull request can still check that the image builds.
    environment = step.environment(
        stack,
        None,
        {"aws-region": stack.region, "repository": unique_name, "context": "app", "network": "none", "push": "false"},
    )
    result = run_action(environment)

    assert result.returncode == 0, result.stdout
    assert step.outputs() == {"tags": '["8f14e45"]'}
    assert stack.docker().images.get(f"{unique_name}:8f14e45")
    names = [r["repositoryName"] for r in stack.ecr().describe_repositories()["repositories"]]
    assert unique_name not in names


def test_a_baseline_tag_among_the_pushed_tags_compares_with_the_image_it_named_before(
    stack: StackClient, step: RunnerStep, role: str, unique_name: str, tmp_path: Path
) -> None:
    # The tag both moves and is the baseline: the baseline must be the image it named before the push.
    older = {**HIGH_FINDING, "name": "CVE-2020-0001", "severity": "CRITICAL"}
    queue_findings(stack, unique_name, older)
    # v1 keeps the first image tagged once main moves: the stack's ECR forgets an untagged image's scan.
    first = run_action(
        step.environment(
            stack, stack.github_job(), app_inputs(stack, role, unique_name, tags="main,v1", **{"fail-on": "none"})
        )
    )
    assert first.returncode == 0, first.stdout

    write_app(step.workspace / "app", marker=f"{tmp_path.name}-changed")
    queue_findings(stack, unique_name, older, CRITICAL_FINDING)
    inputs = app_inputs(stack, role, unique_name, tags="main", **{"baseline-tag": "main", "if-tag-exists": "overwrite"})
    second = run_action(step.environment(stack, stack.github_job(), inputs))

    assert second.returncode == 1, second.stdout
    gate_errors = [line for line in second.stdout.splitlines() if line.startswith("::error title=Vulnerability gate")]
    assert len(gate_errors) == 1 and "1 finding at or above CRITICAL" in gate_errors[0]
    assert "1 already in baseline 'main'" in gate_errors[0]


def test_in_a_new_repository_a_baseline_tag_it_pushes_is_no_baseline(
    stack: StackClient, step: RunnerStep, role: str, unique_name: str
) -> None:
    queue_findings(stack, unique_name, CRITICAL_FINDING)
    inputs = app_inputs(stack, role, unique_name, tags="main", **{"baseline-tag": "main"})
    result = run_action(step.environment(stack, stack.github_job(), inputs))

    assert result.returncode == 1, result.stdout
    assert "::error title=Vulnerability gate::1 finding at or above CRITICAL" in result.stdout
    assert "No baseline from tag 'main': no image had that tag before this run" in step.summary_file.read_text()


def test_an_engine_that_does_not_answer_stops_the_run_before_aws_changes(
    stack: StackClient, step: RunnerStep, role: str, unique_name: str, tmp_path: Path
) -> None:
    environment = step.environment(stack, stack.github_job(), app_inputs(stack, role, unique_name))
    environment["DOCKER_HOST"] = f"unix://{tmp_path}/no-engine.sock"
    result = run_action(environment)

    assert result.returncode == 1
    assert result.stdout.splitlines()[-1].startswith("::error title=Docker Engine::Cannot reach the Docker Engine")
    names = [r["repositoryName"] for r in stack.ecr().describe_repositories()["repositories"]]
    assert unique_name not in names


@pytest.mark.parametrize("signal_number", [signal.SIGTERM, signal.SIGINT])
def test_a_cancelled_run_ends_stop_commands_and_names_the_stage(
    stack: StackClient, step: RunnerStep, role: str, unique_name: str, tmp_path: Path, signal_number: int
) -> None:
    marker = uuid.uuid4().hex  # a step never run before: a cached one would print nothing
    (step.workspace / "app" / "Dockerfile").write_text(
        f'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "sh", "-c", "echo {marker}; sleep 60"]\n'
    )
    environment = step.environment(stack, stack.github_job(), app_inputs(stack, role, unique_name))
    process = subprocess.Popen(
        [sys.executable, str(REPO_ROOT / "entrypoint.py")], env=environment, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    seen = []
    for line in process.stdout:
        seen.append(line.rstrip("\n"))
        if marker in line and "echo" not in line:
            process.send_signal(signal_number)
            break
    rest, _ = process.communicate(timeout=60)
    lines = seen + rest.splitlines()

    assert process.returncode == 128 + signal_number
    token = next(line.split("::")[2] for line in lines if line.startswith("::stop-commands::"))
    resumed = lines.index(f"::{token}::")
    assert lines[resumed + 1 :] == [
        "::endgroup::",
        f"::error title=Cancelled::ecr-action was cancelled ({signal.Signals(signal_number).name}) during the "
        "Build stage; nothing after it ran.",
    ]
    assert "Traceback" not in rest
