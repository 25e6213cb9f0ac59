"""action.yml agrees with the input table and with GitHub's metadata schema."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from ecr_action.inputs import INPUT_SPECS
from ecr_action.outputs import Output

ROOT = Path(__file__).resolve().parent.parent
ACTION_YML = ROOT / "action.yml"


@pytest.fixture(scope="module")
def action() -> dict[str, Any]:
    return yaml.safe_load(ACTION_YML.read_text(encoding="utf-8"))


def test_inputs_are_the_table_inputs_in_the_same_order(action: dict[str, Any]) -> None:
    assert list(action["inputs"]) == [spec.name for spec in INPUT_SPECS]


@pytest.mark.parametrize("spec", INPUT_SPECS, ids=lambda spec: spec.name)
def test_each_input_matches_its_table_entry(action: dict[str, Any], spec: Any) -> None:
    declared = action["inputs"][spec.name]
    # Defaults are quoted strings in action.yml: the runner passes text, and `true` must not become a YAML bool.
    assert declared.get("default") == spec.default
    assert declared.get("required", False) is spec.required
    assert isinstance(declared["description"], str)
    assert 20 <= len(declared["description"]) <= 300


def test_tags_default_is_computed_and_documented(action: dict[str, Any]) -> None:
    assert "default" not in action["inputs"]["tags"]
    assert "short commit SHA" in action["inputs"]["tags"]["description"]


def test_outputs_are_the_table_outputs_in_the_same_order(action: dict[str, Any]) -> None:
    assert list(action["outputs"]) == list(Output)


def test_outputs_have_descriptions(action: dict[str, Any]) -> None:
    # That the action writes exactly these outputs is checked by a whole run (tests/test_main.py).
    assert all(set(output) == {"description"} and output["description"] for output in action["outputs"].values())


def test_runs_the_dockerfile(action: dict[str, Any]) -> None:
    assert action["name"] == "ecr-action"
    assert action["runs"] == {"using": "docker", "image": "Dockerfile"}


def test_action_yml_follows_githubs_metadata_schema() -> None:
    checked = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-actions", str(ACTION_YML)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
