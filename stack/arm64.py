"""arm64 on this amd64 machine: qemu's user-mode emulator registered with the kernel, and an arm64 busybox.

`python -m stack up` does both (idempotently) and checks that an arm64 program runs; `scripts/bootstrap`
installs Debian's `qemu-user-static`. The emulator is registered as Debian registers it (its
`/usr/lib/binfmt.d/qemu-aarch64.conf`, which binfmt-support or systemd-binfmt would load on a machine that
runs them), with the F flag: the kernel opens the interpreter once, at registration, so arm64 programs
run inside containers, whose root filesystems have no qemu. The registration is the kernel's, not the
stack's: `stack down` leaves it, as it leaves installed packages.

The arm64 busybox is Debian's `busybox-static` for arm64, downloaded with apt into the stack's cache with
apt state of its own (lists and archives under the cache), so the machine gets no foreign architecture
and its apt state is untouched.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from stack.config import StackConfig

BINFMT_MISC = Path("/proc/sys/fs/binfmt_misc")
BINFMT_NAME = "qemu-aarch64"
DEBIAN_BINFMT_CONF = Path("/usr/lib/binfmt.d/qemu-aarch64.conf")  # from qemu-user-static
QEMU_AARCH64 = Path("/usr/bin/qemu-aarch64-static")
BUSYBOX_ARM64_PACKAGE = "busybox-static:arm64"


class EmulationError(Exception):
    pass


# The kernel's side -----------------------------------------------------------------------------------
def binfmt_entry() -> dict[str, str]:
    """The registered aarch64 entry, as the kernel shows it ({} when none): `enabled`, `interpreter`,
    `flags`, `offset`, `magic`, `mask`."""
    try:
        lines = (BINFMT_MISC / BINFMT_NAME).read_text().splitlines()
    except OSError:
        return {}
    entry = {"enabled": lines[0]} if lines else {}
    for line in lines[1:]:
        key, _, value = line.partition(" ")
        entry[key.rstrip(":")] = value.strip()
    return entry


def register_emulation() -> None:
    """binfmt_misc mounted, and Debian's aarch64 entry registered, unless an entry is there already."""
    if not QEMU_AARCH64.exists() or not DEBIAN_BINFMT_CONF.exists():
        raise EmulationError(f"{QEMU_AARCH64} is missing: install qemu-user-static (scripts/bootstrap)")
    if not (BINFMT_MISC / "register").exists():
        mounted = subprocess.run(
            ["mount", "-t", "binfmt_misc", "binfmt_misc", str(BINFMT_MISC)], capture_output=True, text=True
        )
        if mounted.returncode != 0:
            raise EmulationError(f"cannot mount binfmt_misc on {BINFMT_MISC}: {mounted.stderr.strip()}")
    if binfmt_entry():
        return
    rule = next(
        line.strip()
        for line in DEBIAN_BINFMT_CONF.read_text().splitlines()
        if line.strip() and not line.lstrip().startswith(("#", ";"))
    )
    try:
        (BINFMT_MISC / "register").write_text(rule)
    except OSError as error:
        if not binfmt_entry():  # another `stack up` may have registered it meanwhile
            raise EmulationError(f"registering {rule!r} in {BINFMT_MISC} failed: {error}") from None


def emulation_problem(config: StackConfig) -> str | None:
    """Why arm64 programs would not run in the stack's containers, or None when they do (checked by running
    the arm64 busybox's `uname -m`)."""
    entry = binfmt_entry()
    if not entry:
        return f"no {BINFMT_NAME} entry in {BINFMT_MISC}"
    if entry.get("enabled") != "enabled":
        return f"the {BINFMT_NAME} entry in {BINFMT_MISC} is disabled"
    if "F" not in entry.get("flags", ""):
        return (
            f"the {BINFMT_NAME} entry in {BINFMT_MISC} lacks the F flag (flags: {entry.get('flags', '')!r}), so "
            f"containers cannot find {entry.get('interpreter')}; remove it (echo -1 > {BINFMT_MISC / BINFMT_NAME}) "
            "and run `python -m stack up` again"
        )
    busybox = busybox_arm64_path(config)
    if not busybox.exists():
        return f"no arm64 busybox at {busybox}"
    try:
        ran = subprocess.run([str(busybox), "uname", "-m"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"the arm64 busybox does not run: {error}"
    if ran.stdout.strip() != "aarch64":
        return f"the arm64 busybox's `uname -m` printed {ran.stdout.strip()!r} ({ran.stderr.strip()}), not aarch64"
    return None


# The arm64 busybox -----------------------------------------------------------------------------------
def busybox_arm64_path(config: StackConfig) -> Path:
    return config.cache_dir / "busybox-static-arm64" / "bin" / "busybox"


def ensure_busybox_arm64(config: StackConfig) -> Path:
    """Debian's arm64 static busybox, downloaded and unpacked into the stack's cache unless it is there."""
    target = busybox_arm64_path(config)
    package_dir = target.parent.parent
    package_dir.parent.mkdir(parents=True, exist_ok=True)
    with open(package_dir.parent / "busybox-static-arm64.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if target.exists():
            return target
        with tempfile.TemporaryDirectory(dir=package_dir.parent, prefix="busybox-arm64-") as workdir:
            work = Path(workdir)
            for directory in ("lists/partial", "archives/partial"):
                (work / directory).mkdir(parents=True)
            # apt with its own lists and archives, reading the machine's sources: nothing of the machine's
            # apt or dpkg state changes, and dpkg never learns of arm64.
            apt = [
                "apt-get",
                "-qq",
                f"-o=Dir::State::Lists={work / 'lists'}",
                f"-o=Dir::Cache={work}",
                f"-o=Dir::Cache::Archives={work / 'archives'}",
                "-o=APT::Architectures::=arm64",
                "-o=APT::Sandbox::User=root",
            ]
            environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
            for command in (["update"], ["download", BUSYBOX_ARM64_PACKAGE]):
                ran = subprocess.run(apt + command, cwd=work, env=environment, capture_output=True, text=True)
                if ran.returncode != 0:
                    raise EmulationError(
                        f"arm64 busybox: `apt-get {' '.join(command)}` failed:\n{ran.stderr.strip()[-2000:]}"
                    )
            (deb,) = work.glob("busybox-static_*_arm64.deb")
            unpacked = work / "unpacked"
            subprocess.run(["dpkg-deb", "-x", str(deb), str(unpacked)], check=True)
            shutil.copy(deb, unpacked)  # kept beside what it unpacked to: which version this is
            # Renamed into place only when complete, so an interrupted download never leaves half a cache.
            shutil.rmtree(package_dir, ignore_errors=True)
            unpacked.rename(package_dir)
        return target


def set_up(config: StackConfig) -> None:
    """What `stack up` does for arm64: the busybox in the cache, the emulator registered, and a check."""
    ensure_busybox_arm64(config)
    register_emulation()
    problem = emulation_problem(config)
    if problem:
        raise EmulationError(problem)
