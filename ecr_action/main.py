"""The only sequencer: inputs → credentials → repository → build → push → scan → report and gate.

This is also the only place where a failure becomes an `::error::` line and an exit code. Stage modules
take and return plain values; everything the user sees is written through `ecr_action.github.Workflow`.
"""

from __future__ import annotations

import datetime
import json
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, NoReturn, TextIO

import docker

from ecr_action import aws, build, cache, credentials, multiplatform, push, repository, results, scan, signing, stages
from ecr_action.errors import ActionError, InputError, ScanFailedError, ScanTimeoutError, SigningError
from ecr_action.findings import Finding
from ecr_action.github import Workflow
from ecr_action.ignores import resolve_ignores
from ecr_action.inputs import Inputs, parse_cli, read_github_context, read_inputs
from ecr_action.inputs.choices import ScanMode
from ecr_action.outputs import Output
from ecr_action.secrets import RegistryCredentials


@dataclass
class Timings:
    """Seconds per stage, in run order, for the log and the job summary; and the stage now running."""

    seconds: dict[str, float] = field(default_factory=dict)
    current: str = ""

    @contextmanager
    def stage(self, workflow: Workflow, name: str) -> Iterator[None]:
        started = time.monotonic()
        self.current = name
        try:
            with workflow.group(name):
                yield
        finally:
            self.seconds[name] = time.monotonic() - started
        self.current = ""  # kept when the stage raised: a cancellation names it


class Cancelled(BaseException):
    """The runner stopped the job (SIGTERM) or the user pressed Ctrl-C (SIGINT).

    A BaseException, like KeyboardInterrupt, so that no handler of ordinary errors swallows it on its
    way out; the `finally` blocks on the way (log groups, stop-commands) still run.
    """

    def __init__(self, signal_number: int) -> None:
        super().__init__(signal_number)
        self.signal_number = signal_number


def _raise_cancelled(signal_number: int, _frame: object) -> None:
    raise Cancelled(signal_number)


def main(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None, stream: TextIO | None = None
) -> int:
    environment = dict(os.environ if environ is None else environ)
    github = read_github_context(environment)
    workflow = Workflow(stream, output_path=github.output_path, summary_path=github.summary_path)
    timings = Timings()
    if threading.current_thread() is threading.main_thread():
        for signal_number in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signal_number, _raise_cancelled)
    try:
        environment.update(parse_cli(sys.argv[1:] if argv is None else argv))
        inputs = read_inputs(environment, github)
        run(inputs, workflow, timings)
    except InputError as error:
        for problem in error.problems:
            workflow.error(problem, title=error.title)
        return 1
    except ActionError as error:
        workflow.error(error.message, title=error.title)
        return 1
    except (Cancelled, KeyboardInterrupt) as cancel:
        signal_number = cancel.signal_number if isinstance(cancel, Cancelled) else signal.SIGINT
        where = f"during the {timings.current} stage" if timings.current else "before any stage began"
        workflow.error(
            f"ecr-action was cancelled ({signal.Signals(signal_number).name}) {where}; nothing after it ran.",
            title="Cancelled",
        )
        return 128 + signal_number
    except Exception as error:
        # A bug, not something the user did: say so, and keep the traceback for debug mode.
        if github.debug:
            workflow.info(traceback.format_exc())
        workflow.error(
            f"ecr-action failed unexpectedly ({type(error).__name__}). Re-run with debug logging "
            "(RUNNER_DEBUG=1) for the traceback, and report it.",
            title="Internal error",
        )
        return 1
    return 0


