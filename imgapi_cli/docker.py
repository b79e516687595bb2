"""``imgapi import-docker REPO[:TAG|@DIGEST]``: AdminImportDockerImage with a progress bar per layer.

The server streams newline-delimited JSON progress (docs/docker.md); the import succeeded when the
stream ends with its ``Status:`` line, and failed when it ends with an ``error`` line.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

from rich.progress import BarColumn, DownloadColumn, Progress, TaskID, TextColumn

from imgapi_cli.client import Client, CliError
from imgapi_cli.output import stderr


def split_reference(arg: str) -> tuple[str, str, str]:
    """``(repo, tag, digest)``: split at the last ``@``, else at a ``:`` after the last ``/``
    (no tag: ``latest``)."""
    if "@" in arg:
        repo, _, digest = arg.rpartition("@")
        return repo, "", digest
    colon, slash = arg.rfind(":"), arg.rfind("/")
    if colon > slash:
        return arg[:colon], arg[colon + 1 :], ""
    return arg, "latest", ""


def registry_auth(username: str, password: str) -> str:
    """The ``X-Registry-Auth`` header the Docker CLI would send."""
    return base64.b64encode(json.dumps({"username": username, "password": password}).encode()).decode()


class LayerBars:
    """One bar per layer (bytes downloaded, then its state), on stderr; nothing when disabled."""

    def __init__(self, enabled: bool) -> None:
        self.progress: Progress | None = None
        if enabled:
            self.progress = Progress(
                TextColumn("{task.fields[layer]} {task.description}"),
                BarColumn(),
                DownloadColumn(),
                console=stderr(),
            )
            self.progress.start()
        self.tasks: dict[str, TaskID] = {}

    def show(self, msg: dict[str, Any]) -> None:
        p = self.progress
        payload = msg.get("payload")
        if p is None or not isinstance(payload, dict):
            return
        layer, status = payload.get("id"), str(payload.get("status", ""))
        if not isinstance(layer, str):
            p.console.print(status, highlight=False, markup=False)
            return
        if layer not in self.tasks:
            self.tasks[layer] = p.add_task(status, total=None, layer=layer)
        task = self.tasks[layer]
        detail = payload.get("progressDetail") or {}
        if status == "Downloading" and isinstance(detail, dict):
            total = detail.get("total")
            p.update(task, completed=detail.get("current", 0), total=total if total and total > 0 else None)
        else:
            p.update(task, description=status)
            if status in ("Already exists", "Pull complete"):
                p.update(task, total=1, completed=1)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()


def messages(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    for line in lines:
        if line.strip():
            msg = json.loads(line)
            if isinstance(msg, dict):
                yield msg


def import_docker(
    client: Client,
    reference: str,
    *,
    public: bool | None = None,
    auth: str | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Run the import; its ``create-docker-image`` message (raises :class:`CliError` on failure)."""
    repo, tag, digest = split_reference(reference)
    params: dict[str, Any] = {"action": "import-docker-image", "repo": repo, "tag": tag or None}
    params.update(digest=digest or None, public=None if public is None else str(public).lower())
    headers = {"Accept": "application/json", **({"x-registry-auth": auth} if auth else {})}
    bars = LayerBars(progress)
    created: dict[str, Any] | None = None
    last: dict[str, Any] = {}
    try:
        with client.stream("POST", "/images", params=client.scope(params), headers=headers) as r:
            for msg in messages(r.iter_lines()):
                last = msg
                if msg.get("type") == "create-docker-image":
                    created = msg
                elif msg.get("type") == "error":
                    err = msg.get("error") or {}
                    raise CliError(str(err.get("code", "Error")), str(err.get("message", "")))
                else:
                    bars.show(msg)
    finally:
        bars.close()
    status = str((last.get("payload") or {}).get("status", ""))
    if created is None or not status.startswith("Status: "):
        raise CliError("Interrupted", "the import's progress stream ended before its Status line")
    return created
