"""Push: one upload, other tags through the API, digests checked, retries bounded; against the stack."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import boto3
import pytest

from ecr_action.build import BuildSpec, build_image, engine
from ecr_action.errors import ImmutableTagError, PushError, RegistryLoginError
from ecr_action.inputs.choices import Builder, IfTagExists
from ecr_action.push import (
    ExistingTag,
    PushSpec,
    follow_push_log,
    plan_tags,
    push_failure,
    push_image,
    registry_logins,
)
from ecr_action.repository import TagMutability
from ecr_action.retries import RetryPolicy
from ecr_action.secrets import RegistryCredentials
from stack.apps import write_app
from stack.client import StackClient


def ecr_client(stack: StackClient) -> Any:
    session = boto3.Session(aws_access_key_id="AKIATEST", aws_secret_access_key="x", region_name=stack.region)
    return session.client("ecr", endpoint_url=stack.config.gateway_url)


def built(stack: StackClient, app_dir: Path) -> str:
    spec = BuildSpec(app_dir, app_dir / "Dockerfile", (), None, (), False, False, builder=Builder.CLASSIC)
    return build_image(engine(stack.config.docker_host), spec, log=lambda _: None).image_id


def push_spec(stack: StackClient, repository: str, *tags: str, **changes: object) -> PushSpec:
    uri = f"{stack.default_account}.dkr.ecr.{stack.region}.amazonaws.com/{repository}"
    spec = PushSpec(repository, uri, None, tags, IfTagExists.SKIP_SAME_DIGEST, MUTABLE.immutable, RetryPolicy(3, 60))
    return dataclasses.replace(spec, **changes)


class Pusher:
    """Build-and-push as the action does it, with the log kept."""

    def __init__(self, stack: StackClient, repository: str, *, immutable: bool = False) -> None:
        self.stack, self.repository, self.immutable = stack, repository, immutable
        self.ecr = ecr_client(stack)
        self.ecr.create_repository(
            repositoryName=repository, imageTagMutability="IMMUTABLE" if immutable else "MUTABLE"
        )
        self.masked: list[str] = []
        (self.auth,) = registry_logins(self.ecr, [], mask=self.masked.append)
        self.log: list[str] = []

    def __call__(self, app_dir: Path, *tags: str, **changes: object):
        mutability = IMMUTABLE if self.immutable else MUTABLE
        spec = push_spec(self.stack, self.repository, *tags, immutable=mutability.immutable, **changes)
        image_id = built(self.stack, app_dir)
        return push_image(
            engine(self.stack.config.docker_host), self.ecr, spec, image_id, self.auth, log=self.log.append
        )


@pytest.mark.stack
def test_every_tag_names_the_digest_in_registry_and_ecr(aws_env: StackClient, app_dir: Path, unique_name: str) -> None:
    push = Pusher(aws_env, unique_name)
    result = push(app_dir, "v1", "latest", "abc1234")

    assert result.uploaded and result.added_tags == ("v1", "latest", "abc1234")
    assert result.digest.startswith("sha256:")
    for tag in ("v1", "latest", "abc1234"):
        assert aws_env.registry_manifest(unique_name, tag).headers["Docker-Content-Digest"] == result.digest
    details = push.ecr.describe_images(repositoryName=unique_name)["imageDetails"]
    assert [(d["imageDigest"], sorted(d["imageTags"])) for d in details] == [
        (result.digest, ["abc1234", "latest", "v1"])
    ]
    assert push.auth.password in push.masked
    assert "password" not in repr(push.auth)


@pytest.mark.stack
def test_a_rerun_of_the_same_image_uploads_nothing(aws_env: StackClient, app_dir: Path, unique_name: str) -> None:
    push = Pusher(aws_env, unique_name, immutable=True)
    first = push(app_dir, "v1", "v1-extra")
    again = push(app_dir, "v1", "v1-extra")
    assert not again.uploaded and again.added_tags == () and again.digest == first.digest
    assert push.log[-1].startswith("every tag already names this image")


@pytest.mark.stack
def test_new_tags_for_a_known_image_are_added_without_upload(
    aws_env: StackClient, app_dir: Path, unique_name: str
) -> None:
    push = Pusher(aws_env, unique_name)
    first = push(app_dir, "v1")
    second = push(app_dir, "v1", "v2")
    assert not second.uploaded and second.added_tags == ("v2",) and second.unchanged_tags == ("v1",)
    assert aws_env.registry_manifest(unique_name, "v2").headers["Docker-Content-Digest"] == first.digest


@pytest.mark.stack
def test_an_immutable_tag_naming_another_image_fails_naming_the_tag(
    aws_env: StackClient, tmp_path: Path, unique_name: str
) -> None:
    push = Pusher(aws_env, unique_name, immutable=True)
    push(write_app(tmp_path / "one", marker="one"), "release")
    with pytest.raises(ImmutableTagError, match="Tag 'release' already names another image"):
        push(write_app(tmp_path / "two", marker="two"), "release", if_tag_exists=IfTagExists.OVERWRITE)


@pytest.mark.stack
def test_if_tag_exists_fail_and_overwrite(aws_env: StackClient, tmp_path: Path, unique_name: str) -> None:
    push = Pusher(aws_env, unique_name)
    push(write_app(tmp_path / "one", marker="one"), "latest")
    two = write_app(tmp_path / "two", marker="two")
    with pytest.raises(ImmutableTagError, match="'if-tag-exists' is 'fail'"):
        push(two, "latest", if_tag_exists=IfTagExists.FAIL)
    with pytest.raises(ImmutableTagError, match="set 'if-tag-exists: overwrite'"):
        push(two, "latest")
    moved = push(two, "latest", if_tag_exists=IfTagExists.OVERWRITE)
    assert aws_env.registry_manifest(unique_name, "latest").headers["Docker-Content-Digest"] == moved.digest


@pytest.mark.stack
def test_a_wrong_registry_password_is_a_login_error_not_retried(
    aws_env: StackClient, app_dir: Path, unique_name: str
) -> None:
    push = Pusher(aws_env, unique_name)
    push.auth = RegistryCredentials(push.auth.registry, "AWS", "not-the-token")
    with pytest.raises(RegistryLoginError, match="refused the login"):
        push(app_dir, "v1")
    assert not [line for line in push.log if "retrying" in line]


class FlakyEngine:
    """An engine whose pushes fail with the given error lines before succeeding."""

    def __init__(self, failures: list[str]) -> None:
        self.failures = failures
        self.pushes = 0
        self.api = self

    def tag(self, *_: object) -> None:
        pass

    def inspect_image(self, _: str) -> dict:
        return {"Id": "sha256:id"}

    def remove_image(self, *_: object, **__: object) -> None:
        pass

    def push(self, *_: object, **__: object) -> list[dict]:
        self.pushes += 1
        if self.failures:
            return [{"status": "Pushing"}, {"error": self.failures.pop(0)}]
        return [{"aux": {"Tag": "v1", "Digest": "sha256:" + "a" * 64}}]


class ManifestsByDigest:
    """ECR's BatchGetImage by digest, answering a manifest whose config is the given image."""

    def __init__(self, config_digest: str = "sha256:id") -> None:
        self.config_digest = config_digest

    def batch_get_image(self, **request: Any) -> dict:
        manifest = {
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {"digest": self.config_digest},
        }
        return {"images": [{"imageId": request["imageIds"][0], "imageManifest": json.dumps(manifest)}]}


