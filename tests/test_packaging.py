"""How the action is shipped: the README's tables follow action.yml, the lock follows pyproject's pins, and
the Dockerfile keeps the rules that make the image small, cacheable and correct under the runner."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

from docker.utils import exclude_paths

from stack.base_image import BASE_IMAGE
from stack.config import REPO_ROOT
from tests.helpers import action_code_files, load_script

LOCK = REPO_ROOT / "requirements.lock"
CODE_SOURCES = {"ecr_action/", "entrypoint.py"}


readme_tables = load_script("readme_tables")


# README tables ---------------------------------------------------------------------------------------
def test_the_readme_tables_match_action_yml() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / "readme_tables.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_check_fails_on_drift_and_the_rewrite_touches_only_the_regions(tmp_path: Path) -> None:
    action = tmp_path / "action.yml"
    action.write_text(
        "inputs:\n"
        "  tags:\n"
        "    description: Tags, one | per line.\n"
        "    required: true\n"
        "  push:\n"
        "    description: >-\n"
        "      Push\n"
        "      the image.\n"
        "    default: 'true'\n"
        "outputs:\n"
        "  digest:\n"
        "    description: The digest.\n"
    )
    readme = tmp_path / "README.md"
    original = (
        "# x\n\n<!-- inputs:start -->\nstale\n<!-- inputs:end -->\n\n"
        "kept\n<!-- outputs:start -->\n<!-- outputs:end -->\n"
    )
    readme.write_text(original)
    arguments = ["--action", str(action), "--readme", str(readme)]

    assert readme_tables.main([*arguments, "--check"]) == 1
    assert readme.read_text() == original
    assert readme_tables.main(arguments) == 0
    assert readme_tables.main([*arguments, "--check"]) == 0

    assert readme.read_text() == (
        "# x\n\n<!-- inputs:start -->\n"
        "| Name | Required | Default | Description |\n"
        "| --- | --- | --- | --- |\n"
        "| `tags` | yes |  | Tags, one \\| per line. |\n"
        "| `push` | no | `true` | Push the image. |\n"
        "<!-- inputs:end -->\n\nkept\n<!-- outputs:start -->\n"
        "| Name | Description |\n"
        "| --- | --- |\n"
        "| `digest` | The digest. |\n"
        "<!-- outputs:end -->\n"
    )


def test_a_readme_without_the_markers_is_an_error_not_a_rewrite(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# no tables\n")

    status = readme_tables.main(["--readme", str(readme)])

    assert status == 2
    assert readme.read_text() == "# no tables\n"


# The lock ---------------------------------------------------------------------------------------------
def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def runtime_pins() -> dict[str, str]:
    pins = {}
    for requirement in tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]:
        match = re.fullmatch(r"([A-Za-z0-9._-]+)==(\S+)", requirement)
        assert match, f"runtime dependency not pinned with ==: {requirement}"
        pins[normalized(match[1])] = match[2]
    return pins


def lock_entries() -> list[tuple[str, str, str]]:
    """(name, version, the entry's text: hashes and `# via` lines) for each package in the lock."""
    entries = re.findall(r"^([A-Za-z0-9._-]+)==(\S+) \\\n((?:[ \t].*\n?)*)", LOCK.read_text(), re.MULTILINE)
    assert entries, f"no pinned entries in {LOCK}"
    return [(normalized(name), version, body) for name, version, body in entries]


def test_the_lock_pins_exactly_the_runtime_dependencies_of_pyproject() -> None:
    direct = {name: version for name, version, body in lock_entries() if "ecr-action (pyproject.toml)" in body}
    assert direct == runtime_pins(), "regenerate requirements.lock with the command in its header"


def test_every_locked_package_has_hashes() -> None:
    for name, _, body in lock_entries():
        assert re.search(r"--hash=sha256:[0-9a-f]{64}", body), f"{name} has no hash in {LOCK}"


# The Dockerfile --------------------------------------------------------------------------------------
def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined and comments dropped."""
    logical = re.sub(r"\\\n(?:\s*#.*\n)*", " ", (REPO_ROOT / "Dockerfile").read_text())
    instructions = []
    for line in logical.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            keyword, _, arguments = line.strip().partition(" ")
            instructions.append((keyword.upper(), " ".join(arguments.split())))
    return instructions


def index_of(instructions: list[tuple[str, str]], keyword: str, text: str) -> int:
    """Where the first `keyword` instruction whose arguments contain `text` is."""
    return next(i for i, (k, arguments) in enumerate(instructions) if k == keyword and text in arguments)


def test_the_base_image_defaults_to_the_one_the_base_recipe_makes() -> None:
    # One base for the tests and the release: the tag stack/base_image.py gives its recipe.
    instructions = dockerfile_instructions()
    assert instructions[0] == ("ARG", f"BASE_IMAGE={BASE_IMAGE}")
    assert instructions[1] == ("FROM", "${BASE_IMAGE}")
    assert [k for k, _ in instructions].count("FROM") == 1


def test_the_lock_is_installed_with_hashes_before_the_code_is_copied() -> None:
    instructions = dockerfile_instructions()
    lock_copied = index_of(instructions, "COPY", "requirements.lock")
    installed = index_of(instructions, "RUN", "--require-hashes")
    assert "-r /tmp/requirements.lock" in instructions[installed][1]
    assert "--no-cache-dir" in instructions[installed][1]
    first_code_copy = min(index_of(instructions, "COPY", source) for source in CODE_SOURCES)
    assert lock_copied < installed < first_code_copy


def test_only_the_lock_and_the_action_s_code_are_copied() -> None:
    sources = {arguments.split()[0] for keyword, arguments in dockerfile_instructions() if keyword in ("COPY", "ADD")}
    assert sources == CODE_SOURCES | {"requirements.lock"}


def test_the_build_context_holds_only_what_is_copied() -> None:
    patterns = [
        line for line in (REPO_ROOT / ".dockerignore").read_text().splitlines() if line and not line.startswith("#")
    ]
    context = {Path(path) for path in exclude_paths(str(REPO_ROOT), patterns) if (REPO_ROOT / path).is_file()}
    # The client always sends the Dockerfile and .dockerignore: the engine reads them.
    expected = {Path("requirements.lock"), Path("Dockerfile"), Path(".dockerignore")}
    assert context == action_code_files() | expected


def test_output_is_unbuffered_and_the_entrypoint_is_exec_form() -> None:
    instructions = dockerfile_instructions()
    environment = " ".join(arguments for keyword, arguments in instructions if keyword == "ENV").split()
    assert "PYTHONUNBUFFERED=1" in environment
    entrypoints = [arguments for keyword, arguments in instructions if keyword == "ENTRYPOINT"]
    assert len(entrypoints) == 1
    # JSON array form: the runner's hyphenated INPUT_* variables only survive without a shell.
    entrypoint = json.loads(entrypoints[0])
    assert entrypoint[-1] == "/app/entrypoint.py"
    assert not any(part in ("sh", "/bin/sh", "bash", "/bin/bash") for part in entrypoint)


def test_the_image_runs_as_root_for_the_runner_s_docker_socket() -> None:
    assert "USER" not in {keyword for keyword, _ in dockerfile_instructions()}
