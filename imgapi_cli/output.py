"""Output: JSON on stdout, rich tables, progress bars and messages on stderr."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from imgapi_cli.client import CliError


def stdout() -> Console:
    # Built per call: sys.stdout may be swapped (tests, pipes). Tables are never truncated (UUIDs and
    # dates must stay whole, like imgadm's columns); a narrow terminal wraps the lines instead.
    return Console(file=sys.stdout, soft_wrap=True, width=100_000)


def stderr() -> Console:
    return Console(file=sys.stderr, soft_wrap=True)


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2) + "\n")
    sys.stdout.flush()


def flags(image: dict[str, Any]) -> str:
    """imgadm-style flags: I = incremental (has an origin), P = public, X = has an icon."""
    out = ""
    if image.get("origin"):
        out += "I"
    if image.get("public"):
        out += "P"
    if image.get("icon"):
        out += "X"
    return out


IMAGE_COLUMNS = ("uuid", "name", "version", "flags", "os", "type", "state", "published_at")


def image_table(images: Iterable[dict[str, Any]], *, title: str | None = None) -> Table:
    table = Table(title=title, box=None, header_style="bold", pad_edge=False)
    for col in IMAGE_COLUMNS:
        table.add_column(col.upper(), no_wrap=True)
    for img in images:
        row = [flags(img) if col == "flags" else str(img.get(col, "") or "-") for col in IMAGE_COLUMNS]
        table.add_row(*row)
    return table


def print_table(cols: Iterable[str], rows: Iterable[list[str]], *, header: bool = True) -> None:
    """An imgadm-style table: upper-case headers (``-H``: none), whole cells, columns aligned."""
    table = Table(box=None, header_style="bold", pad_edge=False, show_header=header)
    for col in cols:
        table.add_column(col.upper(), no_wrap=True)
    for row in rows:
        table.add_row(*row)
    stdout().print(table)


def print_images(images: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        print_json(images)
    else:
        stdout().print(image_table(images))


def print_image(image: dict[str, Any], as_json: bool) -> None:
    """An image: always its JSON (like ``sdc-imgadm get``); tables are for lists."""
    print_json(image)


def print_channels(channels: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        print_json(channels)
        return
    table = Table(box=None, header_style="bold", pad_edge=False)
    for col in ("NAME", "DEFAULT", "DESCRIPTION"):
        table.add_column(col)
    for ch in channels:
        table.add_row(
            str(ch.get("name", "")), "true" if ch.get("default") else "", str(ch.get("description", ""))
        )
    stdout().print(table)


def print_error(err: CliError, as_json: bool) -> None:
    if as_json:
        sys.stderr.write(json.dumps(err.body(), indent=2) + "\n")
        return
    status = f" (HTTP {err.status})" if err.status else ""
    console = stderr()
    console.print(
        f"[bold red]imgapi: error[/]: {err.code}{status}: {err.message}", highlight=False, markup=True
    )
    for item in err.errors:
        field = item.get("field", "")
        code = item.get("code", "")
        msg = item.get("message", "")
        console.print(f"    {field}: {code}" + (f" ({msg})" if msg else ""), highlight=False, markup=False)


def note(text: str) -> None:
    stderr().print(text, highlight=False, markup=False)


class RichReporter:
    """A transfer progress bar on stderr (bytes, speed, ETA); messages go above it."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.console = stderr()
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def start(self, description: str, total: int | None, completed: int = 0) -> None:
        self.finish()
        if not self.enabled:
            return
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
        )
        self._progress.start()
        self._task = self._progress.add_task(description, total=total, completed=completed)

    def update(self, completed: int) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, completed=completed)

    def message(self, text: str) -> None:
        self.console.print(text, highlight=False, markup=False)

    def finish(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
            self._task = None
