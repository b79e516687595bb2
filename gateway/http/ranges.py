"""Single-range ``Range: bytes=...`` requests (RFC 9110 §14): parsing into a :class:`ByteRange`.

:func:`parse_range` raises :class:`MalformedRange` for a header a server may ignore (serving the
whole representation with 200: another unit, several ranges, bad syntax, ``last < first``) and
:class:`RangeNotSatisfiable` for a valid range that selects no byte of the representation (416).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_RANGE_SPEC = re.compile(r"^\s*(\d*)\s*-\s*(\d*)\s*$")


class RangeError(Exception):
    """A ``Range`` header that cannot be served as a 206."""


class MalformedRange(RangeError):
    """Not one well-formed ``bytes`` range: the header is ignored (200 with the whole body)."""

    def __init__(self, header: str) -> None:
        super().__init__(f"malformed range {header!r}")
        self.header = header


class RangeNotSatisfiable(RangeError):
    """A well-formed range that selects no byte of a representation of ``size`` bytes (416)."""

    def __init__(self, size: int) -> None:
        super().__init__(f"range not satisfiable for size {size}")
        self.size = size

    @property
    def content_range(self) -> str:
        """The ``Content-Range`` header of the 416 answer."""
        return f"bytes */{self.size}"


@dataclass(frozen=True)
class ByteRange:
    """Bytes ``first`` to ``last`` (inclusive) of a representation of ``size`` bytes."""

    first: int
    last: int
    size: int

    @property
    def length(self) -> int:
        return self.last - self.first + 1

    @property
    def content_range(self) -> str:
        """The ``Content-Range`` header of the 206 answer."""
        return f"bytes {self.first}-{self.last}/{self.size}"


def parse_range(header: str, size: int) -> ByteRange:
    """The single ``bytes=`` range of ``header`` over ``size`` bytes.

    Raises :class:`MalformedRange` (ignore the header) or :class:`RangeNotSatisfiable` (416).
    Several ranges are treated as malformed: a server may always answer them with 200."""
    unit, sep, spec = header.partition("=")
    if not sep or unit.strip().lower() != "bytes" or "," in spec:
        raise MalformedRange(header)
    m = _RANGE_SPEC.match(spec)
    if m is None:
        raise MalformedRange(header)
    first_s, last_s = m.groups()
    if not first_s and not last_s:
        raise MalformedRange(header)
    if not first_s:  # suffix: the last N bytes
        n = int(last_s)
        if n == 0 or size == 0:
            raise RangeNotSatisfiable(size)
        return ByteRange(max(0, size - n), size - 1, size)
    first = int(first_s)
    last = int(last_s) if last_s else size - 1
    if last_s and last < first:
        raise MalformedRange(header)
    if first >= size:
        raise RangeNotSatisfiable(size)
    return ByteRange(first, min(last, size - 1), size)
