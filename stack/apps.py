"""Apps that build with no network: nothing can be pulled here, so images are `FROM scratch`."""

from __future__ import annotations

import shutil
from pathlib import Path

from stack.arm64 import busybox_arm64_path
from stack.config import StackConfig

BUSYBOX = Path("/usr/bin/busybox")  # Debian's busybox-static: a shell and an httpd in one static binary


def write_app(directory: Path, *, marker: str = "") -> Path:
    """A small app that builds with no network: FROM scratch, a static busybox, and one file.

    `marker` goes into the image, so different markers give different digests.
    """
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy(BUSYBOX, directory / "busybox")
    (directory / "index.html").write_text(f"<h1>hello {marker}</h1>\n")
    (directory / "Dockerfile").write_text(
        "FROM scratch\n"
        "COPY busybox /bin/busybox\n"
        'RUN ["/bin/busybox", "--install", "-s", "/bin"]\n'
        "COPY index.html /www/index.html\n"
        'CMD ["/bin/httpd", "-f", "-p", "8080", "-h", "/www"]\n'
    )
    return directory


def write_busyboxes(directory: Path, config: StackConfig | None = None) -> Path:
    """`busybox-amd64` and `busybox-arm64` into `directory`, for a Dockerfile's
    `COPY busybox-${TARGETARCH} /bin/busybox` (BuildKit only: the classic builder has no TARGETARCH).

    The arm64 one is the stack's (`python -m stack up` downloads it into its cache).
    """
    arm64 = busybox_arm64_path(config or StackConfig.load())
    if not arm64.exists():
        raise FileNotFoundError(f"no arm64 busybox at {arm64}: run `python -m stack up`")
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy(BUSYBOX, directory / "busybox-amd64")
    shutil.copy(arm64, directory / "busybox-arm64")
    return directory


def write_multiarch_app(directory: Path, *, marker: str = "", config: StackConfig | None = None) -> Path:
    """`write_app`'s app for BuildKit and any of linux/amd64 and linux/arm64: the target's busybox is
    copied in (`ARG TARGETARCH`), and the image records the architecture it was built for in /arch.

    Build it with BuildKit (Engine API `POST /build?version=2&platform=linux/arm64`); `docker run` of
    the arm64 image runs under the stack's qemu.
    """
    write_busyboxes(directory, config)
    (directory / "index.html").write_text(f"<h1>hello {marker}</h1>\n")
    (directory / "Dockerfile").write_text(
        "FROM scratch\n"
        "ARG TARGETARCH\n"
        "COPY busybox-${TARGETARCH} /bin/busybox\n"
        'RUN ["/bin/busybox", "--install", "-s", "/bin"]\n'
        "RUN uname -m > /arch\n"
        "COPY index.html /www/index.html\n"
        'CMD ["/bin/httpd", "-f", "-p", "8080", "-h", "/www"]\n'
    )
    return directory
