"""Hostile input, workflow-command injection and secrets, checked on the whole action against the stack.

The action runs with production credentials on code from pull requests, so every byte it did not write
(inputs, build output, scan findings) is treated as hostile. Workflow commands are read back here as the
runner reads them (`runner_commands`), so "cannot act as a command" is checked the way it matters.
"""

from __future__ import annotations

import base64
import io
import json
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import jwt
import pytest

from ecr_action.main import main
from stack.apps import write_app
from stack.client import StackClient
from stack.runner import SHA, RunnerStep, declared_inputs, run_action
from tests.helpers import app_inputs

ROLE = "arn:aws:iam::123456789012:role/ecr-push"
LIFECYCLE = (
    '{"rules":[{"rulePriority":1,"selection":{"tagStatus":"any","countType":"imageCountMoreThan",'
    '"countNumber":5},"action":{"type":"expire"}}]}'
)


# The runner's reading of workflow commands -----------------------------------------------------------
@dataclass
class Command:
    name: str
    properties: dict[str, str]
    message: str


@dataclass
class RunnerView:
    """What the runner acts on in a step's stdout, and the text it read with commands stopped."""

    commands: list[Command] = field(default_factory=list)
    stopped_tokens: list[str] = field(default_factory=list)
    stopped_text: list[str] = field(default_factory=list)
    plain_text: list[str] = field(default_factory=list)

    def named(self, name: str) -> list[Command]:
        return [command for command in self.commands if command.name == name]


def unescape_data(text: str) -> str:
    return text.replace("%0D", "\r").replace("%0A", "\n").replace("%25", "%")


def unescape_property(text: str) -> str:
    return unescape_data(text).replace("%3A", ":").replace("%2C", ",")


def runner_commands(stdout: str) -> RunnerView:
    """The runner's rules: a line starting with `::` (after whitespace) is a command, unless commands are
    stopped, in which case only `::<token>::` (the token of the stop) is read, to resume them."""
    view = RunnerView()
    token: str | None = None
    for line in stdout.split("\n"):
        if token is not None:
            if line.strip() == f"::{token}::":
                token = None
            else:
                view.stopped_text.append(line)
            continue
        found = re.match(r"^\s*::([A-Za-z-]+)(?: ([^:]*))?::(.*)$", line)
        if found is None:
            view.plain_text.append(line)
            continue
        name, raw_properties, message = found.groups()
        properties = {}
        for pair in filter(None, (raw_properties or "").split(",")):
            key, _, value = pair.partition("=")
            properties[key] = unescape_property(value)
        view.commands.append(Command(name, properties, unescape_data(message)))
        if name == "stop-commands":
            token = unescape_data(message)
            view.stopped_tokens.append(token)
    return view


# Hostile inputs -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BadInput:
    id: str
    inputs: dict[str, str]
    problems: tuple[str, ...]  # the inputs named, one error line each
    in_subprocess: bool = False


