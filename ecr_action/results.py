"""The last stage: the run's result published (annotations, step outputs, the SARIF file, the job summary)
and only then the gate.

`main` hands over one `RunReport`; this module's edge reads the Dockerfile (the line the annotations
point at) and writes the SARIF file, so the sequencer does no file I/O.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ecr_action import __version__, report, sarif
from ecr_action.build import read_dockerfile
from ecr_action.errors import GateFailedError
from ecr_action.findings import Finding
from ecr_action.gate import GateVerdict, evaluate
from ecr_action.github import Workflow
from ecr_action.ignores import Ignores
from ecr_action.inputs import Inputs
from ecr_action.outputs import Output
from ecr_action.push import PushResult
from ecr_action.scan import ScanOutcome


@dataclass(frozen=True, slots=True)
class RunReport:
    """What a run that pushed and scanned an image has to report."""

    inputs: Inputs
    repository_uri: str
    pushed: PushResult
    outcome: ScanOutcome
    ignores: Ignores
    baseline: tuple[Finding, ...] | None  # the baseline tag's findings; None: no baseline
    timings: Mapping[str, float] = field(default_factory=dict)  # stage -> seconds, in run order
    notes: tuple[str, ...] = ()  # for the summary, e.g. why there is no baseline

    @property
    def image_uri(self) -> str:
        return self.pushed.image_uri(self.repository_uri)


def push_outputs(repository_uri: str, pushed: PushResult, account_id: str) -> dict[Output, str]:
    return {
        Output.REGISTRY: repository_uri.split("/", 1)[0],
        Output.REPOSITORY_URI: repository_uri,
        Output.IMAGE_URI: pushed.image_uri(repository_uri),
        Output.IMAGE_DIGEST: pushed.digest,
        # Each platform image's digest; {} for a single-platform image.
        Output.PLATFORM_DIGESTS: json.dumps(dict(pushed.platforms), separators=(",", ":")),
        Output.TAGS: json.dumps(list(pushed.tags)),
        Output.AWS_ACCOUNT_ID: account_id,
    }


def report_and_gate(run: RunReport, workflow: Workflow) -> None:
    inputs, outcome = run.inputs, run.outcome
    verdict = evaluate(
        outcome.findings,
        fail_on=inputs.fail_on.severity,
        fixable_only=inputs.fail_on_fixable_only,
        ignores=run.ignores,
        baseline=run.baseline,
        baseline_tag=inputs.baseline_tag or "",
        declared_counts=outcome.declared_counts,
        platform_declared_counts={scanned.platform: scanned.declared_counts for scanned in outcome.platforms},
    )
    warnings = run.ignores.warnings(_workspace_relative(inputs, inputs.ignore_file) if inputs.ignore_file else "ignore")
    for warning in warnings:
        workflow.warning(warning, title="Expired ignore")
    # The summary shows the verdict's own warnings; here they become annotations.
    for warning in verdict.warnings:
        workflow.warning(warning, title="Vulnerability gate")
    dockerfile = _workspace_relative(inputs, inputs.file)
    line = report.final_stage_line(read_dockerfile(inputs.file))
    for annotation in report.annotations(
        outcome.findings, verdict, dockerfile=dockerfile, line=line, limit=inputs.annotations
    ):
        workflow.annotate(
            annotation.level, annotation.message, title=annotation.title, file=annotation.file, line=annotation.line
        )
    workflow.set_output(Output.SCAN_STATUS, outcome.status)
    for name, value in report.output_values(verdict).items():
        workflow.set_output(name, value)
    if inputs.sarif_file:
        document = sarif.sarif(
            outcome.findings, dockerfile=dockerfile, line=line, tool_version=__version__, image_uri=run.image_uri
        )
        sarif.write_sarif(inputs.sarif_file, document)
        # Relative: the runner mounts the workspace elsewhere in the action's container than on the host,
        # where the upload-sarif step reads it.
        workflow.set_output(Output.SARIF_FILE, _workspace_relative(inputs, inputs.sarif_file))
    if inputs.summary:
        workflow.append_summary(
            report.summary_markdown(
                report.ScanReport(
                    image_uri=run.image_uri,
                    digest=run.pushed.digest,
                    scan_status=outcome.status,
                    findings=outcome.findings,
                    verdict=verdict,
                    tags=run.pushed.tags,
                    timings=dict(run.timings),
                    warnings=(*warnings, *run.notes),
                    platforms=outcome.platforms,
                )
            )
        )
    if outcome.unavailable:
        workflow.info(f"gate passed with no findings to check: ECR's scan status is {outcome.status}")
        return
    gate(verdict, workflow)


def gate(verdict: GateVerdict, workflow: Workflow) -> None:
    if not verdict.passed and not verdict.counted:
        # Failed only because ECR counted findings it did not return: nothing to fix in the image yet.
        raise GateFailedError(
            f"{verdict.reason}. ECR's scan summary counts findings it did not return: run the job again, or "
            "compare with the image's findings in the ECR console."
        )
    if not verdict.passed:
        raise GateFailedError(
            f"{verdict.reason}. The job summary lists them: fix them, raise 'fail-on', or list reviewed "
            "findings in 'ignore-file' with a reason."
        )
    workflow.info(f"gate passed: {verdict.reason}")


def _workspace_relative(inputs: Inputs, path: Path) -> str:
    return path.relative_to(inputs.github.workspace).as_posix()
