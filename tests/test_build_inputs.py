"""The build's inputs: platforms, build secrets (from text, files and the environment), merge-digests,
and the combinations that need BuildKit. Pure: read_inputs over a runner environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from ecr_action.inputs.choices import Builder
from tests.helpers import problems_of, read, runner_environment

DIGEST_A = "sha256:" + "a" * 64
DIGEST_B = "sha256:" + "b" * 64


def test_platforms_are_read_in_order_lower_cased_without_repeats(workspace: Path) -> None:
    inputs = read(runner_environment(workspace, {"platforms": "linux/arm64, LINUX/AMD64\nlinux/arm64\nlinux/arm/v7"}))
    assert inputs.platforms == ("linux/arm64", "linux/amd64", "linux/arm/v7")


def test_an_unknown_platform_is_named(workspace: Path) -> None:
    assert problems_of(runner_environment(workspace, {"platforms": "linux/amd64,linux/arm65,darwin/arm64"})) == [
        "input 'platforms': got 'linux/arm65', 'darwin/arm64'; expected platforms such as linux/amd64, "
        "linux/arm64 or linux/arm/v7"
    ]


def test_secrets_come_from_text_files_and_the_environment(workspace: Path) -> None:
    (workspace / "npmrc").write_bytes(b"//registry/:_authToken=abc\n")
    environment = runner_environment(
        workspace,
        {"secrets": "token=s3cr3t = with spaces \nempty=", "secret-files": "npmrc=npmrc", "secret-envs": "gh=GH_PAT"},
    )
    inputs = read(environment | {"GH_PAT": "ghp_value"})
    assert dict(inputs.secrets) == {
        "token": b"s3cr3t = with spaces ",
        "empty": b"",
        "npmrc": b"//registry/:_authToken=abc\n",
        "gh": b"ghp_value",
    }
    assert "s3cr3t" not in repr(inputs)


@pytest.mark.parametrize(
    ("inputs", "problem"),
    [
        pytest.param(
            {"secrets": "token=one\ntoken=two"}, "input 'secrets': line 2 repeats the secret id 'token'", id="repeat"
        ),
        pytest.param(
            {"secrets": "no equals sign here"},
            "input 'secrets': line 1 is not id=… with an id of letters, digits and ._-",
            id="not-a-pair",
        ),
        pytest.param(
            {"secret-envs": "gh=NOT_SET_ANYWHERE"},
            "input 'secret-envs': the environment variable NOT_SET_ANYWHERE is not set: set it in the step's `env:`",
            id="env-missing",
        ),
        pytest.param(
            {"secret-envs": "gh=not a name"},
            "input 'secret-envs': 'not a name' is not an environment variable name",
            id="env-bad-name",
        ),
        pytest.param(
            {"secret-files": "key=../outside"},
            "input 'secret-files': got '../outside'; expected a path inside the workspace {workspace} (it resolves "
            "to {parent}/outside)",
            id="file-outside",
        ),
        pytest.param(
            {"secret-files": "key=app"}, "input 'secret-files': cannot read 'app' (Is a directory)", id="file-is-dir"
        ),
        pytest.param(
            {"builder": "classic", "secrets": "token=x"},
            "input 'secrets': needs BuildKit, but builder is classic: set `builder: auto` (or remove it)",
            id="classic-secrets",
        ),
        pytest.param(
            {"builder": "classic", "platforms": "linux/amd64,linux/arm64"},
            "input 'platforms': needs BuildKit, but builder is classic: set `builder: auto` (or remove it)",
            id="classic-platforms",
        ),
        pytest.param(
            {"merge-digests": DIGEST_A},
            "input 'merge-digests': got one digest; an index joins two or more platform images",
            id="merge-one",
        ),
        pytest.param(
            {"merge-digests": f"{DIGEST_A},{DIGEST_B}", "push": "false"},
            "input 'merge-digests': puts an index in ECR, but push is false: remove one of them",
            id="merge-no-push",
        ),
        pytest.param(
            {"merge-digests": "sha256:abc"},
            "input 'merge-digests': got 'sha256:abc'; expected image digests such as sha256:<64 hex digits>",
            id="merge-short-digest",
        ),
        pytest.param(
            {"registries": "12345"},
            "input 'registries': got '12345'; expected a 12-digit AWS account id",
            id="registry-not-an-account",
        ),
    ],
)
def test_bad_build_inputs_name_the_input_never_the_value(
    workspace: Path,
    inputs: dict[str, str],
    problem: str,
) -> None:
    expected = problem.replace("{workspace}", str(workspace)).replace("{parent}", str(workspace.parent))
    assert problems_of(runner_environment(workspace, inputs) | {"OTHER": "x"}) == [expected]


def test_build_defaults(workspace: Path) -> None:
    inputs = read(runner_environment(workspace))
    assert (inputs.builder, inputs.platforms, inputs.network, inputs.secrets) == (Builder.AUTO, (), None, ())
    assert (inputs.cache_from, inputs.merge_digests, inputs.registries) == (None, (), ())
