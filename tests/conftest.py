"""Shared fixtures. The local stack starts once per test session (and only if it is not already up).

Tests that use it are marked `stack` automatically; `pytest -m "not stack"` runs the pure tier.
"""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from stack import control, ecr_names
from stack.apps import write_app, write_multiarch_app
from stack.client import StackClient
from stack.config import StackConfig
from tests.helpers import LIFECYCLE


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that uses the stack, directly or through another fixture, carries the `stack` marker,
    so `pytest -m "not stack"` runs the pure tests alone (no stack, no root)."""
    for item in items:
        if "stack" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.stack)


def _any_part_running(config: StackConfig) -> bool:
    """Whether any process of the stack runs, ready or not: then the stack belongs to someone else."""
    return any(control._running_pid(config, part) for part in control.parts(config)) or bool(control.stray_pids(config))


@pytest.fixture(scope="session")
def stack() -> Iterator[StackClient]:
    config = StackConfig.load()
    # Only a stack this session starts from nothing is stopped at the end. A stack that is partly up
    # (one part briefly not ready while another session restarts it) is shared: `up` starts the
    # missing parts and waits, and nothing here takes it down under the other session.
    started_here = not _any_part_running(config)
    if not all(control.status(config).values()):
        control.up(config)
    yield StackClient(config)
    if started_here:
        control.down(config)


@pytest.fixture
def unique_name() -> str:
    """A repository name no other test uses, so tests share the stack without sharing state."""
    return f"test/app-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    return write_app(tmp_path / "app", marker=uuid.uuid4().hex)


@pytest.fixture
def multiarch_app_dir(stack: StackClient, tmp_path: Path) -> Path:
    """`app_dir`'s app for BuildKit, buildable for linux/amd64 and linux/arm64 (see stack.apps)."""
    return write_multiarch_app(tmp_path / "multiarch-app", marker=uuid.uuid4().hex, config=stack.config)


@pytest.fixture
def aws_env(stack: StackClient, monkeypatch: pytest.MonkeyPatch) -> StackClient:
    """boto3's standard settings pointed at the stack, as a user's job would have them for a real account."""
    for name, value in stack.config.client_environment().items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(name, raising=False)
    return stack


@pytest.fixture
def ecr_hosts(stack: StackClient, monkeypatch: pytest.MonkeyPatch) -> StackClient:
    """This process reaches the stack's registries as the action does ECR's on a runner: the genuine
    hostnames resolve to them (only those: every other name resolves as before) and their certificate
    verifies, through the standard CA variables (requests' `verify=True` reads REQUESTS_CA_BUNDLE).
    A process of its own gets the same from stack.runner.run_in_step / run_action."""
    addresses = ecr_names.addresses(stack.config)
    real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):  # type: ignore[no-untyped-def]
        return real(addresses.get(host, host), *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    for name, value in ecr_names.ca_environment(str(ecr_names.ca_bundle(stack.config))).items():
        monkeypatch.setenv(name, value)
    return stack


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A workspace with the files the input tests name: Dockerfiles, a lifecycle policy, an ignore-file."""
    root = (tmp_path / "workspace").resolve()
    (root / "app").mkdir(parents=True)
    (root / "app" / "Dockerfile").write_text("FROM scratch\n")
    (root / "app" / "Containerfile").write_text("FROM scratch\n")
    (root / "Dockerfile").write_text("FROM scratch\n")
    (root / "src").mkdir()
    (root / "src" / "main.py").write_text("")
    (root / "empty").mkdir()
    (root / "reports").mkdir()
    (root / "lifecycle.json").write_text(json.dumps(LIFECYCLE, indent=2))
    (root / "ignore.yml").write_text("- id: CVE-2024-1234\n  reason: not reachable\n")
    return root