BAD_INPUTS = [
    BadInput("repository-missing", {"repository": ""}, ("repository",), in_subprocess=True),
    BadInput("repository-uppercase", {"repository": "Team/App"}, ("repository",)),
    BadInput("repository-too-short", {"repository": "a"}, ("repository",)),
    BadInput("repository-double-slash", {"repository": "team//app"}, ("repository",)),
    BadInput("repository-leading-dash", {"repository": "-app"}, ("repository",)),
    BadInput("repository-trailing-slash", {"repository": "app/"}, ("repository",)),
    BadInput("repository-too-long", {"repository": "a" * 257}, ("repository",)),
    BadInput("repository-space", {"repository": "my app"}, ("repository",)),
    BadInput("repository-shell", {"repository": "app;rm -rf /"}, ("repository",), in_subprocess=True),
    BadInput("repository-dot-dot", {"repository": "../etc"}, ("repository",)),
    BadInput("repository-command", {"repository": "app\n::add-mask::x"}, ("repository",), in_subprocess=True),
    BadInput("tag-space", {"tags": "not a tag"}, ("tags",)),
    BadInput("tag-leading-dot", {"tags": ".hidden"}, ("tags",)),
    BadInput("tag-leading-dash", {"tags": "-x"}, ("tags",)),
    BadInput("tag-too-long", {"tags": "t" * 129}, ("tags",)),
    BadInput("tag-among-good", {"tags": "v1, bad tag, v2"}, ("tags",)),
    BadInput(
        "tag-command", {"tags": "v1\n::set-output name=image-digest::sha256:forged"}, ("tags",), in_subprocess=True
    ),
    BadInput("tags-only-separators", {"tags": ", ,"}, ("tags",)),
    BadInput("role-short-account", {"role-to-assume": "arn:aws:iam::123:role/x"}, ("role-to-assume",)),
    BadInput("role-is-user", {"role-to-assume": "arn:aws:iam::123456789012:user/x"}, ("role-to-assume",)),
    BadInput("role-not-arn", {"role-to-assume": "role/deploy"}, ("role-to-assume",)),
    BadInput("chain-role-s3", {"chain-role-to-assume": "arn:aws:s3:::bucket"}, ("chain-role-to-assume",)),
    BadInput("region-missing", {"aws-region": ""}, ("aws-region",)),
    BadInput("region-uppercase", {"aws-region": "US-EAST-1"}, ("aws-region",)),
    BadInput("region-no-number", {"aws-region": "us-east"}, ("aws-region",)),
    BadInput("region-url", {"aws-region": "us-east-1.evil.example"}, ("aws-region",)),
    BadInput("registry-id-short", {"registry-id": "12345"}, ("registry-id",)),
    BadInput("allowed-accounts-bad", {"allowed-account-ids": "123456789012, abc"}, ("allowed-account-ids",)),
    BadInput("boolean-yes", {"create-repository": "yes"}, ("create-repository",)),
    BadInput("boolean-one", {"push": "1"}, ("push",)),
    BadInput("boolean-on", {"dry-run": "on"}, ("dry-run",)),
    BadInput("retries-zero", {"retries": "0"}, ("retries",)),
    BadInput("retries-too-many", {"retries": "21"}, ("retries",)),
    BadInput("retries-word", {"retries": "five"}, ("retries",)),
    BadInput("retry-seconds-negative", {"retry-max-seconds": "-1"}, ("retry-max-seconds",)),
    BadInput("scan-timeout-fraction", {"scan-timeout": "1.5"}, ("scan-timeout",)),
    BadInput("duration-too-short", {"role-duration-seconds": "60"}, ("role-duration-seconds",)),
    BadInput("annotations-non-ascii-digit", {"annotations": "\u0663"}, ("annotations",)),
    BadInput("severity-unknown", {"fail-on": "severe"}, ("fail-on",)),
    BadInput("if-tag-exists-unknown", {"if-tag-exists": "replace"}, ("if-tag-exists",)),
    BadInput("scan-mode-unknown", {"scan": "sometimes"}, ("scan",)),
    BadInput("mutability-unknown", {"image-tag-mutability": "FROZEN"}, ("image-tag-mutability",)),
    BadInput("encryption-unknown", {"encryption-type": "DES"}, ("encryption-type",)),
    BadInput("lifecycle-no-rules", {"lifecycle-policy": '{"rules": []}'}, ("lifecycle-policy",)),
    BadInput("lifecycle-not-json", {"lifecycle-policy": "{not json"}, ("lifecycle-policy",)),
    BadInput(
        "repository-policy-bad-statement",
        {"repository-policy": '{"Version": "2012-10-17", "Statement": 1}'},
        ("repository-policy",),
    ),
    BadInput("repository-policy-file-outside", {"repository-policy": "../../etc/passwd"}, ("repository-policy",)),
    BadInput("repository-policy-file-not-json", {"repository-policy": "policies/bad.json"}, ("repository-policy",)),
    BadInput("context-outside", {"context": "../"}, ("context",)),
    BadInput("context-absolute-outside", {"context": "/etc"}, ("context",), in_subprocess=True),
    BadInput("context-missing", {"context": "nowhere"}, ("context",)),
    BadInput("context-empty", {"context": "empty"}, ("context",)),
    BadInput("context-symlink-outside", {"context": "escape"}, ("context",)),
    BadInput("dockerfile-default-missing", {"context": "no-dockerfile"}, ("file",)),
    BadInput("dockerfile-missing", {"file": "app/Dockerfile.prod"}, ("file",)),
    BadInput("dockerfile-outside", {"file": "/etc/passwd"}, ("file",)),
    BadInput("sarif-outside", {"sarif-file": "../escape.sarif"}, ("sarif-file",)),
    BadInput("sarif-through-symlink", {"sarif-file": "escape/x.sarif"}, ("sarif-file",)),
    BadInput("sarif-directory", {"sarif-file": "app"}, ("sarif-file",)),
    BadInput("ignore-file-outside", {"ignore-file": "../../etc/hostname"}, ("ignore-file",)),
    BadInput("ignore-file-not-yaml", {"ignore-file": "ignores-bad.yml"}, ("ignore-file",)),
    BadInput("ignore-bad-cve", {"ignore": "CVE-2024-1"}, ("ignore",)),
    BadInput("build-args-no-equals", {"build-args": "TOKEN"}, ("build-args",)),
    BadInput("labels-empty-key", {"labels": "=value"}, ("labels",)),
    BadInput("repository-tags-repeated", {"repository-tags": "team=a\nteam=b"}, ("repository-tags",)),
    BadInput("session-name-short", {"role-session-name": "a"}, ("role-session-name",)),
    BadInput("role-chaining-without-role", {"role-to-assume": "", "role-chaining": "true"}, ("role-chaining",)),
    BadInput("kms-key-with-aes", {"encryption-type": "AES256", "kms-key": "alias/x"}, ("kms-key",)),
    BadInput("baseline-tag-bad", {"baseline-tag": "bad tag"}, ("baseline-tag",)),
    BadInput(
        "three-at-once",
        {"fail-on": "severe", "tags": "a b", "retries": "x"},
        ("tags", "retries", "fail-on"),
        in_subprocess=True,
    ),
]


