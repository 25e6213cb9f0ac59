"""Push: log in with a token from GetAuthorizationToken, upload the image once, add every other tag
through the ECR API (no second upload), and check the registry's digest against ECR's view.

The registry password goes to the Docker Engine in the request that needs it (the X-Registry-Auth
header of the push); it is never on a command line and never in a Docker config file.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import docker
import docker.errors
import requests.exceptions
from botocore.exceptions import ClientError

from ecr_action import aws
from ecr_action.build import engine_error_text
from ecr_action.errors import (
    AccessDeniedError,
    DockerEngineError,
    ImmutableTagError,
    PushError,
    RegistryLoginError,
    RepositoryMissingError,
)
from ecr_action.inputs.choices import IfTagExists
from ecr_action.media_types import MANIFEST_MEDIA_TYPES
from ecr_action.retries import RetryPolicy, attempts_made
from ecr_action.secrets import RegistryCredentials

# What a registry or the network says when a second try can succeed.
TRANSIENT = re.compile(
    r"unexpected (HTTP )?status: 5\d\d|\b5\d\d\b|connection reset|broken pipe|\bEOF\b|i/o timeout|timed? ?out|"
    r"TLS handshake|connection refused|too ?many ?requests|\b429\b|service unavailable|bad gateway|"
    r"internal server error|use of closed network connection",
    re.IGNORECASE,
)
NOT_AUTHENTICATED = re.compile(r"no basic auth credentials|unauthorized|authentication required", re.IGNORECASE)
DENIED = re.compile(r"\bdenied\b|not authorized to perform", re.IGNORECASE)
IMMUTABLE = re.compile(r"tag invalid|immutable|cannot be overwritten", re.IGNORECASE)
# PutImage calls made at once when adding tags.
MAX_TAG_WORKERS = 8
NO_REPOSITORY = re.compile(r"name unknown|repository .* does not exist", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class PushSpec:
    repository: str
    repository_uri: str
    registry_id: str | None
    tags: tuple[str, ...]
    if_tag_exists: IfTagExists
    # Whether ECR refuses to move this tag: per tag, since exclusion filters make some tags behave
    # the other way from the repository's mode.
    immutable: Callable[[str], bool]
    retry: RetryPolicy  # of the whole push, tag to checked manifest


@dataclass(frozen=True, slots=True)
class PushResult:
    digest: str
    tags: tuple[str, ...]  # every tag that now names the image
    uploaded: bool  # False when ECR already had the image: no layer was sent
    added_tags: tuple[str, ...]  # tags written by this run
    unchanged_tags: tuple[str, ...]  # tags that already named this image
    media_type: str = ""  # the manifest's media type, when this run read it ("" when it did not)
    platforms: Mapping[str, str] = dataclasses.field(default_factory=dict)  # an index's: platform → digest

    def image_uri(self, repository_uri: str) -> str:
        return f"{repository_uri}@{self.digest}"


@dataclass(frozen=True, slots=True)
class ExistingTag:
    tag: str
    digest: str
    config_digest: str  # the image id the engine knows the image by
    manifest: str = ""
    media_type: str = ""


class _TransientPushError(Exception):
    pass


def registry_logins(
    ecr: Any, registry_ids: Sequence[str], *, mask: Callable[[str], None]
) -> tuple[RegistryCredentials, ...]:
    """A login per registry (none named: the credentials' own); each password masked before use.

    When the call for several registries is denied, each is asked for alone, so that the error names the
    registry refused (a base image's, another account's) rather than all of them."""
    named = list(dict.fromkeys(registry_ids))
    logins = []
    try:
        arguments = {"registryIds": named} if named else {}
        reply = aws.ecr_call(ecr.get_authorization_token, None, None, resource=", ".join(named), **arguments)
    except AccessDeniedError as denied:
        refused = _refused_registry(ecr, named) if len(named) > 1 else None
        raise (refused or denied) from None
    for data in reply["authorizationData"]:
        token = data["authorizationToken"]
        mask(token)
        username, _, password = base64.b64decode(token).decode().partition(":")
        # Masked before use: from here on, nothing can print the registry password in clear.
        mask(password)
        logins.append(RegistryCredentials(data["proxyEndpoint"].removeprefix("https://"), username, password))
    return tuple(logins)


def _refused_registry(ecr: Any, registry_ids: Sequence[str]) -> AccessDeniedError | None:
    """The error for the first of `registry_ids` whose token alone is denied (None: none is, alone)."""
    for registry_id in registry_ids:
        try:
            ecr.get_authorization_token(registryIds=[registry_id])
        except ClientError as error:
            if aws.error_code(error) not in aws.ACCESS_DENIED_CODES:
                return None
            host = f"{registry_id}.dkr.ecr.{ecr.meta.region_name}.amazonaws.com"
            said = error.response.get("Error", {}).get("Message", "") or aws.error_code(error)
            return AccessDeniedError(
                f"The login to the registry {host} was denied: GetAuthorizationToken for registry {registry_id} "
                f"needs the IAM action 'ecr:GetAuthorizationToken' for this role, with no policy denying it for "
                f"that registry. The build needs this login for an image there (a `FROM` line, `registries` or "
                f"`cache-from`): allow it, or build from an image this role may read. AWS said: {said}"
            )
    return None


def existing_tags(ecr: Any, spec: PushSpec) -> dict[str, ExistingTag]:
    """What the requested tags name in ECR now (absent tags are left out)."""
    ids = [{"imageTag": tag} for tag in spec.tags]
    found: dict[str, ExistingTag] = {}
    for start in range(0, len(ids), 100):  # BatchGetImage takes at most 100 image ids
        reply = aws.ecr_call(
            ecr.batch_get_image,
            spec.repository,
            spec.registry_id,
            imageIds=ids[start : start + 100],
            acceptedMediaTypes=MANIFEST_MEDIA_TYPES,
        )
        for image in reply["images"]:
            document = json.loads(image["imageManifest"])
            config_digest = document.get("config", {}).get("digest", "")
            tag = image["imageId"]["imageTag"]
            media_type = image.get("imageManifestMediaType") or document.get("mediaType", "")
            found[tag] = ExistingTag(
                tag, image["imageId"]["imageDigest"], config_digest, image["imageManifest"], media_type
            )
    return found


def plan_tags(
    spec: PushSpec, is_ours: Callable[[ExistingTag], bool], existing: Mapping[str, ExistingTag]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(tags to write, tags that already name this image); raises when a tag is taken and may not move.

    `is_ours` tells whether what a tag names is the image being pushed (an image by its config digest,
    which is the engine's image id; an index by its own digest).

    fail: any existing tag fails. skip-same-digest: a tag naming this image is left as it is, one naming
    another image fails. overwrite: a tag naming another image is moved, unless ECR holds that tag immutable.
    """
    to_write, unchanged = [], []
    for tag in spec.tags:
        current = existing.get(tag)
        if current is None:
            to_write.append(tag)
            continue
        if spec.if_tag_exists is IfTagExists.FAIL:
            raise ImmutableTagError.exists(tag, spec.repository, current.digest)
        if is_ours(current):
            unchanged.append(tag)
        elif spec.immutable(tag):
            raise ImmutableTagError.immutable(tag, spec.repository, current.digest)
        elif spec.if_tag_exists is IfTagExists.OVERWRITE:
            to_write.append(tag)
        else:
            raise ImmutableTagError.names_another(tag, spec.repository, current.digest)
    return tuple(to_write), tuple(unchanged)


def push_image(
    client: docker.DockerClient,
    ecr: Any,
    spec: PushSpec,
    image_id: str,
    auth: RegistryCredentials,
    *,
    log: Callable[[str], None],
    sleep: Callable[[float], None] = time.sleep,
) -> PushResult:
    existing = existing_tags(ecr, spec)

    def is_ours(current: ExistingTag) -> bool:
        return current.config_digest == image_id

    to_write, unchanged = plan_tags(spec, is_ours, existing)
    same = next(filter(is_ours, existing.values()), None)
    if not to_write:
        assert same is not None
        log(f"every tag already names this image ({same.digest}): nothing to push")
        return PushResult(same.digest, spec.tags, False, (), unchanged, same.media_type)
    uploaded = same is None
    if same is None:
        first, *rest = to_write
        started = time.monotonic()
        digest, manifest, media_type = upload(client, ecr, spec, image_id, first, auth, log=log, sleep=sleep)
        log(f"uploaded {spec.repository_uri}:{first} in {time.monotonic() - started:.2f} s")
    else:
        digest, rest, manifest, media_type = same.digest, list(to_write), same.manifest, same.media_type
        log(f"ECR already has this image ({digest}): adding tags without uploading")
    put_tags(ecr, spec, digest, manifest, media_type, rest, log=log)
    return PushResult(digest, spec.tags, uploaded, to_write, unchanged, media_type)


def put_tags(
    ecr: Any,
    spec: PushSpec,
    digest: str,
    manifest: str,
    media_type: str,
    tags: Sequence[str],
    *,
    log: Callable[[str], None],
) -> None:
    """Each tag is one PutImage of the same manifest: independent calls, so they are made together."""
    if not tags:
        return
    with ThreadPoolExecutor(max_workers=min(len(tags), MAX_TAG_WORKERS)) as pool:
        for tag, _ in zip(tags, pool.map(lambda t: put_tag(ecr, spec, manifest, media_type, t), tags), strict=True):
            log(f"tagged {digest} as {tag}")


def upload(
    client: docker.DockerClient,
    ecr: Any,
    spec: PushSpec,
    image_id: str,
    tag: str,
    auth: RegistryCredentials,
    *,
    log: Callable[[str], None],
    sleep: Callable[[float], None],
) -> tuple[str, str, str]:
    """(digest, manifest, media type) of `image_id` uploaded as `tag`, checked against ECR's view.

    The engine pushes by name, and a name on an engine shared by several jobs (a self-hosted runner)
    can be moved by another job between our tag and our push. So the name is set in each attempt, and
    the image ECR received is checked to be ours (its config digest is our image id); a mismatch is
    pushed again. The name stays afterwards, as `docker build -t` leaves it: removing an image's only
    name deletes the image, and with it the next run's cache of the last step.
    """
    retrying = spec.retry.retrying(f"push of {spec.repository_uri}:{tag}", _TransientPushError, log=log, sleep=sleep)

    def attempt() -> tuple[str, str, str]:
        client.api.tag(image_id, spec.repository_uri, tag)
        lines = client.api.push(spec.repository_uri, tag=tag, auth_config=auth.for_engine(), stream=True, decode=True)
        digest = follow_push_log(lines, spec, tag)
        manifest, media_type = pushed_manifest(ecr, spec, digest, image_id)
        return digest, manifest, media_type

    try:
        return retrying(attempt)
    except _TransientPushError as error:
        raise PushError(
            f"Pushing {spec.repository_uri}:{tag} failed after {attempts_made(retrying)} "
            f"attempts: {error}. The registry kept failing; re-run the job, or raise 'retries'/'retry-max-seconds'."
        ) from None
    except (docker.errors.APIError, requests.exceptions.RequestException) as error:
        raise DockerEngineError(f"The Docker Engine failed during the push: {engine_error_text(error)}") from None


def follow_push_log(lines: Iterable[Mapping[str, Any]], spec: PushSpec, tag: str) -> str:
    """The digest the registry reported; the push's error classified as the user can act on it."""
    digest = ""
    for line in lines:
        if "error" in line:
            raise push_failure(str(line.get("errorDetail", {}).get("message") or line["error"]), spec, tag)
        if "aux" in line and "Digest" in line["aux"]:
            digest = line["aux"]["Digest"]
    if not digest:
        raise _TransientPushError("the engine ended the push without a digest")
    return digest


def push_failure(message: str, spec: PushSpec, tag: str) -> Exception:
    if NOT_AUTHENTICATED.search(message):
        return RegistryLoginError(
            f"The registry refused the login for {spec.repository_uri} ({message}). The token from "
            "GetAuthorizationToken was for another registry or has expired: check 'registry-id' and 'aws-region'."
        )
    if DENIED.search(message):
        return AccessDeniedError(
            f"The registry denied the push to {spec.repository_uri} ({message}): allow ecr:InitiateLayerUpload, "
            "ecr:UploadLayerPart, ecr:CompleteLayerUpload, ecr:BatchCheckLayerAvailability and ecr:PutImage "
            "on the repository (see the README's 'IAM permissions')."
        )
    if IMMUTABLE.search(message):
        return ImmutableTagError.immutable(tag, spec.repository)
    if NO_REPOSITORY.search(message):
        return RepositoryMissingError(
            f"The registry has no repository {spec.repository}: set 'create-repository: true' or create it first."
        )
    if TRANSIENT.search(message):
        return _TransientPushError(message)
    return PushError(f"Pushing {spec.repository_uri}:{tag} failed: {message}")


def pushed_manifest(ecr: Any, spec: PushSpec, digest: str, image_id: str) -> tuple[str, str]:
    """The manifest and media type ECR holds under `digest`, which must be the image we built.

    A config digest other than `image_id` means the engine pushed another job's image under our name
    (a shared engine): transient, the next attempt tags and pushes again.
    """
    images = aws.ecr_call(
        ecr.batch_get_image,
        spec.repository,
        spec.registry_id,
        imageIds=[{"imageDigest": digest}],
        acceptedMediaTypes=MANIFEST_MEDIA_TYPES,
    )["images"]
    if not images:
        raise _TransientPushError(f"the registry reported {digest}, which ECR's API does not show yet")
    image = images[0]
    manifest = image["imageManifest"]
    config_digest = json.loads(manifest).get("config", {}).get("digest", "")
    if config_digest != image_id:
        raise _TransientPushError(
            f"the engine pushed image {config_digest or 'unknown'} instead of {image_id} (another job on this "
            "Docker Engine tagged the same name)"
        )
    return manifest, image.get("imageManifestMediaType") or json.loads(manifest)["mediaType"]


def put_tag(ecr: Any, spec: PushSpec, manifest: str, media_type: str, tag: str) -> None:
    aws.ecr_call(
        ecr.put_image,
        spec.repository,
        spec.registry_id,
        # The tag already names this very manifest: a concurrent run of the same build.
        none_on={"ImageAlreadyExistsException"},
        errors={"ImageTagAlreadyExistsException": ImmutableTagError.immutable(tag, spec.repository)},
        imageManifest=manifest,
        imageManifestMediaType=media_type,
        imageTag=tag,
    )
