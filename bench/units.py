"""Sizes on the benchmarks' command lines (``1GiB``, ``256MiB``, ``4096``)."""

from __future__ import annotations

import argparse
import re

MIB = 1024 * 1024
_UNITS = {"b": 1, "k": 1024, "kib": 1024, "m": MIB, "mib": MIB, "g": 1024 * MIB, "gib": 1024 * MIB}


def parse_size(text: str) -> int:
    m = re.fullmatch(r"(\d+)\s*(b|k|kib|m|mib|g|gib)?", text.strip().lower())
    if m is None:
        raise argparse.ArgumentTypeError(f"bad size {text!r} (e.g. 1GiB, 256MiB)")
    return int(m.group(1)) * _UNITS[m.group(2) or "b"]
