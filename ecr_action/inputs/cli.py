"""The command line of local runs: `--<input-name> VALUE` flags, turned into INPUT_<NAME> variables."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any, NoReturn

from ecr_action.errors import InputError
from ecr_action.inputs.forms import shown
from ecr_action.inputs.table import INPUT_SPECS, INPUTS, InputSpec


def parse_cli(argv: Sequence[str]) -> dict[str, str]:
    """`--<input-name> VALUE` flags as INPUT_<NAME> variables, to merge over the process environment."""
    parser = _CliParser(
        prog="python -m ecr_action",
        description="Build the repository into an image, push it to Amazon ECR, wait for the scan and "
        "gate on its findings. Every input of action.yml is a flag; INPUT_<NAME> variables work too.",
        allow_abbrev=False,
    )
    for spec in INPUT_SPECS:
        # Booleans may be given bare (`--dry-run`), meaning true.
        value_count: dict[str, Any] = {"nargs": "?", "const": "true"} if spec.is_boolean else {}
        parser.add_argument(
            f"--{spec.name}",
            dest=spec.name,
            metavar="VALUE",
            default=argparse.SUPPRESS,
            help=_cli_help(spec),
            **value_count,
        )
    given, unknown = parser.parse_known_args(argv)
    if unknown:
        raise InputError(
            [
                f"unknown flag {shown(argument)}: see --help for the inputs"
                if argument.startswith("-")
                else f"unexpected argument {shown(argument)}: every input is given as --<input-name> VALUE"
                for argument in unknown
            ]
        )
    return {INPUTS[name].variable: value for name, value in vars(given).items()}


class _CliParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # argparse would print usage and exit; the action reports command-line mistakes like bad inputs.
        raise InputError([f"command line: {message}"])


def _cli_help(spec: InputSpec) -> str:
    details = [spec.accepted] if spec.choices or spec.bounds else []
    if spec.required:
        details.append("required")
    if spec.default is not None:
        details.append(f"default: {spec.default}")
    return spec.help + (f" ({'; '.join(details)})" if details else "")
