"""Shared fixtures. The local stack starts once per test session (and only if it is not already up)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from stack import control
from stack.apps import write_app, write_multiarch_app
from stack.client import StackClient
from stack.config import StackConfig


@pytest.fixture(scope="session")
def stack() -> Iterator[StackClient]:
    config = StackConfig.load()
    already_up = all(control.status(config).values())
    if not already_up:
        control.up(config)
    yield StackClient(config)
    if not already_up:
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
