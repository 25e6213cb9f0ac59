"""What tests do with the local stack: make an app, log in, build and push as a user's Docker client
would, and run the action the way GitHub's runner runs a container action."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from stack.client import GitHubJob, StackClient

REPO_ROOT = Path(__file__).resolve().parent.parent
BUSYBOX = Path("/usr/bin/busybox")
SHA = "8f14e45fceea167a5a36dedd4bea2543b6c1f7a2"


def write_app(directory: Path, *, marker: str = "") -> Path:
    """A small app that builds with no network: FROM scratch, a static busybox, and one file.

    `marker` goes into the image, so different markers give different digests.
    """
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy(BUSYBOX, directory / "busybox")
    (directory / "index.html").write_text(f"<h1>hello {marker}</h1>\n")
    (directory / "Dockerfile").write_text(
        "FROM scratch\n"
        "COPY busybox /bin/busybox\n"
        'RUN ["/bin/busybox", "--install", "-s", "/bin"]\n'
        "COPY index.html /www/index.html\n"
        'CMD ["/bin/httpd", "-f", "-p", "8080", "-h", "/www"]\n'
    )
    return directory


def ecr_login(stack: StackClient, account_id: str) -> tuple[str, dict[str, str]]:
    """(registry host, docker auth config) from GetAuthorizationToken, as a user's client gets them."""
    data = stack.ecr(account_id).get_authorization_token()["authorizationData"][0]
    username, password = base64.b64decode(data["authorizationToken"]).decode().split(":", 1)
    return data["proxyEndpoint"].removeprefix("https://"), {"username": username, "password": password}


def build_and_push(
    stack: StackClient, app_dir: Path, repository: str, tag: str, *, account_id: str | None = None
) -> str:
    """Build `app_dir` and push it as `repository:tag`; returns the digest the registry reported."""
    host, auth = ecr_login(stack, account_id or stack.default_account)
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


def declared_inputs() -> dict[str, str]:
    """Each input of action.yml with its default ('' when it has none)."""
    action = yaml.safe_load((REPO_ROOT / "action.yml").read_text())
    return {name: str(spec.get("default", "")) for name, spec in action["inputs"].items()}


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
        GITHUB_* context, the token request variables, and boto3's/Docker's standard settings."""
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
            }
        )
        return environment

    def container_mounts(self, docker_socket: Path) -> dict[str, dict[str, str]]:
        """The runner's bind mounts for a container action's step (docker-py `volumes`)."""
        home = self.workspace.parent / "home"
        home.mkdir(exist_ok=True)
        return {
            str(docker_socket): {"bind": "/var/run/docker.sock", "mode": "rw"},
            str(home): {"bind": "/github/home", "mode": "rw"},
            str(self.event_file): {"bind": "/github/workflow/event.json", "mode": "rw"},
            str(self.output_file.parent): {"bind": "/github/file_commands", "mode": "rw"},
            str(self.workspace): {"bind": "/github/workspace", "mode": "rw"},
        }

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


def run_action(environment: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """The action as the container's entry point runs it, in a process of its own."""
    return subprocess.run(
        [sys.executable, str(REPO_ROOT / "entrypoint.py"), *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
