"""``imgapi replicate ...``: replication jobs of a replication service (gRPC, replication.proto).

Register with ``app.add_typer(replicate_app, name="replicate")``. The service address comes from
``--target`` or ``IMGAPI_REPLICATION_TARGET`` (default 127.0.0.1:8503). A job is named by its id or
its name (names are unique). ``-j``/``--json`` prints jobs exactly as the gateway's
``/replication/jobs`` routes do (snake_case keys, integers). The table folds long cells instead of
cutting them, whatever the terminal width; a running job whose last attempt failed (an unreachable
source, say) shows as ``failing`` with its last error.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Annotated, Any

import grpc
import typer
from imgapi.v1 import replication_pb2, replication_pb2_grpc
from rich.console import Console
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table

from imgapi_cli.habits import root_json
from imgapi_common import internal_auth
from imgapi_common.grpc_errors import from_rpc_error
from imgapi_common.replication_jobs import job_json

replicate_app = typer.Typer(
    help="Replication jobs: pull images from another datacenter.", no_args_is_help=True
)


def _console() -> Console:
    return Console()  # built per call: the terminal's current width (or COLUMNS)


Target = Annotated[
    str, typer.Option("--target", envvar="IMGAPI_REPLICATION_TARGET", help="replication service host:port")
]
AsJson = Annotated[bool, typer.Option("--json", "-j", help="print JSON (as the REST routes)")]
JobRef = Annotated[str, typer.Argument(help="job id or name", show_default=False)]


class Service:
    """The replication service at ``target``; errors name it and exit 1."""

    def __init__(self, target: str) -> None:
        self.target = target
        # The service answers only calls carrying the stack's internal token (docs/security.md).
        token = os.environ.get(internal_auth.TOKEN_SETTING, "")
        self.stub = replication_pb2_grpc.ReplicationServiceStub(internal_auth.channel(target, token))

    def fail(self, code: str, message: str) -> typer.Exit:
        err_console = Console(stderr=True, soft_wrap=True)
        err_console.print(
            f"[bold red]imgapi: error[/]: {code}: {message} (replication service {self.target})",
            highlight=False,
        )
        return typer.Exit(1)

    def call(self, method: str, request: Any) -> Any:
        try:
            return getattr(self.stub, method)(request, timeout=30)
        except grpc.RpcError as e:
            err = from_rpc_error(e)
            raise self.fail(err.code, err.message) from None

    def job_id(self, ref: str) -> str:
        """The id of the job ``ref`` names: an id, else a (unique) job name."""
        jobs = self.call("ListJobs", replication_pb2.ListJobsRequest()).jobs
        for j in jobs:
            if j.id == ref:
                return str(j.id)
        named = [j.id for j in jobs if j.spec.name == ref]
        if len(named) == 1:
            return str(named[0])
        raise self.fail("ResourceNotFound", f"no replication job with id or name {ref!r}")


def _as_json(ctx: typer.Context, flag: bool) -> bool:
    return flag or root_json(ctx)


def _print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2) + "\n")


def _state(j: replication_pb2.Job) -> str:
    """``failing``: running, not caught up, and the last attempt failed (e.g. source unreachable)."""
    if j.state == "running" and j.last_error and not j.synced:
        return "failing"
    return str(j.state)


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


_COLUMNS = ("id", "name", "source", "state", "synced", "lag", "images", "bytes", "errors", "conflicts")


def _job_row(j: replication_pb2.Job) -> list[str]:
    s = j.spec
    source = s.source_url if s.source_kind == replication_pb2.JobSpec.SOURCE_REST else s.source_catalog
    return [
        j.id,
        s.name or "-",
        source,
        _state(j),
        "yes" if j.synced else "no",
        str(j.lag),
        str(j.images_copied),
        _size(j.bytes_copied),
        str(j.errors),
        str(len(j.conflicts)),
    ]


def _jobs_table(jobs: list[replication_pb2.Job], width: int | None = None) -> Table:
    """One line per job when the terminal is wide enough for whole cells (never cut, like
    imgadm's columns); otherwise one block per job, ``field  value``, values folding onto more lines.
    The last error is always shown in full below its job or in its column."""
    rows = [_job_row(j) for j in jobs]
    widths = [max([len(c), *(len(r[i]) for r in rows)]) for i, c in enumerate(_COLUMNS)]
    need = sum(widths) + 2 * (len(widths) - 1)
    if width is None or need <= width:
        t = Table(box=None, header_style="bold", pad_edge=False)
        for col in _COLUMNS:
            t.add_column(col.upper(), no_wrap=True)
        t.add_column("LAST ERROR", overflow="fold")
        for j, row in zip(jobs, rows, strict=True):
            cells = [f"[red]{c}[/red]" if c == "failing" else c for c in row]
            t.add_row(*cells, j.last_error[:300] or "-")
        return t
    grid = Table.grid(padding=(0, 2))
    grid.add_column(no_wrap=True, style="bold")
    grid.add_column(overflow="fold")
    for n, (j, row) in enumerate(zip(jobs, rows, strict=True)):
        if n:
            grid.add_row("", "")
        for col, value in zip(_COLUMNS, row, strict=True):
            grid.add_row(col, f"[red]{value}[/red]" if value == "failing" else value)
        grid.add_row("last error", j.last_error[:300] or "-")
    return grid


def _job_view(j: replication_pb2.Job, width: int | None = None) -> Table:
    t = Table.grid(padding=(0, 2))
    t.add_row(_jobs_table([j], width))
    files = Table("image", "status", "progress", "", "attempts", "last error")
    for p in j.active:
        frac = p.bytes_done / p.bytes_total if p.bytes_total else 0.0
        files.add_row(
            p.image_uuid,
            p.status,
            ProgressBar(total=1.0, completed=frac, width=30),
            f"{_size(p.bytes_done)}/{_size(p.bytes_total)}",
            str(p.attempts),
            p.last_error[:60],
        )
    if j.active:
        t.add_row(files)
    if j.conflicts:
        c = Table("conflict", "reason", "detail", "detected")
        for x in j.conflicts:
            c.add_row(x.image_uuid, x.reason, x.detail, x.detected_at)
        t.add_row(c)
    if j.last_error:
        t.add_row(f"[yellow]last error:[/yellow] {j.last_error[:200]}")
    return t


@replicate_app.command("create")
def create(
    ctx: typer.Context,
    target: Target = "127.0.0.1:8503",
    name: Annotated[str, typer.Option(help="job name")] = "",
    source_catalog: Annotated[str, typer.Option(help="gRPC source: catalog host:port")] = "",
    source_blob: Annotated[str, typer.Option(help="gRPC source: blob host:port")] = "",
    source_url: Annotated[str, typer.Option(help="REST source: IMGAPI base URL")] = "",
    owner: str = "",
    image_name: Annotated[str, typer.Option("--image-name", help="name filter (~substring)")] = "",
    image_type: Annotated[str, typer.Option("--type", help="type filter (!excluded)")] = "",
    os: Annotated[str, typer.Option("--os")] = "",
    channel: str = "",
    public: Annotated[str, typer.Option(help="true | false")] = "",
    tag: Annotated[list[str] | None, typer.Option(help="KEY=VALUE (repeatable)")] = None,
    deletes: Annotated[bool, typer.Option("--deletes", help="propagate deletes")] = False,
    concurrency: int = 4,
    bandwidth: Annotated[int, typer.Option(help="bytes/s, 0 = unlimited")] = 0,
    poll_seconds: Annotated[float, typer.Option(help="REST source: seconds between listings")] = 5.0,
    as_json: AsJson = False,
) -> None:
    """Create (and start) a replication job."""
    tags: dict[str, str] = {}
    for t in tag or []:
        key, _, value = t.partition("=")
        tags[key] = value
    spec = replication_pb2.JobSpec(
        name=name,
        source_kind=replication_pb2.JobSpec.SOURCE_REST
        if source_url
        else replication_pb2.JobSpec.SOURCE_GRPC,
        source_catalog=source_catalog,
        source_blob=source_blob,
        source_url=source_url,
        filters=replication_pb2.JobFilters(
            owner=owner, name=image_name, type=image_type, os=os, channel=channel, public=public, tags=tags
        ),
        propagate_deletes=deletes,
        concurrency=concurrency,
        bandwidth_limit=bandwidth,
        poll_seconds=poll_seconds,
    )
    job = Service(target).call("CreateJob", replication_pb2.CreateJobRequest(spec=spec))
    if _as_json(ctx, as_json):
        _print_json(job_json(job))
    else:
        _console().print(f"created job {job.id}" + (f" ({job.spec.name})" if job.spec.name else ""))


@replicate_app.command("list")
def list_jobs(ctx: typer.Context, target: Target = "127.0.0.1:8503", as_json: AsJson = False) -> None:
    """List replication jobs with their state, lag, bytes copied, errors, conflicts and last error."""
    jobs = list(Service(target).call("ListJobs", replication_pb2.ListJobsRequest()).jobs)
    if _as_json(ctx, as_json):
        _print_json([job_json(j) for j in jobs])
    else:
        out = _console()
        out.print(_jobs_table(jobs, out.width))


@replicate_app.command("status")
def status(
    ctx: typer.Context,
    job_ref: JobRef,
    target: Target = "127.0.0.1:8503",
    watch: Annotated[bool, typer.Option("--watch", "-w", help="refresh until interrupted")] = False,
    interval: float = 1.0,
    as_json: AsJson = False,
) -> None:
    """One job in detail: files being copied (progress bars), conflicts, last error."""
    service = Service(target)
    job_id = service.job_id(job_ref)
    job = service.call("GetJob", replication_pb2.GetJobRequest(id=job_id))
    if _as_json(ctx, as_json):
        _print_json(job_json(job))
        return
    if not watch:
        _console().print(_job_view(job, _console().width))
        return
    with Live(_job_view(job, _console().width), console=_console(), refresh_per_second=4) as live:
        try:
            while True:
                time.sleep(interval)
                live.update(
                    _job_view(
                        service.call("GetJob", replication_pb2.GetJobRequest(id=job_id)), _console().width
                    )
                )
        except KeyboardInterrupt:
            pass


def _pause(ctx: typer.Context, job_ref: str, target: str, resume: bool, as_json: bool) -> None:
    service = Service(target)
    request = replication_pb2.PauseJobRequest(id=service.job_id(job_ref), resume=resume)
    job = service.call("PauseJob", request)
    if _as_json(ctx, as_json):
        _print_json(job_json(job))
    else:
        _console().print(f"job {job.id}: {job.state}")


@replicate_app.command("pause")
def pause(
    ctx: typer.Context, job_ref: JobRef, target: Target = "127.0.0.1:8503", as_json: AsJson = False
) -> None:
    """Pause a job (its progress is kept)."""
    _pause(ctx, job_ref, target, False, as_json)


@replicate_app.command("resume")
def resume(
    ctx: typer.Context, job_ref: JobRef, target: Target = "127.0.0.1:8503", as_json: AsJson = False
) -> None:
    """Resume a paused job where it stopped."""
    _pause(ctx, job_ref, target, True, as_json)


@replicate_app.command("delete")
def delete(
    ctx: typer.Context, job_ref: JobRef, target: Target = "127.0.0.1:8503", as_json: AsJson = False
) -> None:
    """Stop a job and forget its state (replicated images stay)."""
    service = Service(target)
    job_id = service.job_id(job_ref)
    resp = service.call("DeleteJob", replication_pb2.DeleteJobRequest(id=job_id))
    if _as_json(ctx, as_json):
        _print_json({"id": job_id, "deleted": bool(resp.existed)})
    else:
        _console().print(f"job {job_id}: {'deleted' if resp.existed else 'not found'}")
