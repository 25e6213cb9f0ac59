"""Tags from the Git context: `{{name}}` placeholders in `tags`, expanded from the run's event.

Pure: `expand_tags` takes the lines and the run, and returns the tags with the lines it skipped (a line
whose placeholder has no value on this event, such as `{{pr}}` on a push) and why; the reader reports
unknown placeholders and bad tags, and `main` logs the skipped lines.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from ecr_action.inputs.context import GitHubContext

DEFAULT_TAGS = "{{short-sha}}"
PLACEHOLDER = re.compile(r"\{\{\s*([a-z-]+)\s*\}\}")
# A release tag: v1.2.3, 1.2.3, v1.2.3-rc.1 (build metadata after `+` is dropped: `+` is not allowed in
# an image tag).
SEMVER = re.compile(
    r"v?(?P<major>0|[1-9]\d*)\.(?P<minor>0|[1-9]\d*)\.(?P<patch>0|[1-9]\d*)(?P<pre>-[0-9A-Za-z.-]+)?(?:\+.*)?"
)
TAG_LENGTH = 128
PULL_REQUEST_EVENTS = ("pull_request", "pull_request_target")


@dataclass(frozen=True, slots=True)
class Expansion:
    tags: tuple[str, ...]  # in the order given, each once
    skipped: tuple[str, ...]  # one line per skipped tag line: the line and why


def placeholder_values(github: GitHubContext, now: datetime) -> dict[str, str | None]:
    """Each placeholder's value on this run; None when the event has none."""
    ref = github.ref
    version = SEMVER.fullmatch(github.ref_name) if ref.startswith("refs/tags/") else None
    release = version is not None and not version["pre"]
    return {
        "sha": github.sha or None,
        "short-sha": github.sha[:7] or None,
        "branch": _branch(github),
        "pr": github.pull_request_number if github.event_name in PULL_REQUEST_EVENTS else None,
        "version": version[0].removeprefix("v").split("+")[0] if version else None,
        # A pre-release does not move the floating major and minor tags (as docker/metadata-action).
        "major": version["major"] if release and version else None,
        "minor": version["minor"] if release and version else None,
        "run-number": github.run_number or None,
        "date": now.astimezone(UTC).strftime("%Y%m%d"),
    }


def expand_tags(lines: Iterable[str], github: GitHubContext, now: datetime) -> Expansion:
    """The tags `lines` give on this run. Raises ValueError naming placeholders that do not exist."""
    values = placeholder_values(github, now)
    unknown = sorted({name for line in lines for name in PLACEHOLDER.findall(line) if name not in values})
    if unknown:
        raise ValueError(", ".join("{{" + name + "}}" for name in unknown))
    tags: dict[str, None] = {}
    skipped = []
    for line in lines:
        missing = [name for name in dict.fromkeys(PLACEHOLDER.findall(line)) if values[name] is None]
        if missing:
            skipped.append(f"'{line}': {_why(missing, github.event_name)}")
            continue
        tags[PLACEHOLDER.sub(lambda match: values[match[1]] or "", line)] = None
    return Expansion(tuple(tags), tuple(skipped))


def _why(missing: list[str], event_name: str) -> str:
    names = ", ".join("{{" + name + "}}" for name in missing)
    return f"{names} {'has' if len(missing) == 1 else 'have'} no value on this {event_name or 'run'} event"


def _branch(github: GitHubContext) -> str | None:
    if github.event_name in PULL_REQUEST_EVENTS:
        name = github.head_ref  # the pull request's own branch; GITHUB_REF is refs/pull/<n>/merge
    elif github.ref.startswith("refs/heads/"):
        name = github.ref.removeprefix("refs/heads/")
    else:
        return None
    # feature/login → feature-login: a tag is letters, digits and _.-, not starting with . or -.
    tag = re.sub(r"[^A-Za-z0-9_.-]", "-", name).lstrip(".-")[:TAG_LENGTH]
    return tag or None
