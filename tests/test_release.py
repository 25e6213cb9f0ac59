"""Releasing: the action.yml rewrite (scripts/pin_image.py) and scripts/release end to end on the stack,
with one of the stack's registries standing in for GHCR, in a temporary clone (the repository itself is
never tagged)."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from stack.client import StackClient
from stack.config import REPO_ROOT
from tests.helpers import ecr_login, load_script

DIGEST = "sha256:" + "ab" * 32


pin_image = load_script("pin_image")


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (
            "runs:\n  using: docker\n  image: Dockerfile\n",
            f"runs:\n  using: docker\n  image: docker://ghcr.io/o/a@{DIGEST}\n",
        ),
        # A release pinned again (a re-release on top of one) replaces the old reference.
        (
            f"runs:\n  using: docker\n  image: docker://ghcr.io/o/a@sha256:{'0' * 64}\n",
            f"runs:\n  using: docker\n  image: docker://ghcr.io/o/a@{DIGEST}\n",
        ),
        # Only runs.image: an input's `image:` text and comments are left alone.
        (
            "inputs:\n  image:\n    description: image: x\n# image: old\nruns:\n  using: docker\n\n"
            "  image: 'Dockerfile'\n",
            "inputs:\n  image:\n    description: image: x\n# image: old\nruns:\n  using: docker\n\n"
            f"  image: docker://ghcr.io/o/a@{DIGEST}\n",
        ),
    ],
)
def test_pin_sets_only_runs_image(before: str, after: str) -> None:
    assert pin_image.pin(before, f"ghcr.io/o/a@{DIGEST}") == after


@pytest.mark.parametrize(
    "reference",
    ["ghcr.io/o/a:v1", "ghcr.io/o/a", f"a@{DIGEST}", f"ghcr.io/O/a@{DIGEST}", f"ghcr.io/o/a@sha256:{'ab' * 31}"],
)
def test_pin_refuses_anything_but_a_reference_by_digest(reference: str) -> None:
    with pytest.raises(pin_image.PinError):
        pin_image.pin("runs:\n  image: Dockerfile\n", reference)


def test_pin_refuses_an_action_without_runs_image() -> None:
    with pytest.raises(pin_image.PinError):
        pin_image.pin("runs:\n  using: node20\n  main: index.js\n", f"ghcr.io/o/a@{DIGEST}")


def test_the_cli_rewrites_the_file_and_the_real_action_yml_is_pinnable(tmp_path: Path) -> None:
    action = tmp_path / "action.yml"
    action.write_text((REPO_ROOT / "action.yml").read_text())

    assert pin_image.main(["--action", str(action), "--image", f"ghcr.io/o/a@{DIGEST}"]) == 0
    assert pin_image.main(["--action", str(action), "--image", "ghcr.io/o/a:v1"]) == 2

    before, after = (REPO_ROOT / "action.yml").read_text().splitlines(), action.read_text().splitlines()
    assert [(b, a) for b, a in zip(before, after, strict=True) if b != a] == [
        ("  image: Dockerfile", f"  image: docker://ghcr.io/o/a@{DIGEST}")
    ]


# End to end ------------------------------------------------------------------------------------------
def git(clone: Path, *arguments: str) -> str:
    return subprocess.run(["git", "-C", str(clone), *arguments], capture_output=True, text=True, check=True).stdout


@pytest.mark.stack
def test_release_builds_tests_pushes_and_tags_a_commit_naming_the_digest(
    stack: StackClient, tmp_path: Path, unique_name: str
) -> None:
    # The clone holds HEAD's commit: commit what is to be released before running this test.
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(REPO_ROOT), str(clone)], check=True)
    main_commit = git(clone, "rev-parse", "HEAD").strip()
    # "GHCR": one of the stack's registries, logged in with its ECR token through DOCKER_CONFIG.
    host, auth = ecr_login(stack, stack.default_account)
    repository = f"{unique_name}/ecr-action"
    stack.ecr().create_repository(repositoryName=repository)
    docker_config = tmp_path / "docker-config"
    docker_config.mkdir()
    token = base64.b64encode(f"{auth['username']}:{auth['password']}".encode()).decode()
    (docker_config / "config.json").write_text(json.dumps({"auths": {host: {"auth": token}}}))
    registry = f"{host}/{repository}"

    result = subprocess.run(
        [str(clone / "scripts" / "release"), "--registry", registry, "--version", "v1.2.3"],
        cwd=clone,
        env={
            **os.environ,
            "DOCKER_CONFIG": str(docker_config),
            "ECR_STACK_DIR": str(stack.config.root),
            "RELEASE_PYTHON": sys.executable,
        },
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    tested = re.search(r"^== runner-level test of (sha256:[0-9a-f]{64})$", result.stdout, re.MULTILINE)
    assert tested, result.stdout
    assert re.search(r"passed", result.stdout)
    manifest = stack.registry_manifest(repository, "v1.2.3")
    assert manifest.status_code == 200
    digest = manifest.headers["Docker-Content-Digest"]
    # The image pushed is the image tested: its configuration's digest is the image id.
    assert manifest.json()["config"]["digest"] == tested[1]

    release = git(clone, "rev-parse", "v1.2.3^{commit}").strip()
    assert git(clone, "rev-parse", "v1^{commit}").strip() == release
    assert git(clone, "rev-parse", f"{release}^").strip() == main_commit
    assert git(clone, "diff", "--name-only", main_commit, release).split() == ["action.yml"]
    assert f"  image: docker://{registry}@{digest}\n" in git(clone, "show", f"{release}:action.yml")
    # The branch is untouched: main keeps building the Dockerfile.
    assert git(clone, "rev-parse", "HEAD").strip() == main_commit
    assert "  image: Dockerfile\n" in (clone / "action.yml").read_text()
    assert git(clone, "status", "--porcelain") == ""
    # The real repository got no tag.
    assert "v1.2.3" not in git(REPO_ROOT, "tag", "--list")

    again = subprocess.run(
        [str(clone / "scripts" / "release"), "--registry", registry, "--version", "v1.2.3"],
        cwd=clone,
        capture_output=True,
        text=True,
        check=False,
    )
    assert again.returncode == 2
    assert "tag v1.2.3 exists already" in again.stderr
