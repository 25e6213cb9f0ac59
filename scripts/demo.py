"""Run ecr-action once against the local stack, as the runner runs it, and show what a user would see."""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

from stack.apps import BUSYBOX
from stack.client import StackClient
from stack.config import REPO_ROOT, StackConfig
from stack.runner import RunnerStep, run_action

REPOSITORY = "demo/app"
DEMO_FINDINGS = [
    {
        "name": "CVE-2024-58251",
        "severity": "MEDIUM",
        "uri": "https://nvd.nist.gov/vuln/detail/CVE-2024-58251",
        "description": "busybox netstat: crafted DNS PTR record can corrupt the terminal.",
        "attributes": [{"key": "package_name", "value": "busybox"}, {"key": "package_version", "value": "1.35.0"}],
    },
    {
        "name": "CVE-2023-42366",
        "severity": "LOW",
        "uri": "https://nvd.nist.gov/vuln/detail/CVE-2023-42366",
        "attributes": [{"key": "package_name", "value": "busybox"}, {"key": "package_version", "value": "1.35.0"}],
    },
]


def main() -> int:
    stack = StackClient(StackConfig.load())
    # What the examples' Terraform sets up in a real account: GitHub's OIDC provider and a role it may assume.
    role = stack.github_role("ecr-action-demo", subjects=("repo:octo-org/octo-app:*",))
    # The findings the local ECR reports for the demo image's scan (a real ECR finds them in the image).
    stack.scan_results(
        {
            "repositoryName": REPOSITORY,
            "imageId": {},
            "imageScanStatus": {"status": "COMPLETE", "description": "The scan was completed successfully."},
            "imageScanFindings": {"findings": DEMO_FINDINGS},
        }
    )
    with tempfile.TemporaryDirectory(prefix="ecr-action-demo-") as root:
        step = RunnerStep.in_directory(Path(root))
        app = step.workspace / "app"
        shutil.copytree(REPO_ROOT / "examples" / "app", app)
        shutil.copy(BUSYBOX, app / "busybox")
        inputs = {
            "aws-region": stack.region,
            "role-to-assume": role,
            "repository": REPOSITORY,
            "context": "app",
            # The stack's engine has no bridge network for BuildKit's RUN steps (a runner's has).
            "network": "none",
            "tags": "v1, latest",
            # The demo can be run again: a rebuilt image moves the tags (the default would refuse).
            "if-tag-exists": "overwrite",
            "lifecycle-policy": (REPO_ROOT / "examples" / "terraform" / "lifecycle-policy.json").read_text(),
            "fail-on": "critical",
            "sarif-file": "ecr-scan.sarif",
        }
        print(f"$ ecr-action  (role {role}, repository {REPOSITORY}, tags v1, latest)\n", flush=True)
        result = run_action(step.environment(stack, stack.github_job(), inputs))
        print(result.stdout, end="")
        print(result.stderr, end="", file=sys.stderr)
        print("\n--- step outputs (GITHUB_OUTPUT) ---")
        for name, value in step.outputs().items():
            print(f"{name} = {value}")
        print("\n--- job summary (GITHUB_STEP_SUMMARY) ---")
        print(step.summary_file.read_text())
        sarif = json.loads((step.workspace / "ecr-scan.sarif").read_text()) if result.returncode == 0 else None
        if sarif:
            print(f"--- SARIF: {len(sarif['runs'][0]['results'])} results in ecr-scan.sarif ---")
        print(f"exit code: {result.returncode}")
        return result.returncode


if __name__ == "__main__":
    sys.exit(main())
