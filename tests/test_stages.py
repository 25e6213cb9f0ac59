"""What each stage is asked to do, from the inputs. Pure."""

from __future__ import annotations

from pathlib import Path

import pytest

from ecr_action import stages
from ecr_action.inputs.choices import Builder, CacheTo, ScanMode
from tests.helpers import read, runner_environment


@pytest.mark.parametrize(
    ("given", "scan_on_push"),
    [
        ({"scan-on-push": "false", "scan": "on-push"}, True),  # on-push waits for the scan, so it turns it on
        ({"scan-on-push": "false", "scan": "manual"}, False),
        ({"scan-on-push": "true", "scan": "skip"}, True),
    ],
)
def test_the_repository_scans_on_push_when_the_run_waits_for_it(
    workspace: Path, given: dict[str, str], scan_on_push: bool
) -> None:
    assert stages.repository_spec(read(runner_environment(workspace, given))).scan_on_push is scan_on_push


def test_the_build_spec_carries_the_build_inputs(workspace: Path) -> None:
    inputs = read(
        runner_environment(
            workspace,
            {
                "builder": "buildkit",
                "platforms": "linux/arm64",
                "network": "none",
                "secrets": "token=x",
                "cache-to": "inline",
                "build-timeout": "90",
            },
        )
    )
    spec = stages.build_spec(inputs, (), None, ("cache:ref",))
    assert (spec.builder, spec.platforms, spec.network, spec.secrets) == (
        Builder.BUILDKIT,
        ("linux/arm64",),
        "none",
        (("token", b"x"),),
    )
    assert (spec.cache_from, spec.inline_cache, spec.timeout_seconds) == (("cache:ref",), True, 90)
    assert inputs.cache_to is CacheTo.INLINE


def test_signing_waits_only_for_what_is_left_of_the_scan_deadline(workspace: Path) -> None:
    inputs = read(runner_environment(workspace, {"scan-timeout": "100"}))
    assert stages.signing_request(inputs, "1", "1", "sha256:a", 30.0).timeout_seconds == 70.0
    assert stages.signing_request(inputs, "1", "1", "sha256:a", 130.0).timeout_seconds == 0.0


def test_the_scan_request_follows_the_scan_inputs(workspace: Path) -> None:
    inputs = read(runner_environment(workspace, {"scan": "manual", "scan-timeout": "42", "scan-poll-interval": "3"}))
    request = stages.scan_request(inputs, None, "sha256:a")
    assert (request.mode, request.timeout_seconds, request.poll_interval_seconds) == (ScanMode.MANUAL, 42, 3)
