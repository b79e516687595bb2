"""SHA-1, MD5 and SHA-256 whose state can be saved and restored.

``hashlib`` objects cannot be persisted, yet an upload continued by another replica, or after a
restart, must end with the digests of *all* its bytes. The OpenSSL low-level contexts
(``SHA1_CTX`` & co.) are plain structs: we drive them through ``ctypes`` (same assembly as
``hashlib``, and ``ctypes`` releases the GIL during the call) and save their raw bytes in the upload
state next to the offset they correspond to. When that is not possible (no libcrypto, a checkpoint
from an incompatible library) the service rebuilds the state by re-reading the stored bytes.
"""

from __future__ import annotations

import base64
import ctypes
import ctypes.util
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

#: Room for any of the three OpenSSL contexts (SHA256_CTX, the largest, is 112 bytes).
_CTX_BYTES = 128
ALGORITHMS = ("sha1", "md5", "sha256")


@dataclass(frozen=True)
class Digests:
    """Lower-case hex digests."""

    sha1: str
    md5: str
    sha256: str

    @property
    def content_md5(self) -> str:
        """Base64 of the MD5 (HTTP ``Content-MD5``)."""
        return base64.b64encode(bytes.fromhex(self.md5)).decode()


Buffer = bytes | bytearray | memoryview


class Hasher(Protocol):
    def update(self, data: Buffer) -> None: ...
    def hexdigest(self) -> str: ...
    def export(self) -> str | None: ...


class _PyBuffer(ctypes.Structure):
    """CPython's ``Py_buffer``: how to find the address of a read-only buffer (a view of bytes)."""

    _fields_ = [
        ("buf", ctypes.c_void_p),
        ("obj", ctypes.c_void_p),
        ("len", ctypes.c_ssize_t),
        ("itemsize", ctypes.c_ssize_t),
        ("readonly", ctypes.c_int),
        ("ndim", ctypes.c_int),
        ("format", ctypes.c_char_p),
        ("shape", ctypes.c_void_p),
        ("strides", ctypes.c_void_p),
        ("suboffsets", ctypes.c_void_p),
        ("internal", ctypes.c_void_p),
    ]


_get_buffer = ctypes.pythonapi.PyObject_GetBuffer
_get_buffer.argtypes = [ctypes.py_object, ctypes.POINTER(_PyBuffer), ctypes.c_int]
_get_buffer.restype = ctypes.c_int
_release_buffer = ctypes.pythonapi.PyBuffer_Release
_release_buffer.argtypes = [ctypes.POINTER(_PyBuffer)]
_release_buffer.restype = None


class _OpenSSL:
    """The libcrypto entry points, or ``None`` when they are not available."""

    def __init__(self) -> None:
        path = ctypes.util.find_library("crypto")
        lib = ctypes.CDLL(path or "libcrypto.so.3")
        version = lib.OpenSSL_version
        version.restype = ctypes.c_char_p
        version.argtypes = [ctypes.c_int]
        self.version = (version(0) or b"").decode()
        self.funcs: dict[str, tuple[Callable[..., int], Callable[..., int], Callable[..., int], int]] = {}
        for name, prefix, size in (("sha1", "SHA1", 20), ("md5", "MD5", 16), ("sha256", "SHA256", 32)):
            init, update, final = (getattr(lib, f"{prefix}_{op}") for op in ("Init", "Update", "Final"))
            init.argtypes = [ctypes.c_void_p]
            update.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t]
            final.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
            for f in (init, update, final):
                f.restype = ctypes.c_int
            self.funcs[name] = (init, update, final, size)


def _load_openssl() -> _OpenSSL | None:
    try:
        return _OpenSSL()
    except (OSError, AttributeError):
        return None


_OPENSSL = _load_openssl()


