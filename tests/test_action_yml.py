"""action.yml agrees with the input table, with docs/interface.md and with GitHub's metadata schema."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from ecr_action.inputs import INPUT_SPECS

ROOT = Path(__file__).resolve().parent.parent
ACTION_YML = ROOT / "action.yml"
INTERFACE = (ROOT / "docs" / "interface.md").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def action() -> dict[str, Any]:
    return yaml.safe_load(ACTION_YML.read_text(encoding="utf-8"))


def interface_section(title: str) -> str:
    return INTERFACE.split(f"## {title}", 1)[1].split("\n## ", 1)[0]


def test_inputs_are_the_table_inputs_in_the_same_order(action: dict[str, Any]) -> None:
    assert list(action["inputs"]) == [spec.name for spec in INPUT_SPECS]


def test_inputs_are_the_interface_inputs() -> None:
    # Each input of interface.md is a "- name" item; several share a line.
    names = re.findall(r"(?:^|\s)- ([a-z][a-z0-9-]+)", interface_section("Inputs"), flags=re.MULTILINE)
    assert sorted(names) == sorted(spec.name for spec in INPUT_SPECS)


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


def test_outputs_are_the_interface_outputs_with_descriptions(action: dict[str, Any]) -> None:
    names = [item.split()[0] for item in interface_section("Outputs").split("\n", 1)[1].split(",")]
    assert list(action["outputs"]) == names
    assert all(set(output) == {"description"} and output["description"] for output in action["outputs"].values())


def test_runs_the_dockerfile(action: dict[str, Any]) -> None:
    assert action["name"] == "ecr-action"
    assert action["runs"] == {"using": "docker", "image": "Dockerfile"}


def test_action_yml_follows_githubs_metadata_schema() -> None:
    pytest.importorskip("check_jsonschema")
    checked = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-actions", str(ACTION_YML)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
