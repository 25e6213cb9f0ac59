"""How the benchmark's modules print a figure."""

from __future__ import annotations

import statistics


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def blobs_text(blobs: int, size: int) -> str:
    """ "2 / 3.4 kB": blobs and their bytes."""
    return f"{blobs} / {size_text(size)}"


def size_text(size: int) -> str:
    return f"{size / 1e6:.1f} MB" if size >= 100_000 else f"{size / 1e3:.1f} kB"
