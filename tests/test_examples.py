"""The examples users copy, and the release workflow, checked the way a reviewer would.

Every workflow goes through actionlint (with the action's inputs checked against our action.yml) and
zizmor; the CloudFormation template through cfn-lint; the Terraform is parsed. The IAM policy both of
them grant must be exactly docs/iam-policy.json, which is also the policy the docs print. Nothing here
needs the network or a Docker Engine.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
EXAMPLE_WORKFLOWS = sorted((EXAMPLES / "workflows").glob("*.yml"))
PROJECT_WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
ALL_WORKFLOWS = [*EXAMPLE_WORKFLOWS, *PROJECT_WORKFLOWS]
POLICY_FILE = ROOT / "docs" / "iam-policy.json"
README = ROOT / "README.md"
TERRAFORM = EXAMPLES / "terraform"
CFN_TEMPLATE = EXAMPLES / "cloudformation" / "template.yaml"
APP = EXAMPLES / "app"

# How the examples name the action and the shared reusable workflow: pinned by commit, as users should.
ACTION_USES = re.compile(r"your-org/ecr-action@[0-9a-f]{40}(?= # v\d)")
REUSABLE_USES = re.compile(r"platform-org/shared-workflows/(\.github/workflows/[\w.-]+\.ya?ml)@[0-9a-f]{40}")
USES_LINE = re.compile(r"^\s*(?:-\s+)?uses:\s*(\S+)", re.MULTILINE)
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")

OIDC_HOST = "token.actions.githubusercontent.com"
# The placeholder docs/iam-policy.json uses for the repository; Terraform and CloudFormation put the
# repository they create there.
REPOSITORY_ARN_PLACEHOLDER = "arn:aws:ecr:REGION:ACCOUNT_ID:repository/REPOSITORY"
TERRAFORM_REPOSITORY_ARN = "${aws_ecr_repository.app.arn}"
CFN_REPOSITORY_ARN = {"Fn::GetAtt": ["Repository", "Arn"]}


def tool(name: str) -> str:
    """A linter installed with the test extras: next to this interpreter, else on PATH."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: install the project's test extras (pip install -e '.[test]')")
    return found