def test_transient_registry_faults_are_retried_with_a_log_line_each() -> None:
    from ecr_action.push import upload

    engine_ = FlakyEngine(["received unexpected HTTP status: 503 Service Unavailable", "connection reset by peer"])
    log: list[str] = []
    spec = PushSpec(
        "app", "1.dkr.ecr.us-east-1.amazonaws.com/app", None, ("v1",), IfTagExists.FAIL, False, RetryPolicy(5, 60)
    )
    digest, _, _ = upload(
        engine_,
        ManifestsByDigest(),
        spec,
        "sha256:id",
        "v1",
        RegistryCredentials("r", "AWS", "p"),
        log=log.append,
        sleep=lambda _: None,
    )
    assert digest == "sha256:" + "a" * 64 and engine_.pushes == 3
    assert [line.split(" failed")[0] for line in log] == [
        "push of 1.dkr.ecr.us-east-1.amazonaws.com/app:v1: attempt 1 of 5",
        "push of 1.dkr.ecr.us-east-1.amazonaws.com/app:v1: attempt 2 of 5",
    ]


def test_past_the_retry_budget_the_push_fails_once() -> None:
    from ecr_action.push import upload

    engine_ = FlakyEngine(["unexpected status: 500 Internal Server Error"] * 10)
    spec = PushSpec(
        "app", "1.dkr.ecr.us-east-1.amazonaws.com/app", None, ("v1",), IfTagExists.FAIL, False, RetryPolicy(3, 60)
    )
    with pytest.raises(PushError, match="failed after 3 attempts"):
        upload(
            engine_,
            ManifestsByDigest(),
            spec,
            "sha256:id",
            "v1",
            RegistryCredentials("r", "AWS", "p"),
            log=lambda _: None,
            sleep=lambda _: None,
        )
    assert engine_.pushes == 3


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        ("no basic auth credentials", "RegistryLoginError"),
        ("unauthorized: authentication required", "RegistryLoginError"),
        (
            "denied: User: arn:aws:sts::1:assumed-role/r/s is not authorized to perform: ecr:InitiateLayerUpload",
            "AccessDeniedError",
        ),
        (
            "tag invalid: The image tag 'v1' already exists in the 'app' repository and cannot be overwritten",
            "ImmutableTagError",
        ),
        ("name unknown: The repository with name 'app' does not exist", "RepositoryMissingError"),
        ("received unexpected HTTP status: 502 Bad Gateway", "_TransientPushError"),
        ("write tcp 127.0.0.1:1->127.0.0.1:443: write: connection reset by peer", "_TransientPushError"),
        ("net/http: TLS handshake timeout", "_TransientPushError"),
        (
            "Patch \"https://1.dkr.ecr.us-east-1.amazonaws.com/v2/app/blobs/uploads/x\": write tcp "
            "127.0.0.1:1->127.0.0.1:443: use of closed network connection",
            "_TransientPushError",
        ),
        ("manifest invalid: manifest invalid", "PushError"),
    ],
)
def test_push_errors_are_classified(message: str, kind: str) -> None:
    spec = PushSpec(
        "app", "1.dkr.ecr.us-east-1.amazonaws.com/app", None, ("v1",), IfTagExists.FAIL, False, RetryPolicy(3, 60)
    )
    assert type(push_failure(message, spec, "v1")).__name__ == kind