def write_hostile_workspace(workspace: Path) -> None:
    # Nothing here is built: the app only has to be a context with a Dockerfile.
    (workspace / "app").mkdir()
    (workspace / "app" / "Dockerfile").write_text("FROM scratch\nCOPY index.html /www/index.html\n")
    (workspace / "app" / "index.html").write_text("<h1>security</h1>\n")
    (workspace / "empty").mkdir()
    (workspace / "no-dockerfile").mkdir()
    (workspace / "no-dockerfile" / "README").write_text("no Dockerfile here\n")
    (workspace / "escape").symlink_to("/etc")
    (workspace / "policies").mkdir()
    (workspace / "policies" / "bad.json").write_text("{not json")
    (workspace / "ignores-bad.yml").write_text("- id: [unclosed\n")


@dataclass
class ExistingRepository:
    name: str
    snapshot: Callable[[], object]


@pytest.fixture(scope="module")
def existing_repository(stack: StackClient) -> ExistingRepository:
    """A repository the bad inputs name: it must come out of every run exactly as it went in."""
    name = f"security/existing-{uuid.uuid4().hex[:8]}"
    ecr = stack.ecr()
    ecr.create_repository(
        repositoryName=name,
        imageScanningConfiguration={"scanOnPush": False},
        tags=[{"Key": "owner", "Value": "terraform"}],
    )
    ecr.put_lifecycle_policy(repositoryName=name, lifecyclePolicyText=LIFECYCLE)

    def snapshot() -> object:
        repository = ecr.describe_repositories(repositoryNames=[name])["repositories"][0]
        return (
            repository,
            ecr.get_lifecycle_policy(repositoryName=name)["lifecyclePolicyText"],
            ecr.list_tags_for_resource(resourceArn=repository["repositoryArn"])["tags"],
            ecr.describe_images(repositoryName=name)["imageDetails"],
            stack.registry_manifest(name, "v1").status_code,
        )

    return ExistingRepository(name, snapshot)


@pytest.fixture
def faults(stack: StackClient) -> Iterator[StackClient]:
    stack.clear_faults()
    yield stack
    stack.clear_faults()


def problem_names(stdout: str) -> list[str]:
    names = []
    for command in runner_commands(stdout).commands:
        assert command.name == "error" and command.properties == {"title": "Invalid input"}, command
        found = re.match(r"input '([a-z-]+)': ", command.message)
        assert found is not None, command.message
        names.append(found[1])
    return names


# In process, without the stack: the rows that only check the problem lines (and that nothing runs after).
IN_PROCESS = [case for case in BAD_INPUTS if not case.in_subprocess]
# As the runner starts the action, against the stack: nothing in AWS may be touched.
WHOLE_PROCESS = [case for case in BAD_INPUTS if case.in_subprocess]
CLOSED_PORT = "http://127.0.0.1:9"  # discard: anything sent there fails


