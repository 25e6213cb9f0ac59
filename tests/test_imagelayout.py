"""The image as the registry stores it: manifests, indexes, gzipped layers and the engine's export read
into blobs. Pure: hand-made exports and descriptors."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ecr_action.errors import (
    DockerEngineError,
)
from ecr_action.imagelayout import (
    DOCKER_CONFIG,
    DOCKER_LAYER,
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    OCI_INDEX,
    OCI_MANIFEST,
    Descriptor,
    Platform,
    export_image,
    gzip_layer,
    image_index,
    image_manifest,
)


def sha256(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def child(name: str, media_type: str = DOCKER_MANIFEST) -> Descriptor:
    return Descriptor(media_type, sha256(name.encode()), 500)


# Manifests and indexes -----------------------------------------------------------------------------


def test_the_manifest_names_the_config_and_the_gzipped_layers_in_order() -> None:
    config = Descriptor(DOCKER_CONFIG, sha256(b"config"), 6)
    layers = [Descriptor(DOCKER_LAYER, sha256(b"one"), 3), Descriptor(DOCKER_LAYER, sha256(b"two"), 3)]
    manifest = image_manifest(config, layers)
    assert json.loads(manifest.document) == {
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": {"mediaType": DOCKER_CONFIG, "size": 6, "digest": sha256(b"config")},
        "layers": [
            {"mediaType": DOCKER_LAYER, "size": 3, "digest": sha256(b"one")},
            {"mediaType": DOCKER_LAYER, "size": 3, "digest": sha256(b"two")},
        ],
    }
    assert (manifest.media_type, manifest.digest) == (DOCKER_MANIFEST, sha256(manifest.document.encode()))
    assert manifest.size == len(manifest.document.encode())


@pytest.mark.parametrize(
    ("children", "media_type", "platforms"),
    [
        (
            [(child("a"), "linux/amd64"), (child("b"), "linux/arm64")],
            DOCKER_MANIFEST_LIST,
            [{"os": "linux", "architecture": "amd64"}, {"os": "linux", "architecture": "arm64"}],
        ),
        (
            [(child("a", OCI_MANIFEST), "linux/amd64"), (child("b", OCI_MANIFEST), "linux/arm/v7")],
            OCI_INDEX,
            [{"os": "linux", "architecture": "amd64"}, {"os": "linux", "architecture": "arm", "variant": "v7"}],
        ),
        # A Docker manifest list may not refer to an OCI manifest; an OCI index may refer to both.
        (
            [(child("a"), "linux/amd64"), (child("b", OCI_MANIFEST), "linux/arm64/v8")],
            OCI_INDEX,
            [{"os": "linux", "architecture": "amd64"}, {"os": "linux", "architecture": "arm64", "variant": "v8"}],
        ),
    ],
)
def test_an_index_matches_its_childrens_media_types(
    children: list[tuple[Descriptor, str]], media_type: str, platforms: list[dict[str, str]]
) -> None:
    index = image_index([(descriptor, Platform.parse(platform)) for descriptor, platform in children])
    document = json.loads(index.document)
    assert (index.media_type, document["mediaType"], document["schemaVersion"]) == (media_type, media_type, 2)
    assert [entry["platform"] for entry in document["manifests"]] == platforms
    assert [(e["mediaType"], e["digest"], e["size"]) for e in document["manifests"]] == [
        (d.media_type, d.digest, d.size) for d, _ in children
    ]


@pytest.mark.parametrize(
    ("children", "problem"),
    [
        ([], "at least one child"),
        ([(child("a"), "linux/amd64"), (child("b"), "linux/amd64")], "two children for linux/amd64"),
        ([(child("a", DOCKER_MANIFEST_LIST), "linux/amd64")], "not a single-platform image manifest"),
    ],
)
def test_an_index_refuses_what_ecr_could_not_serve(children: list[tuple[Descriptor, str]], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        image_index([(descriptor, Platform.parse(platform)) for descriptor, platform in children])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("linux/amd64", Platform("linux", "amd64")),
        (" linux/arm/v7 ", Platform("linux", "arm", "v7")),
        ("linux", None),
        ("linux//v7", None),
        ("linux/arm64/v8/x", None),
    ],
)
def test_platform_parse(text: str, expected: Platform | None) -> None:
    if expected is None:
        with pytest.raises(ValueError, match="os/arch"):
            Platform.parse(text)
    else:
        assert Platform.parse(text) == expected
        assert str(expected) == text.strip()


# Layers ----------------------------------------------------------------------------------------------


def test_gzip_of_the_same_layer_gives_the_same_digest(tmp_path: Path) -> None:
    layer = os.urandom(3 * 1024 * 1024) + b"some text\n" * 100_000
    first, diff_id = gzip_layer(io.BytesIO(layer), tmp_path / "1.gz")
    time.sleep(1.1)  # a gzip header with a time in it would now differ
    second, _ = gzip_layer(io.BytesIO(layer), tmp_path / "2.gz")
    packed = (tmp_path / "1.gz").read_bytes()
    assert first == second
    assert (first.digest, first.size, first.media_type) == (sha256(packed), len(packed), DOCKER_LAYER)
    assert diff_id == sha256(layer)
    assert gzip.decompress(packed) == layer


def save_tar(
    layers: list[bytes], *, layout: str = "legacy", duplicate_last: bool = False
) -> tuple[bytes, str, list[str]]:
    """(a `docker save` tar, the image id, its diff ids) as engines write it: `legacy` (before 25: a
    directory a layer, in name order, a layer seen twice saved once and linked), `oci` (from 25: blobs
    named by digest, uncompressed layers), `containerd` (the containerd image store: gzipped layers)."""
    layers = [*layers, layers[-1]] if duplicate_last else layers
    diff_ids = [sha256(layer) for layer in layers]
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": diff_ids}})
    image_id = sha256(config.encode())
    files: dict[str, bytes] = {}
    links: dict[str, str] = {}
    if layout == "legacy":
        directories = [hashlib.sha256(f"layer{n}".encode()).hexdigest() for n in range(len(layers))]
        for n, directory in enumerate(directories):
            files[f"{directory}/VERSION"] = b"1.0"
            first = diff_ids.index(diff_ids[n])
            if first == n:
                files[f"{directory}/layer.tar"] = layers[n]
            else:
                links[f"{directory}/layer.tar"] = f"../{directories[first]}/layer.tar"
        paths, config_path = [f"{d}/layer.tar" for d in directories], f"{image_id[7:]}.json"
    else:
        blobs = layers if layout == "oci" else [gzip.compress(layer, mtime=0) for layer in layers]
        paths = [f"blobs/sha256/{sha256(blob)[7:]}" for blob in blobs]
        files.update(zip(paths, blobs, strict=True))
        config_path = f"blobs/sha256/{image_id[7:]}"
        files["oci-layout"] = b'{"imageLayoutVersion": "1.0.0"}'
    files[config_path] = config.encode()
    files["manifest.json"] = json.dumps([{"Config": config_path, "RepoTags": None, "Layers": paths}]).encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name in sorted([*files, *links]):
            info = tarfile.TarInfo(name)
            if name in links:
                info.type, info.linkname = tarfile.SYMTYPE, links[name]
                tar.addfile(info)
            else:
                info.size = len(files[name])
                tar.addfile(info, io.BytesIO(files[name]))
    return buffer.getvalue(), image_id, diff_ids


def chunks(data: bytes, size: int = 7000) -> Iterator[bytes]:
    yield from (data[start : start + size] for start in range(0, len(data), size))


@pytest.mark.parametrize("layout", ["legacy", "oci"])
def test_an_export_gives_the_config_and_each_layer_in_the_images_order(tmp_path: Path, layout: str) -> None:
    layers = [b"first layer" * 5000, os.urandom(20_000), b"third"]
    saved, image_id, diff_ids = save_tar(layers, layout=layout, duplicate_last=True)
    handed: list[str] = []
    config, blobs = export_image(
        chunks(saved), image_id, diff_ids, tmp_path, on_blob=lambda b: handed.append(b.descriptor.digest)
    )
    assert config.descriptor.digest == image_id and config.descriptor.media_type == DOCKER_CONFIG
    assert [gzip.decompress(blob.path.read_bytes()) for blob in blobs] == [*layers, layers[-1]]
    assert blobs[-1] == blobs[-2]  # a layer the image has twice is one blob, uploaded once
    assert sorted(handed) == sorted({blob.descriptor.digest for blob in blobs} | {image_id})


def test_an_export_with_compressed_layers_is_refused_naming_the_image_store(tmp_path: Path) -> None:
    saved, image_id, diff_ids = save_tar([b"layer"], layout="containerd")
    with pytest.raises(DockerEngineError, match="containerd image store"):
        export_image(chunks(saved), image_id, diff_ids, tmp_path)


def test_an_export_of_another_image_is_refused(tmp_path: Path) -> None:
    saved, _, diff_ids = save_tar([b"layer"])
    with pytest.raises(DockerEngineError, match="does not hold that one image"):
        export_image(chunks(saved), "sha256:" + "0" * 64, diff_ids, tmp_path)