def test_a_push_log_without_a_digest_counts_as_transient() -> None:
    from ecr_action.push import _TransientPushError

    spec = PushSpec("app", "u", None, ("v1",), IfTagExists.FAIL, MUTABLE.immutable, RetryPolicy(3, 60))
    with pytest.raises(_TransientPushError):
        follow_push_log([{"status": "Pushed"}], spec, "v1")


EXISTING = {
    "same": ExistingTag("same", "sha256:d1", "sha256:image"),
    "other": ExistingTag("other", "sha256:d2", "sha256:another-image"),
}


MUTABLE = TagMutability("MUTABLE")
IMMUTABLE = TagMutability("IMMUTABLE")


@pytest.mark.parametrize(
    ("tags", "if_tag_exists", "mutability", "expected"),
    [
        (("new",), IfTagExists.SKIP_SAME_DIGEST, MUTABLE, (("new",), ())),
        (("same", "new"), IfTagExists.SKIP_SAME_DIGEST, MUTABLE, (("new",), ("same",))),
        (("same",), IfTagExists.OVERWRITE, IMMUTABLE, ((), ("same",))),
        (("other",), IfTagExists.OVERWRITE, MUTABLE, (("other",), ())),
        (("other",), IfTagExists.SKIP_SAME_DIGEST, MUTABLE, "set 'if-tag-exists: overwrite'"),
        (("other",), IfTagExists.OVERWRITE, IMMUTABLE, "where the tag is IMMUTABLE"),
        (("same",), IfTagExists.FAIL, MUTABLE, "'if-tag-exists' is 'fail'"),
        (("new", "other"), IfTagExists.FAIL, MUTABLE, "Tag 'other' already exists"),
        # Exclusion filters: the matching tags behave the other way from the mode.
        (("other",), IfTagExists.OVERWRITE, TagMutability("IMMUTABLE_WITH_EXCLUSION", ("oth*",)), (("other",), ())),
        (("other",), IfTagExists.OVERWRITE, TagMutability("IMMUTABLE_WITH_EXCLUSION", ("latest",)), "IMMUTABLE"),
        (("other",), IfTagExists.OVERWRITE, TagMutability("MUTABLE_WITH_EXCLUSION", ("*er",)), "IMMUTABLE"),
        (("other",), IfTagExists.OVERWRITE, TagMutability("MUTABLE_WITH_EXCLUSION", ("v*",)), (("other",), ())),
    ],
    ids=[
        "new",
        "same-and-new",
        "same-immutable",
        "overwrite",
        "skip-other",
        "immutable-other",
        "fail-same",
        "fail",
        "immutable-but-excluded-moves",
        "immutable-not-excluded",
        "mutable-but-excluded-stays",
        "mutable-not-excluded-moves",
    ],
)
def test_plan_tags(
    tags: tuple[str, ...], if_tag_exists: IfTagExists, mutability: TagMutability, expected: object
) -> None:
    spec = PushSpec("app", "u", None, tags, if_tag_exists, mutability.immutable, RetryPolicy(3, 60))
    if isinstance(expected, str):
        with pytest.raises(ImmutableTagError, match=re.escape(expected)):
            plan_tags(spec, lambda current: current.config_digest == "sha256:image", EXISTING)
    else:
        assert plan_tags(spec, lambda current: current.config_digest == "sha256:image", EXISTING) == expected


