#!/usr/bin/env python3
"""The container's entry point: the runner passes inputs as INPUT_* variables (flags work too)."""

from ecr_action.main import exit_now, main

if __name__ == "__main__":
    exit_now(main())
