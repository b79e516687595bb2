"""What uploads and downloads of image files share: progress reporting, the interruption error
(rerun the command to resume), the byte meter (rate limit and test hook) and file reading.

:mod:`imgapi_cli.uploads` sends files (tus, or one ``PUT``), :mod:`imgapi_cli.downloads` fetches
them (``Range`` resume, verified), :mod:`imgapi_cli.streams` does both through pipes.
``limit_rate`` (bytes/s) throttles either direction.

Test hook: the environment variable ``IMGAPI_CLI_TEST_ABORT_AFTER=<n>`` makes a transfer fail with
:class:`TransferInterrupted` once ``n`` bytes went over the wire in this run (mid-request), which is
what a crash or a dropped connection looks like to the server.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from imgapi_cli.client import CliError

PIECE = 256 << 10
ABORT_ENV = "IMGAPI_CLI_TEST_ABORT_AFTER"


class Reporter(Protocol):
    """Progress sink (a rich progress bar in the CLI, nothing in library use)."""

    def start(self, description: str, total: int | None, completed: int = 0) -> None: ...
    def update(self, completed: int) -> None: ...
    def message(self, text: str) -> None: ...
    def finish(self) -> None: ...


class NullReporter:
    def start(self, description: str, total: int | None, completed: int = 0) -> None:
        pass

    def update(self, completed: int) -> None:
        pass

    def message(self, text: str) -> None:
        pass

    def finish(self) -> None:
        pass


class TransferInterrupted(CliError):
    """The transfer stopped part-way; running the same command again resumes it."""

    def __init__(self, message: str) -> None:
        super().__init__("Interrupted", message)


def reason(e: CliError, limit: int = 120) -> str:
    """A short cause for a one-line message: a connection error without its (long) URL."""
    text = e.message
    if e.code == "ConnectionError" and ": " in text:
        text = text.rsplit(": ", 1)[1]
    return text if len(text) <= limit else text[: limit - 1] + "…"


def mark_reported(e: BaseException) -> None:
    """The interruption was already explained to the user (the CLI prints nothing more)."""
    e.reported = True  # type: ignore[attr-defined]


class Meter:
    """Counts the bytes of this run: the optional rate limit (bytes/s) and the test hook budget."""

    def __init__(self, limit_rate: int | None = None) -> None:
        raw = os.environ.get(ABORT_ENV, "")
        self.budget: int | None = int(raw) if raw.isdigit() else None
        self.rate = limit_rate if limit_rate and limit_rate > 0 else None
        self.moved = 0
        self.t0 = time.monotonic()

    def take(self, n: int) -> None:
        self.moved += n
        if self.budget is not None and self.moved > self.budget:
            raise TransferInterrupted(f"test hook: aborted after {self.budget} bytes ({ABORT_ENV})")
        if self.rate is not None:
            ahead = self.moved / self.rate - (time.monotonic() - self.t0)
            if ahead > 0:
                time.sleep(ahead)


def parse_rate(text: str) -> int:
    """``500K``, ``2M``, ``1G`` or plain bytes per second (binary multiples)."""
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    t = text.strip().lower().removesuffix("b").removesuffix("/s")
    mult = units.get(t[-1:], 1)
    number = t[:-1] if t[-1:] in units else t
    try:
        value = float(number) * mult
    except ValueError:
        raise CliError("Usage", f"invalid rate {text!r} (e.g. 500K, 2M)") from None
    if value <= 0:
        raise CliError("Usage", f"invalid rate {text!r}: must be positive")
    return int(value)


def read_pieces(path: Path, start: int, end: int) -> Iterator[bytes]:
    with path.open("rb") as f:
        f.seek(start)
        left = end - start
        while left > 0:
            data = f.read(min(PIECE, left))
            if not data:
                raise CliError("FileChanged", f"{path} became shorter while it was read")
            left -= len(data)
            yield data


def file_sha1(path: Path, reporter: Reporter) -> str:
    size = path.stat().st_size
    h = hashlib.sha1()
    done = 0
    reporter.start(f"sha1 {path.name}", size)
    for data in read_pieces(path, 0, size):
        h.update(data)
        done += len(data)
        reporter.update(done)
    reporter.finish()
    return h.hexdigest()