@pytest.mark.parametrize("case", IN_PROCESS, ids=[case.id for case in IN_PROCESS])
def test_a_bad_input_is_named_before_anything_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: BadInput
) -> None:
    step = RunnerStep.in_directory(tmp_path / "runner")
    write_hostile_workspace(step.workspace)
    inputs = {
        "aws-region": "us-east-1",
        "role-to-assume": ROLE,
        "repository": "security/existing",
        "context": "app",
        "network": "none",
        "tags": "v1",
        **case.inputs,
    }
    environment = {f"INPUT_{name.upper()}": value for name, value in {**declared_inputs(), **inputs}.items()} | {
        "GITHUB_SHA": SHA,
        "GITHUB_WORKSPACE": str(step.workspace),
        "GITHUB_EVENT_PATH": str(step.event_file),
        "GITHUB_OUTPUT": str(step.output_file),
        "GITHUB_STEP_SUMMARY": str(step.summary_file),
        "DOCKER_HOST": "unix:///nonexistent/docker.sock",
        "ACTIONS_ID_TOKEN_REQUEST_URL": f"{CLOSED_PORT}/idtoken",
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "token",
    }
    monkeypatch.setenv("AWS_ENDPOINT_URL", CLOSED_PORT)
    captured = io.StringIO()

    returncode, stdout = main([], environment, captured), captured.getvalue()

    assert returncode == 1
    assert sorted(problem_names(stdout)) == sorted(case.problems), stdout
    assert len(stdout.splitlines()) == len(case.problems), "something ran after the inputs were refused"
    assert step.outputs() == {}
    assert not (step.workspace.parent / "escape.sarif").exists()


@pytest.mark.parametrize("case", WHOLE_PROCESS, ids=[case.id for case in WHOLE_PROCESS])
def test_a_bad_input_is_named_and_nothing_in_aws_is_touched(
    faults: StackClient, existing_repository: ExistingRepository, tmp_path: Path, case: BadInput
) -> None:
    stack = faults
    step = RunnerStep.in_directory(tmp_path / "runner")
    write_hostile_workspace(step.workspace)
    inputs = {
        "aws-region": stack.region,
        "role-to-assume": ROLE,
        "repository": existing_repository.name,
        "context": "app",
        "network": "none",
        "tags": "v1",
        **case.inputs,
    }
    environment = step.environment(stack, stack.github_job(), inputs)
    # Any AWS or token request the run made would reach the fault proxy, which records it.
    environment["AWS_ENDPOINT_URL"] = stack.config.fault_proxy_url
    environment["ACTIONS_ID_TOKEN_REQUEST_URL"] = f"{stack.config.fault_proxy_url}/idtoken"
    before = existing_repository.snapshot()

    result = run_action(environment)
    returncode, stdout = result.returncode, result.stdout
    assert "Traceback" not in result.stderr

    assert returncode == 1
    assert sorted(problem_names(stdout)) == sorted(case.problems), stdout
    assert len(stdout.splitlines()) == len(case.problems), "something ran after the inputs were refused"
    # (The registry proxy also sees the stack's own health checks; without a token nothing can push.)
    assert [r for r in stack.faults()["requests"] if r["proxy"] == "aws"] == [], "an AWS or token request was made"
    assert existing_repository.snapshot() == before
    assert not (step.workspace.parent / "escape.sarif").exists()


def test_hostile_input_values_cannot_forge_commands(stack: StackClient, tmp_path: Path) -> None:
    step = RunnerStep.in_directory(tmp_path / "runner")
    write_hostile_workspace(step.workspace)
    hostile = {
        "aws-region": "us-east-1\r::add-mask::region",
        "repository": "app\n::set-output name=image-uri::forged",
        "tags": "v1%0A::error::percent\n::stop-commands::abc",
        "target": "x",
        "context": "app",
        "network": "none",
        "fail-on": "::warning::w",
    }
    result = run_action(step.environment(stack, None, hostile))

    assert result.returncode == 1
    view = runner_commands(result.stdout)
    assert {command.name for command in view.commands} == {"error"}
    assert sorted(problem_names(result.stdout)) == ["aws-region", "fail-on", "repository", "tags"]
    # Each value is shown on its one line, escaped, and reads back as the text the user gave.
    assert any("%0A::error::percent" in command.message for command in view.commands)
    assert step.outputs() == {}


# Build output and findings ----------------------------------------------------------------------------
HOSTILE_LINES = [
    "::error::pwned",
    "::add-mask::x",
    "::set-output name=image-digest::sha256:forged",
    "::stop-commands::abc",
    "::abc::",
    "  ::warning file=x,line=1::indented",
    "::debug::d",
]


