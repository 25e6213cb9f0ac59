#!/usr/bin/env python3
"""The container's entry point: the runner passes inputs as INPUT_* variables (flags work too)."""

import sys

from ecr_action.main import main

if __name__ == "__main__":
    sys.exit(main())
