"""The base of the action's image, for the tests and for the release alike: `python -m stack.base_image`.

A Debian bookworm root filesystem made with debootstrap (minbase plus Debian's Python and CA
certificates), slimmed, and imported into an engine as `BASE_IMAGE`, the Dockerfile's default base. The
same recipe serves the stack's engine (nothing can be pulled here) and the release job's (`scripts/release`
runs it with `--docker-host` and `--cache`), so the image the tests run is the image that ships. The tag
is a hash of the recipe: a changed recipe is a new base, never a stale one under an old name. The tarball
is cached, so it is made once per machine; importing it again takes seconds. Idempotent, and safe to run
concurrently.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import docker
import docker.errors

from stack.config import StackConfig

SUITE = "bookworm"
PACKAGES = ("python3", "python3-venv", "ca-certificates")
# What the action never runs, purged so that dpkg's database (what image scanners read) still tells the
# truth about what is in the image: the package manager and its TLS and crypto stack (the image is never
# updated in place: a release rebuilds it), perl, file-system and login tools, the time-zone database
# (the action works in UTC). Forced: most of them are Essential for a system, not for one Python process.
# In this order: tzdata's removal script needs debconf, hence perl.
PURGED_PACKAGES = (
    "tzdata",
    "apt",
    "libapt-pkg6.0",
    "gpgv",
    "libgnutls30",
    "libhogweed6",
    "libnettle8",
    "libp11-kit0",
    "libtasn1-6",
    "libidn2-0",
    "libunistring2",
    "libstdc++6",
    "libsystemd0",
    "libgcrypt20",
    "libgpg-error0",
    "liblz4-1",
    "perl-base",
    "e2fsprogs",
    "libext2fs2",
    "libss2",
    "logsave",
)
# As in Docker's slim Debian images: packages installed later in the image bring no documentation.
DPKG_EXCLUDES = """\
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
"""
# What a rootfs made by debootstrap carries that an image does not need: documentation, apt's package
# lists and caches, logs of the installation. The directories apt and dpkg expect are emptied, not removed.
# glibc's iconv modules (Python has its own codecs), and the parts of Python's standard library that are
# tools or tests, not modules a program imports.
REMOVED_PATHS = (
    "usr/lib/x86_64-linux-gnu/gconv",
    "usr/lib/python3.11/test",
    "usr/lib/python3.11/lib2to3",
    "usr/lib/python3.11/pydoc_data",
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
    "usr/share/locale",
    "usr/share/lintian",
    "var/cache/debconf/templates.dat-old",
)
EMPTIED_DIRECTORIES = ("var/lib/apt/lists", "var/cache/apt", "var/log")
# `docker import` makes an image with no configuration: LANG and CMD as the official image has them, and
# pip told to use the system's CA bundle (see trust_machine_certificates), not the one it vendors.
IMAGE_CHANGES = ("ENV LANG=C.UTF-8", "ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt", 'CMD ["python3"]')
RECIPE = repr((SUITE, PACKAGES, PURGED_PACKAGES, REMOVED_PATHS, EMPTIED_DIRECTORIES, DPKG_EXCLUDES, IMAGE_CHANGES))
BASE_IMAGE = f"ecr-action-base/{SUITE}-python3:{hashlib.sha256(RECIPE.encode()).hexdigest()[:12]}"
MACHINE_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
PEM_CERTIFICATE = re.compile(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL)


def tarball_path(cache: Path) -> Path:
    return cache / f"{BASE_IMAGE.rsplit(':', 1)[1]}.tar"


def ensure_base_image(config: StackConfig, log: Callable[[str], None] = print) -> str:
    """The base image's reference, made only if the stack's engine lacks it."""
    return ensure_base_image_in(config.docker_host, config.root / "base-image", log)


def ensure_base_image_in(docker_host: str, cache: Path, log: Callable[[str], None] = print) -> str:
    """The base image's reference, made (rootfs, then import) only if the engine at `docker_host` lacks it."""
    engine = docker.DockerClient(base_url=docker_host)
    tarball = tarball_path(cache)
    tarball.parent.mkdir(parents=True, exist_ok=True)
    # One maker at a time: concurrent test sessions wait for the first instead of running debootstrap twice.
    with open(tarball.parent / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            engine.images.get(BASE_IMAGE)
            return BASE_IMAGE
        except docker.errors.ImageNotFound:
            pass
        if not tarball.exists():
            started = time.monotonic()
            make_rootfs_tarball(tarball, log)
            log(f"base-image: made {tarball} in {time.monotonic() - started:.0f}s")
        repository, tag = BASE_IMAGE.rsplit(":", 1)
        engine.api.import_image_from_file(str(tarball), repository=repository, tag=tag, changes=list(IMAGE_CHANGES))
        log(f"base-image: imported {BASE_IMAGE} into the stack's engine")
    return BASE_IMAGE


def make_rootfs_tarball(tarball: Path, log: Callable[[str], None]) -> None:
    install_debootstrap(log)
    with tempfile.TemporaryDirectory(dir=tarball.parent, prefix="rootfs-") as workdir:
        rootfs = Path(workdir) / "rootfs"
        log(f"base-image: debootstrap {SUITE} with {', '.join(PACKAGES)} (a few minutes, once per machine)")
        try:
            subprocess.run(
                ["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", SUITE, str(rootfs)],
                check=True,
                stdout=subprocess.DEVNULL,
            )
        finally:
            # debootstrap mounts /proc and /sys inside the rootfs and leaves them mounted when it fails;
            # removing the directory then would descend into the machine's own.
            unmount_below(rootfs)
        trust_machine_certificates(rootfs)
        purge(rootfs)
        slim(rootfs)
        partial = Path(workdir) / tarball.name
        subprocess.run(["tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(partial), "."], check=True)
        # Renamed into place only when complete, so an interrupted run never leaves a truncated cache.
        partial.rename(tarball)


def unmount_below(directory: Path) -> None:
    mount_points = [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()]
    inside = [point for point in mount_points if Path(point).is_relative_to(directory)]
    for point in sorted(inside, key=len, reverse=True):
        subprocess.run(["umount", "--lazy", point], check=False)


def trust_machine_certificates(rootfs: Path) -> None:
    """Adds the CAs this machine trusts beyond Debian's (a TLS-inspecting proxy's, say) to the rootfs:
    pip in the image's build reaches PyPI through the same network as this machine."""
    debian = set(PEM_CERTIFICATE.findall((rootfs / MACHINE_CA_BUNDLE.relative_to("/")).read_text()))
    extra = [pem for pem in PEM_CERTIFICATE.findall(MACHINE_CA_BUNDLE.read_text()) if pem not in debian]
    if not extra:
        return
    local_certificates = rootfs / "usr/local/share/ca-certificates"
    for number, pem in enumerate(extra):
        (local_certificates / f"machine-{number}.crt").write_text(pem + "\n")
    subprocess.run(["chroot", str(rootfs), "update-ca-certificates"], check=True, stdout=subprocess.DEVNULL)


def purge(rootfs: Path) -> None:
    subprocess.run(
        ["chroot", str(rootfs), "dpkg", "--purge", "--force-remove-essential", "--force-depends", *PURGED_PACKAGES],
        check=True,
        stdout=subprocess.DEVNULL,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
    )


def slim(rootfs: Path) -> None:
    for relative in (*REMOVED_PATHS, *EMPTIED_DIRECTORIES):
        path = rootfs / relative
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    for relative in EMPTIED_DIRECTORIES:
        (rootfs / relative).mkdir(parents=True)
    (rootfs / "etc/dpkg/dpkg.cfg.d/excludes").write_text(DPKG_EXCLUDES)


def install_debootstrap(log: Callable[[str], None]) -> None:
    if shutil.which("debootstrap"):
        return
    log("base-image: installing debootstrap")
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "debootstrap"],
        check=True,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        stdout=subprocess.DEVNULL,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Make the action's base image and import it into an engine.")
    parser.add_argument("--docker-host", help="engine to import into (default: the local stack's)")
    parser.add_argument("--cache", type=Path, help="directory for the cached root filesystem (default: the stack's)")
    arguments = parser.parse_args(argv)
    config = StackConfig.load()
    docker_host = arguments.docker_host or config.docker_host
    print(ensure_base_image_in(docker_host, arguments.cache or config.root / "base-image"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