def hostile_build_inputs(stack: StackClient, **more: str) -> dict[str, str]:
    """A build that is not pushed (no role, no AWS), of the hostile app."""
    return {
        "aws-region": stack.region,
        "repository": "security/hostile-build",
        "context": "app",
        "network": "none",
        "push": "false",
        **more,
    }


def write_hostile_build(directory: Path, *, fail: bool = False) -> Path:
    write_app(directory, marker="hostile")
    script = "; ".join(f"echo '{line}'" for line in HOSTILE_LINES)
    # A failing step whose command holds line breaks: the engine quotes it in its error message.
    failing_step = 'RUN ["/bin/busybox", "sh", "-c", "echo ok\\n::add-mask::forged\\nexit 3"]\n'
    (directory / "Dockerfile").write_text(
        "FROM scratch\n"
        "COPY busybox /bin/busybox\n"
        f'RUN ["/bin/busybox", "sh", "-c", "{script}"]\n' + (failing_step if fail else "")
    )
    return directory


@pytest.mark.parametrize("builder", ["classic", "buildkit"])
def test_build_output_is_never_read_as_a_command(stack: StackClient, tmp_path: Path, builder: str) -> None:
    tokens = []
    for run in ("first", "second"):
        step = RunnerStep.in_directory(tmp_path / run)
        write_hostile_build(step.workspace / "app")
        inputs = hostile_build_inputs(stack, **{"no-cache": "true", "builder": builder})
        result = run_action(step.environment(stack, None, inputs))
        assert result.returncode == 0, result.stdout + result.stderr
        view = runner_commands(result.stdout)
        assert {command.name for command in view.commands} <= {"group", "endgroup", "stop-commands"}
        for line in HOSTILE_LINES:
            # BuildKit's log puts the step's number and time before each line of output.
            shown = [text for text in view.stopped_text if text == line or text.endswith(" " + line.strip())]
            assert shown, f"{line!r} was not inside the stopped region"
        [token] = view.stopped_tokens
        assert re.fullmatch(r"[0-9a-f]{32}", token)
        tokens.append(token)
    assert tokens[0] != tokens[1], "the stop-commands token must be new for every run"


def test_a_failing_build_message_cannot_add_a_command(stack: StackClient, tmp_path: Path) -> None:
    step = RunnerStep.in_directory(tmp_path / "runner")
    write_hostile_build(step.workspace / "app", fail=True)
    result = run_action(step.environment(stack, None, hostile_build_inputs(stack)))

    assert result.returncode == 1
    view = runner_commands(result.stdout)
    [error] = view.named("error")
    assert error.properties == {"title": "Build failed"}
    assert "::add-mask::forged" in error.message  # carried as data of the one error command
    assert view.named("add-mask") == [] and view.named("set-output") == []


HOSTILE_FINDING = {
    "name": "CVE-2024-0001",
    "severity": "CRITICAL",
    "description": "overflow\n::add-mask::finding\r\n::error::from-description %0A::set-output name=x::y",
    "uri": "https://nvd.example/CVE-2024-0001?a=1,b=2",
    "attributes": [
        {"key": "package_name", "value": "evil,pkg::error::name\n::warning::pkg"},
        {"key": "package_version", "value": "1.0:2,3"},
    ],
}


# Secrets ---------------------------------------------------------------------------------------------
@dataclass
class Stage:
    name: str
    inputs: dict[str, str]
    arrange: Callable[[StackClient, str], None]
    title: str | None  # the error's title; None for a successful run
    masks_at_least: int  # token; + 3 session credentials; + registry token and password
    through_fault_proxy: bool = False
    dockerfile_fails: bool = False


def no_arrangement(stack: StackClient, repository: str) -> None:
    return None


def refuse_creation(stack: StackClient, repository: str) -> None:
    denied = {
        "status": 400,
        "headers": {"Content-Type": "application/x-amz-json-1.1"},
        "body": json.dumps({"__type": "AccessDeniedException", "message": "not authorized"}),
    }
    stack.add_fault("aws", {"operation": "CreateRepository", "repository": repository}, denied, times=None)


def fail_manifest_puts(stack: StackClient, repository: str) -> None:
    stack.registry_fault(
        {"method": "PUT", "path": "/manifests/", "repository": repository}, {"status": 500, "body": "down"}, times=None
    )


def never_finish_scans(stack: StackClient, repository: str) -> None:
    stack.scan_delay(repository, 600)


def hostile_findings(stack: StackClient, repository: str) -> None:
    stack.scan_results(
        {
            "repositoryName": repository,
            "imageId": {},
            "imageScanStatus": {"status": "COMPLETE"},
            "imageScanFindings": {"findings": [HOSTILE_FINDING]},
        }
    )


