from __future__ import annotations

import io
import uuid
from pathlib import Path

import github_action_utils
import pytest

from ecr_action.github import Workflow, escape_data, escape_property, format_command

HOSTILE = "50% done\r\n::error::forged, file=a:b"


def lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


@pytest.mark.parametrize(
    ("text", "data", "prop"),
    [
        ("plain", "plain", "plain"),
        ("100%", "100%25", "100%25"),
        ("%0A", "%250A", "%250A"),  # already looks escaped: still escaped once, decoded once
        ("a\r\nb", "a%0D%0Ab", "a%0D%0Ab"),
        ("k:v,w", "k:v,w", "k%3Av%2Cw"),
        ("::error::x", "::error::x", "%3A%3Aerror%3A%3Ax"),
    ],
)
def test_escaping_follows_github_rules(text: str, data: str, prop: str) -> None:
    assert (escape_data(text), escape_property(text)) == (data, prop)


def test_format_command_leaves_out_missing_properties() -> None:
    assert format_command("warning", "m", {"file": "Dockerfile", "line": 3, "col": None}) == (
        "::warning file=Dockerfile,line=3::m"
    )
    assert format_command("endgroup") == "::endgroup::"


def test_annotation_line_is_exact_for_hostile_text() -> None:
    stream = io.StringIO()

    Workflow(stream).error(HOSTILE, title=HOSTILE, file="docker/My,File:1", line=7, col=2)

    assert lines(stream) == [
        "::error file=docker/My%2CFile%3A1,line=7,col=2,"
        "title=50%25 done%0D%0A%3A%3Aerror%3A%3Aforged%2C file=a%3Ab"
        "::50%25 done%0D%0A::error::forged, file=a:b"
    ]


@pytest.mark.parametrize("level", ["notice", "warning", "error"])
def test_commands_match_a_maintained_implementation(level: str, capsys: pytest.CaptureFixture[str]) -> None:
    """github-action-utils cannot take our stream; it is the reference our own formatting is checked against."""
    stream = io.StringIO()
    Workflow(stream).annotate(level, HOSTILE, title=HOSTILE)  # type: ignore[arg-type]
    getattr(github_action_utils, level)(HOSTILE, title=HOSTILE)

    assert stream.getvalue() == capsys.readouterr().out


def test_mask_masks_each_line_of_a_multiline_secret() -> None:
    stream = io.StringIO()
    workflow = Workflow(stream)

    workflow.mask("first%line\r\n  \nsecond line\n")
    workflow.mask("")

    assert lines(stream) == ["::add-mask::first%25line", "::add-mask::second line"]


def test_group_is_closed_when_the_body_raises() -> None:
    stream = io.StringIO()

    with pytest.raises(KeyError), Workflow(stream).group("Push: a,b"):
        stream.write("inside\n")
        raise KeyError

    assert lines(stream) == ["::group::Push: a,b", "inside", "::endgroup::"]


def test_stop_commands_uses_a_fresh_random_token() -> None:
    stream = io.StringIO()
    workflow = Workflow(stream)

    for _ in range(2):
        with workflow.stop_commands():
            workflow.info("::error::from a build log")

    first_start, _, first_end, second_start, _, second_end = lines(stream)
    first_token = first_start.removeprefix("::stop-commands::")
    assert first_end == f"::{first_token}::"
    assert len(first_token) == 32
    assert second_start != first_start
    assert second_end == f"::{second_start.removeprefix('::stop-commands::')}::"


def test_commands_while_stopped_are_refused() -> None:
    """The runner would print them as text: a mask lost this way would leak the secret."""
    workflow = Workflow(io.StringIO())

    with pytest.raises(RuntimeError, match="add-mask"), workflow.stop_commands():
        workflow.mask("secret")


def test_info_stops_commands_only_for_text_that_looks_like_one() -> None:
    stream = io.StringIO()
    workflow = Workflow(stream)

    workflow.info("step 1 of 3: build")
    workflow.info("log line\n   ::set-output name=x::y")

    plain, start, *text, end = lines(stream)
    assert plain == "step 1 of 3: build"
    assert start.startswith("::stop-commands::")
    assert text == ["log line", "   ::set-output name=x::y"]
    assert end == f"::{start.removeprefix('::stop-commands::')}::"


def test_set_output_writes_a_heredoc_the_runner_reads_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    output = tmp_path / "output"
    output.touch()
    workflow = Workflow(io.StringIO(), output_path=output)

    workflow.set_output("findings", '{"CRITICAL":1}')
    workflow.set_output("notes", HOSTILE + "\nEOF\n")

    # The runner's parser, as implemented by a maintained library, reads our file back unchanged.
    monkeypatch.setenv("GITHUB_ENV", str(output))
    assert github_action_utils.get_workflow_environment_variables() == {
        "findings": '{"CRITICAL":1}',
        "notes": HOSTILE + "\nEOF\n",
    }


def test_set_output_delimiter_never_occurs_in_the_value(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    colliding, fresh = uuid.UUID(int=1), uuid.UUID(int=2)
    tokens = iter([colliding, fresh])
    monkeypatch.setattr(uuid, "uuid4", lambda: next(tokens))
    output = tmp_path / "output"
    value = f"text with ghadelimiter_{colliding.hex} inside"

    Workflow(io.StringIO(), output_path=output).set_output("value", value)

    assert output.read_text() == f"value<<ghadelimiter_{fresh.hex}\n{value}\nghadelimiter_{fresh.hex}\n"


@pytest.mark.parametrize("name", ["", "a=b", "a<<b", "a\nb"])
def test_set_output_refuses_names_that_would_forge_records(name: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="invalid output name"):
        Workflow(io.StringIO(), output_path=tmp_path / "output").set_output(name, "v")


def test_outputs_are_printed_when_there_is_no_output_file() -> None:
    stream = io.StringIO()

    Workflow(stream).set_output("gate", "pass")

    assert lines(stream) == ["gate=pass"]


def test_summary_is_appended(tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    workflow = Workflow(io.StringIO(), summary_path=summary)

    workflow.append_summary("# one")
    workflow.append_summary("two\n")

    assert summary.read_text(encoding="utf-8") == "# one\ntwo\n"


def test_summary_without_a_file_is_dropped_with_a_debug_line() -> None:
    stream = io.StringIO()

    Workflow(stream).append_summary("# lost")

    assert lines(stream) == ["::debug::no job summary file (not running in GitHub Actions): summary not written"]
