"""Apps that build with no network: nothing can be pulled here, so images are `FROM scratch`."""

from __future__ import annotations

import shutil
from pathlib import Path

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