class SharedEngine:
    """The stack's engine, with another job's build tagged under our name just before our first push."""

    def __init__(self, real: Any, other_image: str) -> None:
        self.real, self.other_image, self.api = real, other_image, self
        self.pushes = 0

    def tag(self, *args: Any, **kwargs: Any) -> Any:
        return self.real.api.tag(*args, **kwargs)

    def push(self, repository: str, *, tag: str, **kwargs: Any) -> Any:
        self.pushes += 1
        if self.pushes == 1:
            self.real.api.tag(self.other_image, repository, tag)
        return self.real.api.push(repository, tag=tag, **kwargs)


@pytest.mark.stack
def test_on_a_shared_engine_the_image_pushed_is_the_one_built(
    aws_env: StackClient, tmp_path: Path, unique_name: str
) -> None:
    push = Pusher(aws_env, unique_name)
    ours = built(aws_env, write_app(tmp_path / "ours", marker="ours"))
    theirs = built(aws_env, write_app(tmp_path / "theirs", marker="theirs"))
    shared = SharedEngine(engine(aws_env.config.docker_host), theirs)
    spec = push_spec(aws_env, unique_name, "main", if_tag_exists=IfTagExists.OVERWRITE)

    result = push_image(shared, push.ecr, spec, ours, push.auth, log=push.log.append, sleep=lambda _: None)

    assert shared.pushes == 2
    assert any("instead of" in line and "retrying" in line for line in push.log)
    manifest = aws_env.registry_manifest(unique_name, "main")
    assert manifest.headers["Docker-Content-Digest"] == result.digest
    assert manifest.json()["config"]["digest"] == ours
