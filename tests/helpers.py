"""What several test modules share: the local stack used as a user's Docker client would (log in, build,
push), scan findings queued for a run, and the inputs most runs give."""

from __future__ import annotations

import base64
import importlib.util
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import pytest

from ecr_action.errors import InputError
from ecr_action.inputs import INPUT_SPECS, INPUTS, Inputs, read_github_context, read_inputs
from stack.client import StackClient
from stack.config import REPO_ROOT


def ecr_login(stack: StackClient, account_id: str, region: str | None = None) -> tuple[str, dict[str, str]]:
    """(registry host, docker auth config) from GetAuthorizationToken, as a user's client gets them."""
    data = stack.ecr(account_id, region).get_authorization_token()["authorizationData"][0]
    username, password = base64.b64decode(data["authorizationToken"]).decode().split(":", 1)
    return data["proxyEndpoint"].removeprefix("https://"), {"username": username, "password": password}


def build_and_push(
    stack: StackClient,
    app_dir: Path,
    repository: str,
    tag: str,
    *,
    account_id: str | None = None,
    region: str | None = None,
) -> str:
    """Build `app_dir` and push it as `repository:tag`; returns the digest the registry reported."""
    host, auth = ecr_login(stack, account_id or stack.default_account, region)
    engine = stack.docker()
    engine.images.build(path=str(app_dir), tag=f"{host}/{repository}:{tag}", rm=True)
    lines = list(engine.api.push(f"{host}/{repository}", tag=tag, stream=True, decode=True, auth_config=auth))
    errors = " ".join(line["error"] for line in lines if "error" in line)
    assert not errors, errors
    return next(line["aux"]["Digest"] for line in lines if "aux" in line)


def action_code_files() -> set[Path]:
    """What the action's image ships of this repository (relative paths): the package and the entry point."""
    package = {
        path.relative_to(REPO_ROOT)
        for path in (REPO_ROOT / "ecr_action").rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }
    return package | {Path("entrypoint.py")}


def app_inputs(stack: StackClient, role: str, repository: str, **more: str) -> dict[str, str]:
    """The inputs most runs give: the region, the role, the repository and the app's context.

    `network: none`: the stack's engine has no bridge network for BuildKit's RUN steps (a runner's has).
    """
    return {
        "aws-region": stack.region,
        "role-to-assume": role,
        "repository": repository,
        "context": "app",
        "network": "none",
        **more,
    }


def load_script(name: str) -> ModuleType:
    """A module of scripts/ (not a package), loaded from its file as it is run: scripts/<name>.py."""
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# A finding as ECR's basic scanning reports it.
HIGH_FINDING = {
    "name": "CVE-2024-1111",
    "severity": "HIGH",
    "uri": "https://nvd.example/CVE-2024-1111",
    "attributes": [{"key": "package_name", "value": "busybox"}, {"key": "package_version", "value": "1.35.0"}],
}


def queue_findings(stack: StackClient, repository: str, *findings: dict, account_id: str | None = None) -> None:
    stack.scan_results(
        {
            "repositoryName": repository,
            "imageId": {},
            "imageScanStatus": {"status": "COMPLETE", "description": "The scan was completed successfully."},
            "imageScanFindings": {"findings": list(findings)},
        },
        account_id=account_id,
    )


# Inputs as the runner passes them ------------------------------------------------------------------
NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
SHA = "0123456789abcdef0123456789abcdef01234567"
LIFECYCLE = {
    "rules": [
        {
            "rulePriority": 1,
            "selection": {
                "tagStatus": "untagged",
                "countType": "sinceImagePushed",
                "countUnit": "days",
                "countNumber": 7,
            },
            "action": {"type": "expire"},
        }
    ]
}
ROLE = "arn:aws:iam::123456789012:role/deploy"


def runner_environment(workspace: Path, inputs: Mapping[str, str] | None = None) -> dict[str, str]:
    """What the runner sets: every declared input (its default, else empty) and the GITHUB_* variables."""
    environment = {spec.variable: spec.default or "" for spec in INPUT_SPECS}
    environment.update(
        {
            "INPUT_AWS-REGION": "eu-west-1",
            "INPUT_REPOSITORY": "team/app",
            "GITHUB_REPOSITORY": "octo/shop",
            "GITHUB_SHA": SHA,
            "GITHUB_REF": "refs/heads/main",
            "GITHUB_SERVER_URL": "https://github.com",
            "GITHUB_RUN_ID": "1234567890",
            "GITHUB_RUN_ATTEMPT": "2",
            "GITHUB_WORKFLOW": "release",
            "GITHUB_EVENT_NAME": "push",
            "GITHUB_ACTOR": "octocat",
            "GITHUB_WORKSPACE": str(workspace),
            "RUNNER_DEBUG": "",
        }
    )
    environment.update({INPUTS[name].variable: value for name, value in (inputs or {}).items()})
    return environment


def read(environment: Mapping[str, str]) -> Inputs:
    return read_inputs(environment, read_github_context(environment), now=lambda: NOW)


def problems_of(environment: Mapping[str, str]) -> list[str]:
    with pytest.raises(InputError) as raised:
        read(environment)
    return raised.value.problems
