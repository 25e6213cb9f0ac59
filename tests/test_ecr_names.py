"""How processes outside the stack's engine reach its registries (stack.ecr_names), and the gateway's
registry → ECR view of untagged manifests and of image indexes, on a registry storage laid out here."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from stack import ecr_names, gateway
from stack.config import StackConfig


@pytest.fixture
def config(tmp_path: Path) -> StackConfig:
    config = StackConfig(root=tmp_path / "stack")
    config.tls_dir.mkdir(parents=True)
    (config.tls_dir / "registry.crt").write_text("-----BEGIN CERTIFICATE-----\nstack\n-----END CERTIFICATE-----\n")
    return config


def test_the_bundle_is_the_machines_cas_and_the_stacks_certificates_kept_current(config: StackConfig) -> None:
    bundle = ecr_names.ca_bundle(config)
    system = ecr_names.system_ca_file().read_bytes()
    assert bundle == config.ca_bundle
    assert bundle.read_bytes().startswith(system.rstrip(b"\n")) and bundle.read_bytes().endswith(
        b"stack\n-----END CERTIFICATE-----\n"
    )
    with (config.tls_dir / "registry.crt").open("a") as certificates:
        certificates.write("-----BEGIN CERTIFICATE-----\nfault proxy\n-----END CERTIFICATE-----\n")
    assert ecr_names.ca_bundle(config).read_bytes().endswith(b"fault proxy\n-----END CERTIFICATE-----\n")
    assert sorted(path.name for path in config.tls_dir.iterdir()) == ["ca-bundle.crt", "registry.crt"]


def test_the_ca_variables_are_those_openssl_requests_and_botocore_read() -> None:
    assert ecr_names.ca_environment("/b.crt") == {"REQUESTS_CA_BUNDLE": "/b.crt", "SSL_CERT_FILE": "/b.crt"}


def test_no_namespace_to_enter_without_the_stacks_dockerd(config: StackConfig) -> None:
    assert ecr_names.namespace_command(config) == []


def test_every_ecr_hostname_maps_to_its_registrys_address(config: StackConfig) -> None:
    addresses = ecr_names.addresses(config)
    assert addresses["123456789012.dkr.ecr.us-east-1.amazonaws.com"] == "127.0.10.1"
    assert len(addresses) == len(config.registries) == len(set(addresses.values()))


# The gateway's registry → ECR view -----------------------------------------------------------------


class FakeEcr:
    """moto's ECR, as far as the sync reads and writes it."""

    def __init__(self, images: dict[str, list[str]] | None) -> None:
        self.images = images  # digest → tags; None: no such repository
        self.puts: list[tuple[str, str | None]] = []

    def get_paginator(self, _: str) -> Any:
        images = self.images

        class Pages:
            def paginate(self, **_: Any) -> list[dict]:
                if images is None:
                    raise ClientError({"Error": {"Code": "RepositoryNotFoundException"}}, "DescribeImages")
                return [{"imageDetails": [{"imageDigest": d, "imageTags": t} for d, t in images.items()]}]

        return Pages()

    def put_image(self, **request: Any) -> None:
        assert self.images is not None
        self.puts.append((request["imageDigest"], request.get("imageTag")))
        self.images.setdefault(request["imageDigest"], []).extend(
            [request["imageTag"]] if "imageTag" in request else []
        )

    def describe_repositories(self, **_: Any) -> dict:
        return {"repositories": [{"imageScanningConfiguration": {"scanOnPush": False}}]}


def digest(n: int) -> str:
    return f"sha256:{n:064x}"


def lay_out(the_gateway: gateway.Gateway, repository: str, tags: dict[str, str], untagged: list[str]) -> None:
    """The registry's filesystem storage: blobs, revision links, tag links."""
    registry = the_gateway.config.registries[0]
    storage = the_gateway.storage(registry)
    manifests = storage / "repositories" / repository / "_manifests"
    for name in [*tags.values(), *untagged]:
        hexdigest = name.removeprefix("sha256:")
        blob = storage / "blobs" / "sha256" / hexdigest[:2] / hexdigest / "data"
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_text(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json"}))
        (manifests / "revisions" / "sha256" / hexdigest).mkdir(parents=True, exist_ok=True)
        (manifests / "revisions" / "sha256" / hexdigest / "link").write_text(name)
    for tag, name in tags.items():
        (manifests / "tags" / tag / "current").mkdir(parents=True)
        (manifests / "tags" / tag / "current" / "link").write_text(name)
    # A manifest deleted from the registry keeps its folder, not its link.
    (manifests / "revisions" / "sha256" / digest(99).removeprefix("sha256:")).mkdir(parents=True)


@pytest.fixture
def the_gateway(config: StackConfig) -> gateway.Gateway:
    made = gateway.Gateway.__new__(gateway.Gateway)
    made.config = config
    made.lock, made.sync_locks = threading.Lock(), {}
    return made


def test_sync_imports_tags_then_manifests_pushed_without_one(
    the_gateway: gateway.Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    ecr = FakeEcr({digest(3): []})
    monkeypatch.setattr(gateway, "admin_client", lambda *_, **__: ecr)
    lay_out(the_gateway, "team/app", {"v1": digest(1)}, [digest(2), digest(3)])
    the_gateway.sync_repository(the_gateway.config.registries[0], "team/app")
    assert ecr.puts == [(digest(1), "v1"), (digest(2), None)]
    ecr.puts.clear()
    the_gateway.sync_repository(the_gateway.config.registries[0], "team/app")
    assert ecr.puts == []


def test_no_import_into_a_repository_ecr_does_not_have(
    the_gateway: gateway.Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    ecr = FakeEcr(None)
    monkeypatch.setattr(gateway, "admin_client", lambda *_, **__: ecr)
    lay_out(the_gateway, "team/app", {}, [digest(2)])
    the_gateway.sync_repository(the_gateway.config.registries[0], "team/app")
    assert ecr.puts == []


@pytest.mark.parametrize(
    ("images", "children", "missing"),
    [
        ({digest(1): [], digest(2): ["v1"]}, [digest(1), digest(2)], []),
        ({digest(1): []}, [digest(1), digest(2)], [digest(2)]),
        (None, [digest(1)], []),  # no such repository: moto answers RepositoryNotFoundException
    ],
)
def test_an_index_misses_the_children_its_repository_lacks(
    the_gateway: gateway.Gateway,
    monkeypatch: pytest.MonkeyPatch,
    images: dict[str, list[str]] | None,
    children: list[str],
    missing: list[str],
) -> None:
    ecr = FakeEcr(images)
    monkeypatch.setattr(gateway, "admin_client", lambda *_, **__: ecr)
    index = json.dumps({"schemaVersion": 2, "manifests": [{"digest": child} for child in children]})
    request = {"repositoryName": "team/app", "imageManifest": index, "registryId": "123456789012"}
    assert the_gateway.missing_children("us-east-1", request) == missing
    single = json.dumps({"schemaVersion": 2, "config": {}, "layers": []})
    assert the_gateway.missing_children("us-east-1", {**request, "imageManifest": single}) == []
