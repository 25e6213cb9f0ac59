"""The action's inputs: declared in one table, read once, typed, and validated together.

- `choices`: the enums of inputs with a closed set of values (stages import them from there);
- `table`: `InputSpec` and `INPUT_SPECS`, one row per input of action.yml;
- `context`: `GitHubContext`, the run as the runner describes it, and `read_github_context`;
- `cli`: `parse_cli`, the flags of local runs as INPUT_<NAME> variables;
- `forms` and `reader`: `read_inputs`, every input typed into a frozen `Inputs`, or one `InputError`.
"""

from ecr_action.inputs.choices import EncryptionType, FailOn, IfTagExists, ImageTagMutability, ScanMode, ScanUnavailable
from ecr_action.inputs.cli import parse_cli
from ecr_action.inputs.context import GitHubContext, read_github_context
from ecr_action.inputs.reader import Inputs, read_inputs
from ecr_action.inputs.table import INPUT_SPECS, INPUTS, InputSpec

__all__ = [
    "INPUTS",
    "INPUT_SPECS",
    "EncryptionType",
    "FailOn",
    "GitHubContext",
    "IfTagExists",
    "ImageTagMutability",
    "InputSpec",
    "Inputs",
    "ScanMode",
    "ScanUnavailable",
    "parse_cli",
    "read_github_context",
    "read_inputs",
]