class OpenSSLHasher:
    """One digest over an OpenSSL context whose raw bytes are the saved state."""

    def __init__(self, lib: _OpenSSL, name: str, saved: bytes | None = None) -> None:
        self._init, self._update, self._final, self._size = lib.funcs[name]
        self._tag = f"{name}:{lib.version}"
        self._ctx = ctypes.create_string_buffer(_CTX_BYTES)
        if saved is None:
            self._init(self._ctx)
        else:
            ctypes.memmove(self._ctx, saved, _CTX_BYTES)

    def update(self, data: Buffer) -> None:
        if isinstance(data, bytes):
            self._update(self._ctx, data, len(data))
            return
        # A view (of a received message, say): hash it in place, no copy. ctypes cannot take the
        # address of a read-only buffer, so ask CPython for it; the view stays pinned meanwhile.
        view = _PyBuffer()
        if _get_buffer(data, ctypes.byref(view), 0) != 0:  # PyBUF_SIMPLE: contiguous bytes
            raise BufferError("cannot hash a non-contiguous buffer")
        try:
            self._update(self._ctx, view.buf, view.len)
        finally:
            _release_buffer(ctypes.byref(view))

    def hexdigest(self) -> str:
        copy = ctypes.create_string_buffer(self._ctx.raw, _CTX_BYTES)  # finalizing destroys a context
        out = ctypes.create_string_buffer(self._size)
        self._final(out, copy)
        return out.raw.hex()

    def export(self) -> str | None:
        return f"{self._tag}:{base64.b64encode(self._ctx.raw).decode()}"


class HashlibHasher:
    """Fallback: fast, but its state cannot be saved."""

    def __init__(self, name: str) -> None:
        self._h = hashlib.new(name)

    def update(self, data: Buffer) -> None:
        self._h.update(data)

    def hexdigest(self) -> str:
        return self._h.hexdigest()

    def export(self) -> str | None:
        return None


def new_hasher(name: str, saved: str | None = None, allow_export: bool = True) -> Hasher | None:
    """A fresh hasher, or one restored from ``saved``; ``None`` when ``saved`` cannot be restored."""
    lib = _OPENSSL if allow_export else None
    if saved is None:
        return OpenSSLHasher(lib, name) if lib is not None else HashlibHasher(name)
    if lib is None:
        return None
    tag, _, raw = saved.rpartition(":")
    if tag != f"{name}:{lib.version}":
        return None
    try:
        state = base64.b64decode(raw, validate=True)
    except ValueError:
        return None
    if len(state) != _CTX_BYTES:
        return None
    return OpenSSLHasher(lib, name, state)


class DigestSet:
    """The three digests of one byte stream."""

    def __init__(self, hashers: dict[str, Hasher]) -> None:
        self.hashers = hashers

    @classmethod
    def new(cls, allow_export: bool = True) -> DigestSet:
        hashers = {n: new_hasher(n, None, allow_export) for n in ALGORITHMS}
        return cls({n: h for n, h in hashers.items() if h is not None})

    @classmethod
    def restore(cls, saved: dict[str, str] | None) -> DigestSet | None:
        """The set saved by :meth:`export`, or ``None`` when it cannot be restored here."""
        if not saved:
            return None
        hashers: dict[str, Hasher] = {}
        for name in ALGORITHMS:
            h = new_hasher(name, saved[name]) if name in saved else None
            if h is None:
                return None
            hashers[name] = h
        return cls(hashers)

    def update(self, data: Buffer) -> None:
        for h in self.hashers.values():
            h.update(data)

    def export(self) -> dict[str, str] | None:
        out: dict[str, str] = {}
        for name, h in self.hashers.items():
            saved = h.export()
            if saved is None:
                return None
            out[name] = saved
        return out

    def digests(self) -> Digests:
        return Digests(**{n: h.hexdigest() for n, h in self.hashers.items()})


def exportable() -> bool:
    """Whether digest state can be saved here (libcrypto's low-level API is available)."""
    return _OPENSSL is not None
