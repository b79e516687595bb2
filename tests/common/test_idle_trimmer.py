"""imgapi_common.memory.IdleTrimmer: trims once after activity stops, never while it goes on."""

from __future__ import annotations

import ctypes
import ctypes.util

import pytest

from imgapi_common.memory import IdleTrimmer, trim


def test_trims_once_after_each_burst_and_never_during_one() -> None:
    moved = [0.0]
    trims: list[float] = []
    t = IdleTrimmer(lambda: moved[0], trim_fn=lambda: trims.append(moved[0]))
    assert not t.check()  # nothing happened yet: nothing to give back
    for n in (1, 2, 3):  # a transfer in progress
        moved[0] = n
        assert not t.check()
    assert t.check() and trims == [3]  # it stopped: trimmed once
    assert not t.check() and not t.check() and trims == [3]  # idle: not again
    moved[0] = 10
    assert not t.check()
    assert t.check() and trims == [3, 10]


def test_trim_gives_back_freed_heap() -> None:
    if ctypes.util.find_library("c") is None:
        pytest.skip("not glibc")  # musl/macOS: nothing to trim
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    blocks = [libc.malloc(64 * 1024) for _ in range(512)]  # 32 MiB in heap-sized blocks
    for b in blocks[::2]:  # holes in the middle of the heap: free() alone cannot give them back
        libc.free(b)
    try:
        assert trim() is True  # glibc reports that memory was released
    finally:
        for b in blocks[1::2]:
            libc.free(b)
