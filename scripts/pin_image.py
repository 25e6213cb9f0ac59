"""Point action.yml at a published image by digest: `scripts/pin_image.py --image REF [--action FILE]`.

The release commit's action.yml says `image: docker://<registry>/<name>@sha256:<digest>` instead of
main's `image: Dockerfile`, so a user who pins the release's commit pins every byte of the image, and the
runner pulls it instead of building. Only the `image:` line under `runs:` changes; the rest of the file,
comments included, stays as written.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

# A reference by digest only: a tag (`:v1`) could be pushed again under a release that names it.
REFERENCE = re.compile(r"[a-z0-9][a-z0-9.:-]*(?:/[a-z0-9._-]+)+@sha256:[0-9a-f]{64}")
RUNS_IMAGE = re.compile(r"^(runs:\n(?:[ \t]+.*\n|\n)*?[ \t]+image:[ \t]*)(\S.*)$", re.MULTILINE)


class PinError(ValueError):
    pass


def pin(action_yml: str, reference: str) -> str:
    """action.yml's text with `runs.image` set to `docker://<reference>`."""
    if not REFERENCE.fullmatch(reference):
        raise PinError(f"not an image reference by digest (<registry>/<name>@sha256:<64 hex>): {reference!r}")
    matches = RUNS_IMAGE.findall(action_yml)
    if len(matches) != 1:
        raise PinError(f"expected one `image:` under `runs:`, found {len(matches)}")
    return RUNS_IMAGE.sub(lambda match: f"{match[1]}docker://{reference}", action_yml)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image", required=True, help="<registry>/<name>@sha256:<digest>, as the registry reported it")
    parser.add_argument("--action", type=Path, default=Path(__file__).resolve().parent.parent / "action.yml")
    arguments = parser.parse_args(argv)
    try:
        arguments.action.write_text(pin(arguments.action.read_text(), arguments.image))
    except (PinError, OSError) as error:
        print(f"pin_image: {error}", file=sys.stderr)
        return 2
    print(f"{arguments.action}: runs.image is docker://{arguments.image}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