def exit_now(code: int) -> NoReturn:
    """End the process once the streams are flushed, skipping the interpreter's teardown of every
    imported module (botocore, docker: ~0.1 s of a run). Every file the run wrote is closed by then and
    no thread is left."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def run(inputs: Inputs, workflow: Workflow, timings: Timings) -> None:
    # Masked before anything runs: from here on no log line, error or output can show a build secret.
    for _, value in inputs.secrets:
        mask_secret(workflow, value.decode("utf-8", "replace"))
    for skipped in inputs.skipped_tags:
        workflow.info(f"tags: skipped {skipped}")
    # Everything that can be found wrong without AWS is checked before the first call to it.
    ignores = resolve_ignores(inputs.ignore, inputs.ignore_entries, today=datetime.datetime.now(datetime.UTC).date())
    # The engine is asked first: nothing in AWS changes for a build that cannot run.
    engine = None if inputs.dry_run or inputs.merge_digests else build.engine(inputs.github.docker_host)
    if not inputs.push:
        assert engine is not None
        with timings.stage(workflow, "Build"):
            build_image(engine, inputs, workflow, registries=(), local_name=f"{inputs.repository}:{inputs.tags[0]}")
        workflow.set_output(Output.TAGS, json.dumps(list(inputs.tags)))
        workflow.info("push is false: the image was built and not pushed.")
        return

    with timings.stage(workflow, "Credentials"):
        resolved = credentials.resolve_credentials(
            stages.credential_request(inputs), mask=workflow.mask, log=workflow.info
        )
        workflow.info(f"Acting as {resolved.identity_arn} in account {resolved.account_id}")
    ecr = aws.client(
        aws.session(resolved.credentials, inputs.aws_region),
        "ecr",
        retry=stages.retry_policy(inputs),
        log=workflow.info,
    )

    with timings.stage(workflow, "Repository"):
        ensured = repository.ensure_repository(ecr, stages.repository_spec(inputs), dry_run=inputs.dry_run)
        for change in ensured.changes:
            workflow.info(f"{'would change' if inputs.dry_run else 'changed'}: {change.description}")
        for warning in ensured.warnings:
            workflow.warning(warning, title="Repository")
        if not ensured.changes:
            workflow.info(f"{inputs.repository} is as requested")

    repository_uri = ensured.uri or planned_uri(inputs, resolved.account_id)
    if inputs.dry_run:
        workflow.info(
            f"would build {inputs.file} in {inputs.context} and push {repository_uri} as {', '.join(inputs.tags)}"
        )
        return

    registry_id = inputs.registry_id or ensured.registry_id or resolved.account_id
    # The baseline is the image the tag names before this run: once pushed, it may name our own image.
    baseline_digest = None
    if inputs.baseline_tag and inputs.scan is not ScanMode.SKIP:
        baseline_digest = scan.tagged_digest(ecr, inputs.repository, registry_id, inputs.baseline_tag)
    spec = stages.push_spec(inputs, repository_uri, registry_id, ensured)
    if inputs.merge_digests:
        with timings.stage(workflow, "Push"):
            (login,) = push.registry_logins(ecr, [registry_id], mask=workflow.mask)
            pushed = multiplatform.merge_platforms(ecr, spec, inputs.merge_digests, login, log=workflow.info)
    else:
        assert engine is not None
        with timings.stage(workflow, "Build"):
            base_registries = build.base_image_accounts(inputs.file, inputs.aws_region)
            cache_from, unusable = cache.cache_from(ecr, inputs, registry_id, repository_uri)
            for warning in unusable:
                workflow.warning(warning, title="Build cache")
            cache_registries = cache.cache_accounts(cache_from, inputs.aws_region)
            logins = push.registry_logins(
                ecr, [registry_id, *base_registries, *inputs.registries, *cache_registries], mask=workflow.mask
            )
            built = build_image(engine, inputs, workflow, registries=logins, cache_from=cache_from)
        with timings.stage(workflow, "Push"):
            if len(built.images) > 1:
                images = [(image.platform, image.image_id) for image in built.images]
                pushed = multiplatform.push_platforms(engine, ecr, spec, images, logins[0], log=workflow.info)
            else:
                pushed = push.push_image(engine, ecr, spec, built.image_id, logins[0], log=workflow.info)
    workflow.info(f"{'pushed' if pushed.uploaded else 'already in ECR'}: {pushed.image_uri(repository_uri)}")
    for name, value in results.push_outputs(repository_uri, pushed, resolved.account_id).items():
        workflow.set_output(name, value)

    with timings.stage(workflow, "Scan"):
        try:
            outcome = scan.wait_for_scan(
                ecr, stages.scan_request(inputs, registry_id, pushed.digest, pushed.media_type)
            )
        except (ScanFailedError, ScanTimeoutError) as error:
            workflow.set_output(Output.SCAN_STATUS, error.status)
            raise
        baseline, notes = None, []
        if outcome.unavailable:
            workflow.warning(outcome.unavailable, title="Scan unavailable")
            notes.append(outcome.unavailable)
        elif inputs.baseline_tag and outcome.status != scan.SKIPPED:
            baseline, missing = baseline_findings(ecr, inputs, registry_id, baseline_digest, pushed.digest)
            if missing:
                workflow.warning(missing, title="Baseline")
                notes.append(missing)
        workflow.info(f"scan {outcome.status}: {len(outcome.findings)} findings")
        # Within the same deadline: the image is ready once it is both scanned and signed.
        request = stages.signing_request(
            inputs, registry_id, resolved.account_id, pushed.digest, outcome.seconds_waited
        )
        try:
            signed = signing.wait_for_signing(ecr, request)
        except SigningError as error:
            workflow.set_output(Output.SIGNING_STATUS, error.status)
            raise
        workflow.set_output(Output.SIGNING_STATUS, signed.status)
        if signed.note:
            workflow.warning(signed.note, title="Image signing")
        elif signed.profiles:
            workflow.info(f"signed by ECR with {', '.join(signed.profiles)}")
    results.report_and_gate(
        results.RunReport(
            inputs, repository_uri, pushed, outcome, ignores, baseline, dict(timings.seconds), tuple(notes)
        ),
        workflow,
    )


def mask_secret(workflow: Workflow, value: str) -> None:
    """The runner masks line by line: a value of several lines is masked whole and by each line."""
    for part in {value, *value.splitlines()}:
        if part.strip():
            workflow.mask(part)


def baseline_findings(
    ecr: Any, inputs: Inputs, registry_id: str, baseline_digest: str | None, pushed_digest: str
) -> tuple[tuple[Finding, ...] | None, str]:
    """(findings, "") of the image the baseline tag named before this run, or (None, why there are none)."""
    if baseline_digest is None:
        reason = "no image had that tag before this run"
    elif baseline_digest == pushed_digest:
        # An image is never its own baseline: its findings would all count as already accepted.
        reason = "it names the image this run pushed"
    else:
        findings = scan.baseline_findings(ecr, inputs.repository, registry_id, baseline_digest)
        if findings is not None:
            return findings, ""
        reason = f"its image {baseline_digest} has no finished scan"
    return None, f"No baseline from tag '{inputs.baseline_tag}': {reason}, so every finding counts as new."


def build_image(
    engine: docker.DockerClient,
    inputs: Inputs,
    workflow: Workflow,
    *,
    registries: Sequence[RegistryCredentials],
    local_name: str | None = None,
    cache_from: tuple[str, ...] = (),
) -> build.BuildResult:
    spec = stages.build_spec(inputs, registries, local_name, cache_from)
    # The build log is text from the user's Dockerfile and its tools: never read as workflow commands.
    with workflow.stop_commands():
        built = build.build_image(engine, spec, log=workflow.info)
    for note in built.notes:
        workflow.info(note)
    for warning in built.warnings:
        workflow.warning(warning.message, title="Build", file=workspace_file(inputs, warning.file), line=warning.line)
    for image in built.images:
        workflow.info(f"built {image.image_id}" + (f" for {image.platform}" if image.platform else ""))
    return built


def workspace_file(inputs: Inputs, name: str | None) -> str | None:
    """A file BuildKit names (relative to the context), relative to the workspace, for an annotation."""
    if not name:
        return None
    path = (inputs.context / name).resolve()
    return (
        path.relative_to(inputs.github.workspace).as_posix() if path.is_relative_to(inputs.github.workspace) else None
    )


def planned_uri(inputs: Inputs, account_id: str) -> str:
    """The URI a repository that does not exist yet will have (dry runs only)."""
    return f"{inputs.registry_id or account_id}.dkr.ecr.{inputs.aws_region}.amazonaws.com/{inputs.repository}"
