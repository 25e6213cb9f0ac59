"""Tag placeholders, expanded from the run as the runner describes it: a table over the events, each from
the variables and the (trimmed) webhook payload GitHub gives that event."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ecr_action.errors import InputError
from ecr_action.inputs import INPUT_SPECS, INPUTS, read_github_context, read_inputs
from ecr_action.inputs.placeholders import expand_tags

SHA = "8f1c2d3e4b5a69788796a5b4c3d2e1f001234567"
NOW = datetime(2025, 3, 9, 23, 30, tzinfo=UTC)
ALL = (
    "{{sha}}",
    "{{short-sha}}",
    "{{branch}}",
    "pr-{{pr}}",
    "{{version}}",
    "v{{major}}",
    "v{{major}}.{{minor}}",
    "build-{{run-number}}",
    "nightly-{{date}}",
    "{{branch}}-{{short-sha}}",
)
REPOSITORY = {"full_name": "octo-org/octo-app"}

EVENTS = {
    "push-branch": (
        {
            "GITHUB_EVENT_NAME": "push",
            "GITHUB_REF": "refs/heads/feature/Login_v2",
            "GITHUB_REF_NAME": "feature/Login_v2",
            "GITHUB_RUN_NUMBER": "42",
        },
        {"ref": "refs/heads/feature/Login_v2", "after": SHA, "repository": REPOSITORY, "head_commit": {"id": SHA}},
    ),
    "push-tag": (
        {
            "GITHUB_EVENT_NAME": "push",
            "GITHUB_REF": "refs/tags/v1.2.3",
            "GITHUB_REF_NAME": "v1.2.3",
            "GITHUB_RUN_NUMBER": "43",
        },
        {"ref": "refs/tags/v1.2.3", "after": SHA, "repository": REPOSITORY, "head_commit": {"id": SHA}},
    ),
    "push-prerelease-tag": (
        {
            "GITHUB_EVENT_NAME": "push",
            "GITHUB_REF": "refs/tags/v2.0.0-rc.1",
            "GITHUB_REF_NAME": "v2.0.0-rc.1",
            "GITHUB_RUN_NUMBER": "44",
        },
        {"ref": "refs/tags/v2.0.0-rc.1", "after": SHA, "repository": REPOSITORY},
    ),
    "pull-request": (
        {
            "GITHUB_EVENT_NAME": "pull_request",
            "GITHUB_REF": "refs/pull/17/merge",
            "GITHUB_REF_NAME": "17/merge",
            "GITHUB_HEAD_REF": "dependabot/pip/requests-2.32",
            "GITHUB_BASE_REF": "main",
            "GITHUB_RUN_NUMBER": "45",
        },
        {
            "action": "synchronize",
            "number": 17,
            "pull_request": {
                "number": 17,
                "head": {"ref": "dependabot/pip/requests-2.32", "sha": SHA, "repo": REPOSITORY},
                "base": {"ref": "main", "repo": REPOSITORY},
                "updated_at": "2025-03-09T20:00:00Z",
            },
            "repository": REPOSITORY,
        },
    ),
    "workflow-dispatch": (
        {
            "GITHUB_EVENT_NAME": "workflow_dispatch",
            "GITHUB_REF": "refs/heads/main",
            "GITHUB_REF_NAME": "main",
            "GITHUB_RUN_NUMBER": "46",
        },
        {"inputs": {"environment": "staging"}, "ref": "refs/heads/main", "repository": REPOSITORY},
    ),
    "schedule": (
        {
            "GITHUB_EVENT_NAME": "schedule",
            "GITHUB_REF": "refs/heads/main",
            "GITHUB_REF_NAME": "main",
            "GITHUB_RUN_NUMBER": "47",
        },
        {"schedule": "30 23 * * *"},
    ),
}

CASES = [
    pytest.param(
        "push-branch",
        (SHA, "8f1c2d3", "feature-Login_v2", "build-42", "nightly-20250309", "feature-Login_v2-8f1c2d3"),
        ["pr-{{pr}}", "{{version}}", "v{{major}}", "v{{major}}.{{minor}}"],
        id="push to a branch",
    ),
    pytest.param(
        "push-tag",
        (SHA, "8f1c2d3", "1.2.3", "v1", "v1.2", "build-43", "nightly-20250309"),
        ["{{branch}}", "pr-{{pr}}", "{{branch}}-{{short-sha}}"],
        id="tag push",
    ),
    pytest.param(
        "push-prerelease-tag",
        (SHA, "8f1c2d3", "2.0.0-rc.1", "build-44", "nightly-20250309"),
        ["{{branch}}", "pr-{{pr}}", "v{{major}}", "v{{major}}.{{minor}}", "{{branch}}-{{short-sha}}"],
        id="pre-release tag push: no floating major and minor",
    ),
    pytest.param(
        "pull-request",
        (
            SHA,
            "8f1c2d3",
            "dependabot-pip-requests-2.32",
            "pr-17",
            "build-45",
            "nightly-20250309",
            "dependabot-pip-requests-2.32-8f1c2d3",
        ),
        ["{{version}}", "v{{major}}", "v{{major}}.{{minor}}"],
        id="pull request: the head branch, not refs/pull/17/merge",
    ),
    pytest.param(
        "workflow-dispatch",
        (SHA, "8f1c2d3", "main", "build-46", "nightly-20250309", "main-8f1c2d3"),
        ["pr-{{pr}}", "{{version}}", "v{{major}}", "v{{major}}.{{minor}}"],
        id="workflow_dispatch",
    ),
    pytest.param(
        "schedule",
        (SHA, "8f1c2d3", "main", "build-47", "nightly-20250309", "main-8f1c2d3"),
        ["pr-{{pr}}", "{{version}}", "v{{major}}", "v{{major}}.{{minor}}"],
        id="schedule",
    ),
]


def run_environment(tmp_path: Path, event: str, tags: str | None = None) -> dict[str, str]:
    variables, payload = EVENTS[event]
    event_path = tmp_path / "event.json"
    event_path.write_text(json.dumps(payload))
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    environment = {spec.variable: spec.default or "" for spec in INPUT_SPECS}
    environment |= {
        "INPUT_AWS-REGION": "eu-west-1",
        "INPUT_REPOSITORY": "team/app",
        "GITHUB_SHA": SHA,
        "GITHUB_WORKSPACE": str(tmp_path),
        "GITHUB_EVENT_PATH": str(event_path),
        **variables,
    }
    if tags is not None:
        environment[INPUTS["tags"].variable] = tags
    return environment


@pytest.mark.parametrize(("event", "tags", "skipped"), CASES)
def test_each_event_gives_its_tags_and_skips_the_lines_without_a_value(
    tmp_path: Path, event: str, tags: tuple[str, ...], skipped: list[str]
) -> None:
    github = read_github_context(run_environment(tmp_path, event))
    expansion = expand_tags(ALL, github, NOW)
    assert expansion.tags == tags
    assert [line.split("'")[1] for line in expansion.skipped] == skipped


def test_a_skipped_line_says_which_placeholder_has_no_value_on_which_event(tmp_path: Path) -> None:
    github = read_github_context(run_environment(tmp_path, "push-branch"))
    assert expand_tags(["v{{major}}.{{minor}}", "pr-{{pr}}"], github, NOW).skipped == (
        "'v{{major}}.{{minor}}': {{major}}, {{minor}} have no value on this push event",
        "'pr-{{pr}}': {{pr}} has no value on this push event",
    )


def test_the_default_stays_the_short_sha(tmp_path: Path) -> None:
    inputs = read_inputs(
        run_environment(tmp_path, "schedule"), read_github_context(run_environment(tmp_path, "schedule"))
    )
    assert (inputs.tags, inputs.skipped_tags) == (("8f1c2d3",), ())


def test_inputs_keep_the_skipped_lines_for_the_log(tmp_path: Path) -> None:
    environment = run_environment(tmp_path, "pull-request", "pr-{{pr}}, {{version}}\nlatest")
    inputs = read_inputs(environment, read_github_context(environment), now=lambda: NOW)
    assert inputs.tags == ("pr-17", "latest")
    assert inputs.skipped_tags == ("'{{version}}': {{version}} has no value on this pull_request event",)


@pytest.mark.parametrize(
    ("event", "tags", "problem"),
    [
        pytest.param(
            "push-branch",
            "v{{version}}, {{pr}}",
            "input 'tags': no tag is left on this push event: every line was skipped ('v{{version}}': {{version}} "
            "has no value on this push event; '{{pr}}': {{pr}} has no value on this push event); add a line that "
            "has a value here, such as {{short-sha}}",
            id="no tag left",
        ),
        pytest.param(
            "push-branch",
            "{{sha}}, {{tag}}, {{ref}}",
            "input 'tags': got the unknown placeholder {{ref}}, {{tag}}; expected placeholders among {{sha}}, "
            "{{short-sha}}, {{branch}}, {{pr}}, {{version}}, {{major}}, {{minor}}, {{run-number}}, {{date}}",
            id="unknown placeholder",
        ),
        pytest.param(
            "push-branch",
            "{{branch}}/{{short-sha}}",
            "input 'tags': got 'feature-Login_v2/8f1c2d3'; expected image tags of letters, digits and _.- (not "
            "starting with . or -), at most 128 characters",
            id="an expanded tag that is not a tag",
        ),
    ],
)
def test_tag_problems_are_input_errors(tmp_path: Path, event: str, tags: str, problem: str) -> None:
    environment = run_environment(tmp_path, event, tags)
    with pytest.raises(InputError) as raised:
        read_inputs(environment, read_github_context(environment), now=lambda: NOW)
    assert raised.value.problems == [problem]
