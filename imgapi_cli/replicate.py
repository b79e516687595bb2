"""``imgapi replicate ...``: replication jobs of a replication service (gRPC, replication.proto).

Register with ``app.add_typer(replicate_app, name="replicate")``. The service address comes from
``--target`` or ``IMGAPI_REPLICATION_TARGET`` (default 127.0.0.1:8503).
"""

from __future__ import annotations

import json
import os
import time
from typing import Annotated, Any

import grpc
import typer
from google.protobuf.json_format import MessageToDict
from imgapi.v1 import replication_pb2, replication_pb2_grpc
from rich.console import Console
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table

from imgapi_common import internal_auth
from imgapi_common.errors import from_rpc_error

replicate_app = typer.Typer(
    help="Replication jobs: pull images from another datacenter.", no_args_is_help=True
)
console = Console()

Target = Annotated[
    str, typer.Option("--target", envvar="IMGAPI_REPLICATION_TARGET", help="replication service host:port")
]
AsJson = Annotated[bool, typer.Option("--json", help="print JSON")]


def _stub(target: str) -> replication_pb2_grpc.ReplicationServiceStub:
    # The service answers only calls carrying the stack's internal token (docs/security.md).
    token = os.environ.get(internal_auth.TOKEN_SETTING, "")
    return replication_pb2_grpc.ReplicationServiceStub(internal_auth.channel(target, token))


def _call(fn: Any, request: Any) -> Any:
    try:
        return fn(request, timeout=30)
    except grpc.RpcError as e:
        err = from_rpc_error(e)
        console.print(f"[red]{err.code}[/red]: {err.message}")
        raise typer.Exit(1) from None


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def _jobs_table(jobs: list[replication_pb2.Job]) -> Table:
    t = Table("id", "name", "source", "state", "synced", "lag", "images", "bytes", "errors", "conflicts")
    for j in jobs:
        s = j.spec
        source = s.source_url if s.source_kind == replication_pb2.JobSpec.SOURCE_REST else s.source_catalog
        t.add_row(
            j.id,
            s.name,
            source,
            j.state,
            "yes" if j.synced else "no",
            str(j.lag),
            str(j.images_copied),
            _size(j.bytes_copied),
            str(j.errors),
            str(len(j.conflicts)),
        )
    return t


def _job_view(j: replication_pb2.Job) -> Table:
    t = Table.grid(padding=(0, 2))
    t.add_row(_jobs_table([j]))
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
    job = _call(_stub(target).CreateJob, replication_pb2.CreateJobRequest(spec=spec))
    if as_json:
        print(json.dumps(MessageToDict(job), indent=2))
    else:
        console.print(f"created job {job.id}")


@replicate_app.command("list")
def list_jobs(target: Target = "127.0.0.1:8503", as_json: AsJson = False) -> None:
    """List replication jobs with their state, lag, bytes copied, errors and conflicts."""
    jobs = list(_call(_stub(target).ListJobs, replication_pb2.ListJobsRequest()).jobs)
    if as_json:
        print(json.dumps([MessageToDict(j) for j in jobs], indent=2))
    else:
        console.print(_jobs_table(jobs))


@replicate_app.command("status")
def status(
    job_id: str,
    target: Target = "127.0.0.1:8503",
    watch: Annotated[bool, typer.Option("--watch", "-w", help="refresh until interrupted")] = False,
    interval: float = 1.0,
    as_json: AsJson = False,
) -> None:
    """One job in detail: files being copied (progress bars), conflicts, last error."""
    stub = _stub(target)
    job = _call(stub.GetJob, replication_pb2.GetJobRequest(id=job_id))
    if as_json:
        print(json.dumps(MessageToDict(job), indent=2))
        return
    if not watch:
        console.print(_job_view(job))
        return
    with Live(_job_view(job), console=console, refresh_per_second=4) as live:
        try:
            while True:
                time.sleep(interval)
                live.update(_job_view(_call(stub.GetJob, replication_pb2.GetJobRequest(id=job_id))))
        except KeyboardInterrupt:
            pass


@replicate_app.command("pause")
def pause(job_id: str, target: Target = "127.0.0.1:8503") -> None:
    """Pause a job (its progress is kept)."""
    job = _call(_stub(target).PauseJob, replication_pb2.PauseJobRequest(id=job_id))
    console.print(f"job {job.id}: {job.state}")


@replicate_app.command("resume")
def resume(job_id: str, target: Target = "127.0.0.1:8503") -> None:
    """Resume a paused job where it stopped."""
    job = _call(_stub(target).PauseJob, replication_pb2.PauseJobRequest(id=job_id, resume=True))
    console.print(f"job {job.id}: {job.state}")


@replicate_app.command("delete")
def delete(job_id: str, target: Target = "127.0.0.1:8503") -> None:
    """Stop a job and forget its state (replicated images stay)."""
    resp = _call(_stub(target).DeleteJob, replication_pb2.DeleteJobRequest(id=job_id))
    console.print(f"job {job_id}: {'deleted' if resp.existed else 'not found'}")