STAGES = [
    Stage("success", {"fail-on": "none", "sarif-file": "reports/scan.sarif"}, hostile_findings, None, 6),
    Stage("trust-refused", {}, no_arrangement, "Role trust refused", 1),
    Stage("repository-denied", {}, refuse_creation, "Access denied", 4, through_fault_proxy=True),
    Stage("build-failure", {}, no_arrangement, "Build failed", 4, dockerfile_fails=True),
    Stage("push-failure", {"aws-region": "us-west-2", "retries": "1"}, fail_manifest_puts, "Push failed", 6),
    Stage("scan-timeout", {"scan-timeout": "1"}, never_finish_scans, "Scan timed out", 6),
    Stage("gate-failure", {"fail-on": "high", "sarif-file": "scan.sarif"}, hostile_findings, "Vulnerability gate", 6),
]


@pytest.mark.parametrize("stage", STAGES, ids=[stage.name for stage in STAGES])
def test_secrets_appear_only_in_mask_commands(
    faults: StackClient, tmp_path: Path, unique_name: str, stage: Stage
) -> None:
    stack = faults
    subjects = ("repo:octo-org/other:*",) if stage.name == "trust-refused" else ("repo:octo-org/octo-app:*",)
    role = stack.github_role(unique_name.replace("/", "-"), subjects=subjects)
    step = RunnerStep.in_directory(tmp_path / "runner")
    if stage.dockerfile_fails:
        write_hostile_build(step.workspace / "app", fail=True)
    else:
        write_app(step.workspace / "app", marker=unique_name)
    stage.arrange(stack, unique_name)
    environment = step.environment(
        stack,
        stack.github_job(),
        app_inputs(stack, role, unique_name, **{**stage.inputs}),
    )
    if stage.through_fault_proxy:
        environment["AWS_ENDPOINT_URL"] = stack.config.fault_proxy_url

    result = run_action(environment)

    view = runner_commands(result.stdout)
    # Findings are annotated with a file; the run's own failure is the one error without.
    failures = [error.properties.get("title") for error in view.named("error") if "file" not in error.properties]
    if stage.title is None:
        assert result.returncode == 0, result.stdout + result.stderr
        assert failures == []
    else:
        assert result.returncode == 1
        assert failures == [stage.title], result.stdout
    secrets = [command.message for command in view.named("add-mask")]
    assert len(secrets) >= stage.masks_at_least, secrets
    claims = jwt.decode(secrets[0], options={"verify_signature": False})
    assert claims["iss"] == "https://token.actions.githubusercontent.com", "the first mask is the OIDC token"
    if stage.masks_at_least >= 6:
        registry = stack.config.registry(stack.default_account, stage.inputs.get("aws-region", stack.region))
        assert registry.password in secrets, "the registry password is masked"
        assert base64.b64encode(f"AWS:{registry.password}".encode()).decode() in secrets

    # Every byte the run wrote, except the mask commands themselves.
    written = {
        "stdout": "\n".join(line for line in result.stdout.split("\n") if not line.startswith("::add-mask::")),
        "stderr": result.stderr,
    }
    for path in step.workspace.parent.rglob("*"):
        if path.is_file() and "busybox" not in path.name:
            written[str(path)] = path.read_text(errors="replace")
    for secret in secrets:
        for where, text in written.items():
            assert secret not in text, f"a secret ({secret[:4]}...) is in {where}"
    assert not (step.workspace.parent / ".docker").exists(), "a Docker config was written under HOME"
    assert not list(step.workspace.rglob("config.json")), "a Docker config was written in the workspace"
    if stage.name == "success":
        assert_findings_escaped(view)


def assert_findings_escaped(view: RunnerView) -> None:
    """The hostile finding reached the log as data of annotation commands, and as nothing else."""
    names = {command.name for command in view.commands}
    assert names <= {"add-mask", "group", "endgroup", "stop-commands", "warning", "notice", "error", "debug"}
    annotations = [c for c in view.commands if c.name in ("warning", "notice", "error")]
    assert annotations, "the finding was not annotated"
    package = HOSTILE_FINDING["attributes"][0]["value"]
    assert any(package in (c.properties.get("title") or "") + c.message for c in annotations)
    for command in view.named("add-mask"):
        assert command.message != "finding"
    assert not any(c.message in ("from-description", "pkg", "name") for c in view.commands)
