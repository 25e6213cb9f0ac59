"""The run as the runner describes it: the GITHUB_* and related variables, and the event's payload."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"
OCI_LABEL = "org.opencontainers.image."


@dataclass(frozen=True, slots=True)
class GitHubContext:
    """What the runner tells the action about the run, from its GITHUB_* and related variables."""

    repository: str  # owner/name; empty outside the runner, as are the strings below
    sha: str
    ref: str
    server_url: str
    run_id: str
    run_attempt: str
    workflow: str
    event_name: str
    actor: str
    workspace: Path
    output_path: Path | None
    summary_path: Path | None
    debug: bool
    oidc_request_url: str | None
    oidc_request_token: str | None = field(repr=False)
    is_fork_pull_request: bool
    docker_host: str  # the Docker Engine the runner's job uses
    # When the event's commit was made (None: unknown): the same for every re-run of the job, so the
    # image's `created` label, and with it the image, does not change when nothing else does.
    event_time: datetime | None
    # For tag placeholders (`ecr_action.inputs.placeholders`): GITHUB_REF_NAME, GITHUB_HEAD_REF (the
    # pull request's branch), GITHUB_RUN_NUMBER, and the pull request's number from the event.
    ref_name: str = ""
    head_ref: str = ""
    run_number: str = ""
    pull_request_number: str | None = None

    def default_session_name(self) -> str:
        name = "-".join(part for part in ("ecr-action", self.run_id, self.run_attempt) if part)
        return re.sub(r"[^\w+=,.@-]", "-", name, flags=re.ASCII)[:64]

    def oci_labels(
        self, created: datetime, user_labels: Iterable[tuple[str, str]] | None
    ) -> tuple[tuple[str, str], ...]:
        """The OCI labels from the run, then the user's; a user label of the same key replaces the OCI one."""
        labels: dict[str, str] = {}
        url = f"{self.server_url.rstrip('/')}/{self.repository}" if self.repository else ""
        if url:
            labels[OCI_LABEL + "source"] = url
        if self.sha:
            labels[OCI_LABEL + "revision"] = self.sha
        labels[OCI_LABEL + "created"] = created.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        if url:
            labels[OCI_LABEL + "url"] = url
        labels.update(user_labels or ())
        return tuple(labels.items())


def read_github_context(environ: Mapping[str, str]) -> GitHubContext:
    """The run as the runner describes it; also usable when the inputs are invalid (e.g. for the summary)."""

    def optional_path(name: str) -> Path | None:
        return Path(environ[name]) if environ.get(name) else None

    repository = environ.get("GITHUB_REPOSITORY", "")
    event = _event(environ.get("GITHUB_EVENT_PATH", ""))
    return GitHubContext(
        repository=repository,
        sha=environ.get("GITHUB_SHA", ""),
        ref=environ.get("GITHUB_REF", ""),
        server_url=environ.get("GITHUB_SERVER_URL") or "https://github.com",
        run_id=environ.get("GITHUB_RUN_ID", ""),
        run_attempt=environ.get("GITHUB_RUN_ATTEMPT", ""),
        workflow=environ.get("GITHUB_WORKFLOW", ""),
        event_name=environ.get("GITHUB_EVENT_NAME", ""),
        actor=environ.get("GITHUB_ACTOR", ""),
        workspace=Path(environ.get("GITHUB_WORKSPACE") or Path.cwd()).resolve(),
        output_path=optional_path("GITHUB_OUTPUT"),
        summary_path=optional_path("GITHUB_STEP_SUMMARY"),
        debug=environ.get("RUNNER_DEBUG") == "1",
        oidc_request_url=environ.get("ACTIONS_ID_TOKEN_REQUEST_URL") or None,
        oidc_request_token=environ.get("ACTIONS_ID_TOKEN_REQUEST_TOKEN") or None,
        is_fork_pull_request=_is_fork_pull_request(event, repository),
        docker_host=environ.get("DOCKER_HOST") or DEFAULT_DOCKER_HOST,
        event_time=_event_time(event),
        ref_name=environ.get("GITHUB_REF_NAME", ""),
        head_ref=environ.get("GITHUB_HEAD_REF", ""),
        run_number=environ.get("GITHUB_RUN_NUMBER", ""),
        pull_request_number=_pull_request_number(event),
    )


def _event(event_path: str) -> Any:
    """The webhook payload that triggered the run (None when absent or unreadable)."""
    if not event_path:
        return None
    try:
        return json.loads(Path(event_path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _event_time(event: Any) -> datetime | None:
    stamp = _dig(event, "head_commit", "timestamp") or _dig(event, "pull_request", "updated_at")
    try:
        return datetime.fromisoformat(stamp) if isinstance(stamp, str) else None
    except ValueError:
        return None


def _pull_request_number(event: Any) -> str | None:
    number = _dig(event, "pull_request", "number") or _dig(event, "number")
    return str(number) if isinstance(number, int) and not isinstance(number, bool) else None


def _is_fork_pull_request(event: Any, repository: str) -> bool:
    pull_request = _dig(event, "pull_request")
    if not isinstance(pull_request, dict):
        return False
    base = _dig(pull_request, "base", "repo", "full_name") or repository
    # A deleted fork leaves head.repo null: still a pull request from outside the repository.
    return _dig(pull_request, "head", "repo", "full_name") != base


def _dig(value: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value
