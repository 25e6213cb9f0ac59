"""GitHub's runner, as it runs a container action: the step's environment (INPUT_* for every declared
input with its default applied, hyphens kept; the GITHUB_* context; the file commands; the OIDC request
variables), the entry point run in a process of its own, and the outputs file read back.

The step reaches the stack's registries under the genuine ECR hostnames with TLS verified, as a step on
a runner reaches ECR's (see stack.ecr_names): the process runs in the stack dockerd's mount namespace and
trusts the stack's CA bundle; the container gets the hostnames as extra hosts and the bundle mounted."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from stack import ecr_names
from stack.client import GitHubJob, StackClient
from stack.config import REPO_ROOT, StackConfig

SHA = "8f14e45fceea167a5a36dedd4bea2543b6c1f7a2"
# Where a container step finds the stack's CA bundle (the runner mounts nothing like it: a runner's
# image trusts ECR's public CA by itself).
CONTAINER_CA_BUNDLE = "/etc/ecr-stack/ca-bundle.crt"


def declared_inputs() -> dict[str, str]:
    """Each input of action.yml with its default ('' when it has none)."""
    action = yaml.safe_load((REPO_ROOT / "action.yml").read_text())
    return {name: str(spec.get("default", "")) for name, spec in action["inputs"].items()}


def declared_outputs() -> list[str]:
    return list(yaml.safe_load((REPO_ROOT / "action.yml").read_text())["outputs"])


@dataclass
class RunnerStep:
    """One step of a job, as GitHub's runner sets it up for a container action."""

    workspace: Path
    output_file: Path
    summary_file: Path
    event_file: Path

    @classmethod
    def in_directory(cls, root: Path) -> RunnerStep:
        (root / "workspace").mkdir(parents=True, exist_ok=True)
        (root / "file_commands").mkdir(exist_ok=True)
        files = root / "file_commands"
        step = cls(root / "workspace", files / "output", files / "summary", root / "event.json")
        step.output_file.touch()
        step.summary_file.touch()
        step.event_file.write_text(
            json.dumps({"ref": "refs/heads/main", "head_commit": {"id": SHA, "timestamp": "2026-11-27T09:30:00Z"}})
        )
        return step

    def environment(self, stack: StackClient, job: GitHubJob | None, inputs: dict[str, str]) -> dict[str, str]:
        """INPUT_* for every declared input (hyphens kept, defaults applied as the runner does), the
        GITHUB_* context, the token request variables, boto3's/Docker's standard settings, and the CA
        bundle that trusts the stack's registries."""
        unknown = set(inputs) - set(declared_inputs())
        assert not unknown, f"not inputs of action.yml: {unknown}"
        values = {**declared_inputs(), **inputs}
        environment = {f"INPUT_{name.upper()}": value for name, value in values.items()}
        environment.update(
            {
                "PATH": "/usr/bin:/bin",
                "HOME": str(self.workspace.parent),
                "GITHUB_ACTIONS": "true",
                "GITHUB_REPOSITORY": "octo-org/octo-app",
                "GITHUB_SHA": SHA,
                "GITHUB_REF": "refs/heads/main",
                "GITHUB_SERVER_URL": "https://github.com",
                "GITHUB_RUN_ID": "9000000001",
                "GITHUB_RUN_ATTEMPT": "1",
                "GITHUB_WORKFLOW": "build",
                "GITHUB_EVENT_NAME": "push",
                "GITHUB_EVENT_PATH": str(self.event_file),
                "GITHUB_ACTOR": "octocat",
                "GITHUB_WORKSPACE": str(self.workspace),
                "GITHUB_OUTPUT": str(self.output_file),
                "GITHUB_STEP_SUMMARY": str(self.summary_file),
                "RUNNER_TEMP": str(self.workspace.parent),
                "DOCKER_HOST": stack.config.docker_host,
                "AWS_ENDPOINT_URL": stack.config.gateway_url,
                "PYTHONPATH": str(REPO_ROOT),
                **ecr_names.ca_environment(str(ecr_names.ca_bundle(stack.config))),
            }
        )
        if job is not None:
            environment.update(job.environment())
        return environment

    def container_environment(
        self, stack: StackClient, job: GitHubJob | None, inputs: dict[str, str]
    ) -> dict[str, str]:
        """environment() as the runner passes it into a container action: the step's files under the
        /github paths it mounts them at (see container_mounts), the Docker Engine at the default socket,
        and nothing of this machine's (PATH, PYTHONPATH: the image has its own)."""
        environment = self.environment(stack, job, inputs)
        for name in ("PATH", "PYTHONPATH", "DOCKER_HOST"):
            environment.pop(name, None)
        environment.update(
            {
                "HOME": "/github/home",
                "GITHUB_WORKSPACE": "/github/workspace",
                "GITHUB_EVENT_PATH": "/github/workflow/event.json",
                "GITHUB_OUTPUT": f"/github/file_commands/{self.output_file.name}",
                "GITHUB_STEP_SUMMARY": f"/github/file_commands/{self.summary_file.name}",
                **ecr_names.ca_environment(CONTAINER_CA_BUNDLE),
            }
        )
        return environment

    def container_mounts(self, stack: StackClient) -> dict[str, dict[str, str]]:
        """The runner's bind mounts for a container action's step (docker-py `volumes`), and the stack's
        CA bundle (see container_environment)."""
        home = self.workspace.parent / "home"
        home.mkdir(exist_ok=True)
        return {
            str(ecr_names.ca_bundle(stack.config)): {"bind": CONTAINER_CA_BUNDLE, "mode": "ro"},
            str(stack.config.docker_socket): {"bind": "/var/run/docker.sock", "mode": "rw"},
            str(home): {"bind": "/github/home", "mode": "rw"},
            str(self.event_file): {"bind": "/github/workflow/event.json", "mode": "rw"},
            str(self.output_file.parent): {"bind": "/github/file_commands", "mode": "rw"},
            str(self.workspace): {"bind": "/github/workspace", "mode": "rw"},
        }

    @staticmethod
    def container_hosts(stack: StackClient) -> dict[str, str]:
        """The ECR hostnames as the container resolves them (docker-py `extra_hosts`): a runner's
        container resolves them through DNS."""
        return ecr_names.addresses(stack.config)

    def outputs(self) -> dict[str, str]:
        """GITHUB_OUTPUT read back the way the runner reads it (name<<delimiter heredocs)."""
        outputs: dict[str, str] = {}
        lines = iter(self.output_file.read_text().split("\n"))
        for line in lines:
            if "<<" in line:
                name, delimiter = line.split("<<", 1)
                value: list[str] = []
                for body in lines:
                    if body == delimiter:
                        break
                    value.append(body)
                outputs[name] = "\n".join(value)
        return outputs


def run_in_step(
    command: list[str], environment: dict[str, str], *, timeout: float = 300, config: StackConfig | None = None
) -> subprocess.CompletedProcess[str]:
    """`command` in a process of its own, where the ECR hostnames resolve to the stack's registries (the
    stack dockerd's mount namespace; see stack.ecr_names), in this process's working directory."""
    prefix = ecr_names.namespace_command(config or StackConfig.load())
    return subprocess.run(
        [*prefix, *command], env=environment, capture_output=True, text=True, timeout=timeout, check=False
    )


def run_action(
    environment: dict[str, str], *args: str, timeout: float = 300, config: StackConfig | None = None
) -> subprocess.CompletedProcess[str]:
    """The action as the container's entry point runs it, in a process of its own (see run_in_step)."""
    return run_in_step(
        [sys.executable, str(REPO_ROOT / "entrypoint.py"), *args], environment, timeout=timeout, config=config
    )
