"""glibc malloc tuning for the byte-moving services."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from imgapi_common import memory

_PROBE = textwrap.dedent(
    """
    import ctypes
    from imgapi_common.memory import tune_malloc
    print(tune_malloc())
    # A 1 MiB block is mmapped under glibc's defaults, heap memory once tuned: watch where it lands.
    libc = ctypes.CDLL("libc.so.6")
    libc.malloc.restype = ctypes.c_void_p
    libc.sbrk.restype = ctypes.c_void_p
    p = libc.malloc(1 << 20)
    print("heap" if p < libc.sbrk(0) else "mmap")  # mmapped blocks lie far above the heap's end
    """
)


def _probe(env: dict[str, str]) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, check=True, timeout=60
    )
    return out.stdout.split()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_tuned_process_keeps_megabyte_blocks_on_the_heap() -> None:
    assert _probe({"PATH": "/usr/bin:/bin"}) == ["True", "heap"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_operator_malloc_settings_win() -> None:
    assert _probe({"PATH": "/usr/bin:/bin", "MALLOC_TOP_PAD_": "0"}) == ["False", "mmap"]


def test_variables_that_count_as_an_operator_choice() -> None:
    assert "GLIBC_TUNABLES" in memory._OPERATOR_VARIABLES
