#!/usr/bin/env python3
"""Write the README's input and output tables from action.yml: `scripts/readme_tables.py [--check]`.

Only the text between `<!-- inputs:start -->`/`<!-- inputs:end -->` and `<!-- outputs:start -->`/
`<!-- outputs:end -->` is replaced. `--check` changes nothing and exits 1 when a table differs from
action.yml, so a test (and CI) catches an input added without regenerating the README.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent


class MissingMarkersError(Exception):
    pass


def cell(text: str) -> str:
    """`text` as one Markdown table cell: a pipe would end the cell, a newline the row."""
    return " ".join(text.split()).replace("|", "\\|")


def code(text: str) -> str:
    # A backtick inside the value needs a longer fence around it (CommonMark code spans).
    fence = "``" if "`" in text else "`"
    padding = " " if "`" in text else ""
    return f"{fence}{padding}{text}{padding}{fence}"


def inputs_table(action: dict[str, Any]) -> str:
    rows = ["| Name | Required | Default | Description |", "| --- | --- | --- | --- |"]
    for name, spec in action.get("inputs", {}).items():
        required = "yes" if spec.get("required") else "no"
        default = cell(code(str(spec["default"]))) if "default" in spec else ""
        rows.append(f"| {code(name)} | {required} | {default} | {cell(spec.get('description', ''))} |")
    return "\n".join(rows)


def outputs_table(action: dict[str, Any]) -> str:
    rows = ["| Name | Description |", "| --- | --- |"]
    for name, spec in action.get("outputs", {}).items():
        rows.append(f"| {code(name)} | {cell(spec.get('description', ''))} |")
    return "\n".join(rows)


def replace_region(text: str, region: str, content: str) -> str:
    start, end = f"<!-- {region}:start -->", f"<!-- {region}:end -->"
    before, found_start, rest = text.partition(start)
    _, found_end, after = rest.partition(end)
    if not (found_start and found_end):
        raise MissingMarkersError(f"the README has no '{start}' ... '{end}' region")
    return f"{before}{start}\n{content}\n{end}{after}"


def render_readme(readme: str, action: dict[str, Any]) -> str:
    readme = replace_region(readme, "inputs", inputs_table(action))
    return replace_region(readme, "outputs", outputs_table(action))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the README's tables differ from action.yml")
    parser.add_argument("--action", type=Path, default=REPO_ROOT / "action.yml")
    parser.add_argument("--readme", type=Path, default=REPO_ROOT / "README.md")
    arguments = parser.parse_args(argv)

    readme = arguments.readme.read_text()
    try:
        rendered = render_readme(readme, yaml.safe_load(arguments.action.read_text()))
    except MissingMarkersError as error:
        print(f"readme_tables: {error}", file=sys.stderr)
        return 2
    if rendered == readme:
        return 0
    if arguments.check:
        print(
            f"readme_tables: the tables in {arguments.readme} differ from {arguments.action}; "
            "run scripts/readme_tables.py to regenerate them",
            file=sys.stderr,
        )
        return 1
    arguments.readme.write_text(rendered)
    print(f"readme_tables: updated {arguments.readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