def run(argv: list[str], cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def load_policy() -> dict:
    return json.loads(POLICY_FILE.read_text())


def statements_by_sid(statements: list[dict]) -> dict[str, dict]:
    by_sid = {s["Sid"]: s for s in statements}
    assert len(by_sid) == len(statements), "every statement needs its own Sid"
    return by_sid


def as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def documented_policy() -> dict[str, tuple[set[str], str]]:
    """Sid -> (actions, resource) of docs/iam-policy.json, the one list every other copy must equal."""
    policy = load_policy()
    return {
        sid: (set(as_list(s["Action"])), s["Resource"]) for sid, s in statements_by_sid(policy["Statement"]).items()
    }


# --- workflows ------------------------------------------------------------------------------------


def test_there_is_an_example_for_each_use() -> None:
    names = {p.name for p in EXAMPLE_WORKFLOWS}
    assert names == {
        "push-main.yml",
        "pull-request-scan.yml",
        "reusable-ecr-build.yml",
        "caller-other-org.yml",
        "matrix-accounts.yml",
        "multi-arch-native-runners.yml",
    }
    assert {p.name for p in PROJECT_WORKFLOWS} == {"ci.yml", "release.yml"}


@pytest.mark.parametrize("workflow", ALL_WORKFLOWS, ids=lambda p: p.name)
def test_every_uses_is_pinned_to_a_commit(workflow: Path) -> None:
    text = workflow.read_text()
    uses = USES_LINE.findall(text)
    assert uses, "a workflow with no action or reusable workflow is not an example of using ours"
    for ref in uses:
        assert PINNED.match(ref), f"{workflow.name}: {ref} is not pinned to a 40-hex commit"


def test_examples_use_the_action_or_the_reusable_workflow() -> None:
    for workflow in EXAMPLE_WORKFLOWS:
        text = workflow.read_text()
        assert ACTION_USES.search(text) or REUSABLE_USES.search(text), workflow.name


def documented_workflows() -> list[tuple[str, str]]:
    """The workflows the README prints (its quick start), so they are linted too."""
    blocks = re.findall(r"```yaml\n(.*?)```", README.read_text(), re.DOTALL)
    return [(f"readme-{n}.yml", b) for n, b in enumerate(blocks, 1) if "\njobs:" in b]


def workflow_texts() -> list[tuple[str, str]]:
    return [(p.name, p.read_text()) for p in ALL_WORKFLOWS] + documented_workflows()


def test_docs_print_a_quick_start_workflow() -> None:
    (quick_start, *_) = documented_workflows()
    assert ACTION_USES.search(quick_start[1])


def as_local_repository(tmp_path: Path) -> Path:
    """Lay the workflows out in a repository whose root is this action.

    actionlint checks the inputs of an action only for `uses: ./...`, reading its action.yml, and a
    reusable workflow's inputs and outputs only for `uses: ./.github/workflows/...`. So the pinned
    references users copy are rewritten to local ones, and our real action.yml is put at the root.
    """
    action = ROOT / "action.yml"
    repo = tmp_path / "repo"
    workflows = repo / ".github" / "workflows"
    workflows.mkdir(parents=True)
    # actionlint takes the directory holding .git as the repository root that `./` is relative to;
    # without one it silently skips the local action.
    (repo / ".git").mkdir()
    shutil.copy(action, repo / "action.yml")
    image = (yaml.safe_load(action.read_text()).get("runs") or {}).get("image", "")
    if image and not image.startswith("docker://"):
        # actionlint checks that a Dockerfile action's Dockerfile exists; its content is not ours to lint.
        (repo / image).parent.mkdir(parents=True, exist_ok=True)
        (repo / image).write_text("FROM scratch\n")
    for name, text in workflow_texts():
        text = ACTION_USES.sub("./", text)
        text = REUSABLE_USES.sub(r"./\1", text)
        (workflows / name).write_text(text)
    return repo


def actionlint(repo: Path, workflows: list[Path]) -> subprocess.CompletedProcess[str]:
    # shellcheck given explicitly: actionlint skips the `run:` scripts silently when it finds none.
    argv = [tool("actionlint"), "-no-color", f"-shellcheck={tool('shellcheck')}"]
    return run([*argv, *[str(p.relative_to(repo)) for p in workflows]], cwd=repo)


def test_actionlint_passes_with_inputs_checked_against_action_yml(tmp_path: Path) -> None:
    repo = as_local_repository(tmp_path)
    rewritten = sorted((repo / ".github" / "workflows").glob("*.yml"))
    local_uses = sum(len(re.findall(r"uses: \./", p.read_text())) for p in rewritten)
    assert local_uses >= len(EXAMPLE_WORKFLOWS) + 1, "the rewrite must reach every use of the action"
    result = actionlint(repo, rewritten)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_really_checks_our_inputs(tmp_path: Path) -> None:
    """Misspelled inputs must fail: proves the check above reads action.yml and the reusable workflow."""
    repo = as_local_repository(tmp_path)
    bad = repo / ".github" / "workflows" / "bad.yml"
    bad.write_text(
        "on: push\n"
        "permissions: {}\n"
        "jobs:\n"
        "  j:\n"
        "    runs-on: ubuntu-latest\n"
        "    steps:\n"
        "      - uses: ./\n"
        "        with:\n"
        "          aws-region: us-east-1\n"
        "          repository: app\n"
        "          repositry-policy: policy.json\n"
        "  call:\n"
        "    uses: ./.github/workflows/reusable-ecr-build.yml\n"
        "    with:\n"
        "      aws-region: us-east-1\n"
        "      role-to-assume: arn:aws:iam::111122223333:role/r\n"
        "      repository: app\n"
        "      fail_on: high\n"
    )
    result = actionlint(repo, [bad])
    assert result.returncode != 0
    assert 'input "repositry-policy" is not defined' in result.stdout
    assert 'input "fail_on" is not defined' in result.stdout


def test_zizmor_finds_nothing(tmp_path: Path) -> None:
    documented = []
    for name, text in documented_workflows():
        (tmp_path / name).write_text(text)
        documented.append(tmp_path / name)
    # --offline: no GitHub API calls (the online audits resolve refs and advisories).
    argv = [tool("zizmor"), "--offline", "--no-progress", "--color", "never"]
    result = run([*argv, *map(str, ALL_WORKFLOWS), *map(str, documented)])
    assert result.returncode == 0, result.stdout + result.stderr


def workflow_jobs(path: Path) -> dict:
    return yaml.safe_load(path.read_text())["jobs"]


def test_jobs_that_assume_a_role_ask_for_an_oidc_token() -> None:
    for workflow in EXAMPLE_WORKFLOWS:
        for name, job in workflow_jobs(workflow).items():
            text = yaml.safe_dump(job)
            if "role-to-assume" in text or REUSABLE_USES.search(job.get("uses", "")):
                assert job["permissions"].get("id-token") == "write", f"{workflow.name}:{name}"


def test_pull_request_gate_uploads_sarif_and_skips_forks() -> None:
    job = workflow_jobs(EXAMPLES / "workflows" / "pull-request-scan.yml")["scan"]
    assert job["permissions"] == {"contents": "read", "id-token": "write", "security-events": "write"}
    assert "head.repo.full_name == github.repository" in job["if"]
    ecr = next(s for s in job["steps"] if s.get("id") == "ecr")
    upload = next(s for s in job["steps"] if "codeql-action/upload-sarif@" in s.get("uses", ""))
    assert upload["with"]["sarif_file"] == "${{ steps.ecr.outputs.sarif-file }}"
    assert ecr["with"]["sarif-file"]
    assert upload["if"].startswith("always()")


def test_reusable_workflow_declares_inputs_outputs_and_token() -> None:
    spec = yaml.safe_load((EXAMPLES / "workflows" / "reusable-ecr-build.yml").read_text())
    call = spec[True]["workflow_call"]  # PyYAML reads the key `on` as the boolean True
    assert {"aws-region", "role-to-assume", "repository"} <= set(call["inputs"])
    assert {"image-uri", "image-digest", "gate"} <= set(call["outputs"])
    assert spec["jobs"]["build"]["permissions"]["id-token"] == "write"


# --- the IAM policy, in one place -----------------------------------------------------------------


def test_documented_policy_is_least_privilege() -> None:
    policy = load_policy()
    assert policy["Version"] == "2012-10-17"
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow"
        for action in as_list(statement["Action"]):
            assert re.fullmatch(r"ecr:[A-Z][A-Za-z]+", action), f"{action}: one named ECR action, no wildcard"
        if statement["Resource"] == "*":
            # The registry's token and signing configuration: the ECR actions that cannot be scoped to a
            # repository.
            assert as_list(statement["Action"]) == ["ecr:GetAuthorizationToken", "ecr:GetSigningConfiguration"]
        else:
            assert statement["Resource"] == REPOSITORY_ARN_PLACEHOLDER


def json_blocks(markdown: str) -> list[dict]:
    return [json.loads(block) for block in re.findall(r"```json\n(.*?)```", markdown, re.DOTALL)]


def test_docs_print_the_policy_file() -> None:
    policy = load_policy()
    printed = [b for b in json_blocks(README.read_text()) if "ecr:PutImage" in json.dumps(b)]
    assert printed, "the README must print the least-privilege policy"
    for block in printed:
        assert block == policy, "the README prints a policy that differs from docs/iam-policy.json"


def load_terraform() -> dict[str, dict]:
    import hcl2

    options = hcl2.SerializationOptions(strip_string_quotes=True, with_comments=False, explicit_blocks=False)
    merged: dict[str, dict] = {}
    for path in sorted(TERRAFORM.glob("*.tf")):
        with path.open() as f:
            parsed = hcl2.load(f, serialization_options=options)
        for kind in ("resource", "data", "variable", "output"):
            for block in parsed.get(kind, []):
                for type_name, named in block.items():
                    if kind in ("variable", "output"):
                        merged.setdefault(kind, {})[type_name] = named
                    else:
                        merged.setdefault(kind, {}).setdefault(type_name, {}).update(named)
    return merged


def test_terraform_grants_exactly_the_documented_policy() -> None:
    tf = load_terraform()
    document = tf["data"]["aws_iam_policy_document"]["push_and_scan"]
    granted = {
        s["sid"]: (set(s["actions"]), "*" if s["resources"] == ["*"] else s["resources"]) for s in document["statement"]
    }
    expected = {
        sid: (actions, "*" if resource == "*" else [TERRAFORM_REPOSITORY_ARN])
        for sid, (actions, resource) in documented_policy().items()
    }
    assert granted == expected
    assert all(s["effect"] == "Allow" for s in document["statement"])
    attached = tf["resource"]["aws_iam_role_policy"]["push_and_scan"]
    assert attached["policy"] == "${data.aws_iam_policy_document.push_and_scan.json}"
    assert attached["role"] == "${aws_iam_role.ecr_action.id}"


def test_terraform_trusts_only_github_for_given_repositories() -> None:
    tf = load_terraform()
    provider = tf["resource"]["aws_iam_openid_connect_provider"]["github"]
    assert provider["client_id_list"] == ["sts.amazonaws.com"]
    assert OIDC_HOST in provider["url"] or provider["url"] == "https://${local.oidc_host}"
    (statement,) = tf["data"]["aws_iam_policy_document"]["trust"]["statement"]
    assert statement["actions"] == ["sts:AssumeRoleWithWebIdentity"]
    conditions = {c["variable"].split(":")[-1]: c for c in statement["condition"]}
    assert conditions["aud"]["test"] == "StringEquals"
    assert conditions["aud"]["values"] == ["sts.amazonaws.com"]
    assert conditions["sub"]["values"] == "${local.trusted_subjects}"
    (dynamic,) = statement["dynamic"]
    (job_workflow,) = dynamic["condition"]["content"]
    assert job_workflow["variable"].endswith(":job_workflow_ref")
    assert {"github_repositories", "github_refs", "job_workflow_refs"} <= set(tf["variable"])
    assert tf["resource"]["aws_iam_role"]["ecr_action"]["assume_role_policy"] == (
        "${data.aws_iam_policy_document.trust.json}"
    )


def test_terraform_repository_is_scanned_immutable_encrypted_and_cleaned_up() -> None:
    tf = load_terraform()
    repository = tf["resource"]["aws_ecr_repository"]["app"]
    assert repository["image_tag_mutability"] == "IMMUTABLE"
    assert repository["image_scanning_configuration"] == [{"scan_on_push": True}]
    assert repository["encryption_configuration"] == [{"encryption_type": "KMS", "kms_key": "${aws_kms_key.ecr.arn}"}]
    assert tf["resource"]["aws_kms_key"]["ecr"]["enable_key_rotation"] is True
    lifecycle = tf["resource"]["aws_ecr_lifecycle_policy"]["app"]
    assert "lifecycle-policy.json" in lifecycle["policy"]
    rules = json.loads((TERRAFORM / "lifecycle-policy.json").read_text())["rules"]
    assert [r["rulePriority"] for r in rules] == sorted({r["rulePriority"] for r in rules})
    assert rules[0]["selection"]["tagStatus"] == "untagged"
    # ECR requires the rule selecting "any" tag status to have the lowest priority.
    assert [r["selection"]["tagStatus"] for r in rules].index("any") == len(rules) - 1


# --- CloudFormation -------------------------------------------------------------------------------


def load_template() -> dict:
    from cfnlint.decode import decode

    template, problems = decode(str(CFN_TEMPLATE))
    assert not problems, problems
    return template


def test_cfn_lint_passes() -> None:
    result = run([tool("cfn-lint"), "--", str(CFN_TEMPLATE)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_cloudformation_grants_exactly_the_documented_policy() -> None:
    role = load_template()["Resources"]["EcrActionRole"]["Properties"]
    (inline,) = role["Policies"]
    granted = {s["Sid"]: (set(as_list(s["Action"])), s["Resource"]) for s in inline["PolicyDocument"]["Statement"]}
    expected = {
        sid: (actions, "*" if resource == "*" else CFN_REPOSITORY_ARN)
        for sid, (actions, resource) in documented_policy().items()
    }
    assert granted == expected


def test_cloudformation_trust_and_repository_match_terraform() -> None:
    resources = load_template()["Resources"]
    provider = resources["GitHubOidcProvider"]["Properties"]
    assert provider["Url"] == f"https://{OIDC_HOST}"
    assert provider["ClientIdList"] == ["sts.amazonaws.com"]
    (trust,) = resources["EcrActionRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Action"] == "sts:AssumeRoleWithWebIdentity"
    _, with_workflow, without_workflow = trust["Condition"]["Fn::If"]
    for condition in (with_workflow, without_workflow):
        assert condition["StringEquals"] == {f"{OIDC_HOST}:aud": "sts.amazonaws.com"}
        assert condition["StringLike"][f"{OIDC_HOST}:sub"] == {"Ref": "TrustedSubjects"}
    assert with_workflow["StringLike"][f"{OIDC_HOST}:job_workflow_ref"] == {"Ref": "JobWorkflowRefs"}

    repository = resources["Repository"]["Properties"]
    assert repository["ImageTagMutability"] == "IMMUTABLE"
    assert repository["ImageScanningConfiguration"] == {"ScanOnPush": True}
    assert repository["EncryptionConfiguration"] == {
        "EncryptionType": "KMS",
        "KmsKey": {"Fn::GetAtt": ["RepositoryKey", "Arn"]},
    }
    assert json.loads(repository["LifecyclePolicy"]["LifecyclePolicyText"]) == json.loads(
        (TERRAFORM / "lifecycle-policy.json").read_text()
    )


# --- the demo app ---------------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (APP / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
        for line in lines
        if line and not line.startswith("#")
    ]


def test_app_image_is_a_scratch_image_built_from_the_context_alone() -> None:
    instructions = dockerfile_instructions()
    stages = [args.split()[0] for op, args in instructions if op == "FROM"]
    assert stages and stages[-1] == "scratch", "the final stage must be FROM scratch"
    # Without a base image there is no shell to RUN with, and nothing may be fetched: only COPY.
    assert not [op for op, _ in instructions if op in {"RUN", "ADD"}]
    entrypoint = next(args for op, args in instructions if op == "ENTRYPOINT")
    assert json.loads(entrypoint)[0] == "/bin/busybox", "exec form: the image has no /bin/sh"


def test_app_context_holds_what_the_dockerfile_copies() -> None:
    ignore = (APP / ".dockerignore").read_text().splitlines()
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    for op, args in dockerfile_instructions():
        if op != "COPY":
            continue
        *sources, _ = [a for a in args.split() if not a.startswith("--")]
        for source in sources:
            name = source.rstrip("/")
            assert name in allowed, f"{name} is copied but .dockerignore keeps it out of the context"
            # busybox is put into the context by the demo script (a static binary from the host).
            assert name == "busybox" or (APP / name).exists(), f"{name} is missing from examples/app"
