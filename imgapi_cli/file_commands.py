"""The ``imgapi`` commands that move image files: upload, download, import (a local manifest and
file), export, and import-remote (a copy from another IMGAPI, run as a server-side job).
Registered on the root command by :mod:`imgapi_cli.main`."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from imgapi_cli import docker, output
from imgapi_cli.client import Client, CliError
from imgapi_cli.downloads import download
from imgapi_cli.habits import read_manifest, usage
from imgapi_cli.options import JsonOpt, ProgressOpt, RateOpt, UuidArg, handled
from imgapi_cli.streams import STDIO, download_to_stream, stdin_file, upload_from_stream
from imgapi_cli.transfer import parse_rate
from imgapi_cli.uploads import DEFAULT_CHUNK_SIZE, UploadResult, upload


def upload_cmd(
    ctx: typer.Context,
    uuid: UuidArg,
    file: Annotated[
        Path,
        typer.Argument(help="The image file ('-' = stdin: resumable only when a file).", show_default=False),
    ],
    compression: Annotated[
        str | None, typer.Option(help="gzip, bzip2, xz or none (default: from the file extension).")
    ] = None,
    sha1: Annotated[str | None, typer.Option(help="Known SHA-1 (else computed).")] = None,
    dataset_guid: Annotated[str | None, typer.Option(help="ZFS dataset GUID.")] = None,
    storage: Annotated[str | None, typer.Option(help="Storage preference (operators).")] = None,
    method: Annotated[
        str, typer.Option(help="auto (tus when offered), tus (resumable) or put (one request).")
    ] = "auto",
    chunk_size: Annotated[int, typer.Option(help="tus PATCH size in bytes.")] = DEFAULT_CHUNK_SIZE,
    state_dir: Annotated[
        Path | None, typer.Option(help="Resume state directory (default ~/.cache/imgapi).")
    ] = None,
    limit_rate: RateOpt = None,
    progress: ProgressOpt = True,
    json_out: JsonOpt = False,
) -> None:
    """Upload an image file (resumable with tus: rerun an interrupted upload to continue it)."""
    with handled(ctx) as g:
        uuid = g.image(uuid)
        if method not in ("auto", "tus", "put"):
            raise usage("--method must be auto, tus or put")
        if chunk_size <= 0:
            raise usage("--chunk-size must be positive")
        as_json = g.json or json_out
        result = upload_file(
            g.client(),
            uuid,
            file,
            compression=compression,
            sha1=sha1,
            dataset_guid=dataset_guid,
            storage=storage,
            method=method,
            chunk_size=chunk_size,
            state_dir=state_dir,
            reporter=output.RichReporter(progress and not as_json),
            limit_rate=parse_rate(limit_rate) if limit_rate else None,
        )
        if as_json:
            output.print_json({**result.summary(), "image": result.image})
        else:
            how = "tus" if result.method == "tus" else "PUT"
            resumed = f", resumed at byte {result.resumed_from}" if result.resumed_from else ""
            output.note(
                f"uploaded {file} to {uuid} ({result.size} bytes, sha1 {result.sha1}, "
                f"compression {result.compression}, via {how}{resumed})"
            )


def download_cmd(
    ctx: typer.Context,
    uuid: UuidArg,
    out: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Destination (default <uuid>-file[.ext]; '-' = stdout)."),
    ] = None,
    resume: Annotated[bool, typer.Option("--resume/--no-resume", help="Continue a partial download.")] = True,
    limit_rate: RateOpt = None,
    progress: ProgressOpt = True,
    json_out: JsonOpt = False,
) -> None:
    """Download an image file; resumes with Range and verifies Content-MD5 and the manifest sha1."""
    with handled(ctx) as g:
        uuid = g.image(uuid)
        as_json = g.json or json_out
        reporter = output.RichReporter(progress and not as_json)
        rate = parse_rate(limit_rate) if limit_rate else None
        if out is not None and str(out) == STDIO:  # the bytes to stdout, messages to stderr
            result = download_to_stream(
                g.client(), uuid, sys.stdout.buffer, reporter=reporter, limit_rate=rate
            )
        else:
            result = download(g.client(), uuid, out, resume=resume, reporter=reporter, limit_rate=rate)
        if as_json and str(result.path) == STDIO:  # stdout carries the file: the summary goes to stderr
            sys.stderr.write(json.dumps(result.summary(), indent=2) + "\n")
        elif as_json:
            output.print_json(result.summary())
        elif str(result.path) == STDIO:
            output.note(
                f"wrote {result.size} bytes to stdout (sha1 {result.sha1}, MD5 {result.md5} verified)"
            )
        else:
            resumed = f", resumed at byte {result.resumed_from}" if result.resumed_from else ""
            output.note(
                f"saved {result.path} ({result.size} bytes, sha1 {result.sha1}, MD5 {result.md5} verified"
                f"{resumed})"
            )


def upload_file(client: Client, uuid: str, file: Path, **kw: Any) -> UploadResult:
    """``upload``: a file (resumable), or stdin: reopened as a file when it is one, else streamed."""
    if str(file) != STDIO:
        return upload(client, uuid, file, **kw)
    reopened = stdin_file()
    if reopened is not None:
        return upload(client, uuid, reopened, **kw)
    if not kw.get("compression"):
        raise usage("reading a pipe: give --compression (gzip, bzip2, xz or none)")
    if kw.get("method") == "tus":
        raise usage("a pipe cannot be uploaded with tus (it cannot be resumed); use a file")
    return upload_from_stream(
        client,
        uuid,
        sys.stdin.buffer,
        compression=str(kw["compression"]),
        sha1=kw.get("sha1"),
        dataset_guid=kw.get("dataset_guid"),
        storage=kw.get("storage"),
        reporter=kw.get("reporter"),
        limit_rate=kw.get("limit_rate"),
    )


def import_remote_cmd(
    ctx: typer.Context,
    uuid: Annotated[str, typer.Argument(help="UUID of the image on the source.", show_default=False)],
    source: Annotated[str, typer.Option("--source", "-s", help="Base URL of the source IMGAPI.")],
    skip_owner_check: Annotated[bool, typer.Option("--skip-owner-check", help="Operators only.")] = False,
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="Poll the job until it ends.")] = True,
    interval: Annotated[float, typer.Option(help="Seconds between job polls.")] = 2.0,
    wait_timeout: Annotated[float, typer.Option(help="Give up waiting after this many seconds.")] = 3600.0,
) -> None:
    """Import an image (and its missing origins) from another IMGAPI (AdminImportRemoteImage)."""
    with handled(ctx) as g:
        client = g.client()
        started, wfapi = client.import_remote(uuid, source, skip_owner_check=skip_owner_check or None)
        job_uuid = str(started["job_uuid"])
        if not wait:
            output.print_json({**started, "workflow_api": wfapi})
            return
        deadline = time.monotonic() + wait_timeout
        failures = 0
        console = output.stderr()
        with console.status(f"import job {job_uuid}: queued", spinner="dots") as status:
            while True:
                try:
                    job = client.get_job(wfapi, job_uuid)
                    failures = 0
                except CliError:
                    failures += 1  # like the node client: a few failed polls are tolerated
                    if failures >= 5:
                        raise
                    job = {}
                execution = job.get("execution", "?")
                status.update(f"import job {job_uuid}: {execution}")
                if execution in ("succeeded", "failed", "canceled"):
                    break
                if time.monotonic() > deadline:
                    raise CliError("Timeout", f"job {job_uuid} still {execution} after {wait_timeout}s")
                time.sleep(interval)
        results = job.get("chain_results") or [{}]
        err = results[-1].get("error") if isinstance(results[-1], dict) else None
        if execution != "succeeded" or err:
            message = err.get("message", json.dumps(err)) if isinstance(err, dict) else str(err or execution)
            raise CliError("JobFailed", f"import job {job_uuid} {execution}: {message}")
        image_uuid = str(started.get("image_uuid") or uuid)
        output.print_image(client.get_image(image_uuid), g.json)


def import_cmd(
    ctx: typer.Context,
    manifest: Annotated[str, typer.Argument(help="Manifest JSON file (an .imgmanifest; '-' = stdin).")],
    file: Annotated[
        Path | None, typer.Argument(help="The image file (uploaded, then the image is activated).")
    ] = None,
    compression: Annotated[
        str | None, typer.Option(help="Compression of FILE (default: the manifest's, else the extension).")
    ] = None,
    activate: Annotated[
        bool, typer.Option("--activate/--no-activate", help="Activate after the upload.")
    ] = True,
    progress: ProgressOpt = True,
) -> None:
    """Import an image from a local manifest (+ file), keeping its uuid (AdminImportImage; operators)."""
    with handled(ctx) as g:
        loaded = read_manifest(manifest)
        if not isinstance(loaded, dict) or not isinstance(loaded.get("uuid"), str):
            raise usage(f"{manifest}: the manifest must be a JSON object with a uuid")
        uuid = loaded["uuid"]
        listed = loaded.get("files") or [{}]
        comp = compression or (listed[0].get("compression") if isinstance(listed[0], dict) else None)
        client = g.client()
        image = client.action(uuid, "import", loaded)
        if file is not None:
            reporter = output.RichReporter(progress and not g.json)
            image = upload_file(client, uuid, file, compression=comp, reporter=reporter).image
            if activate:
                image = client.activate(uuid)
        output.print_image(image, g.json)


def export_cmd(
    ctx: typer.Context,
    uuid: UuidArg,
    directory: Annotated[Path, typer.Argument(help="Where to write (default: here).")] = Path("."),
    progress: ProgressOpt = True,
) -> None:
    """Write NAME-VERSION.imgmanifest and the image file (NAME-VERSION.zfs[.gz|.bz2|.xz]) to DIRECTORY,
    as imgadm does; ``imgapi import`` takes them back. The download resumes and is verified."""
    with handled(ctx) as g:
        uuid = g.image(uuid)
        client = g.client()
        image = client.get_image(uuid)
        directory.mkdir(parents=True, exist_ok=True)
        stem = f"{image.get('name')}-{image.get('version')}".replace("/", "_")
        manifest_path = directory / f"{stem}.imgmanifest"
        manifest_path.write_text(json.dumps(image, indent=2) + "\n")
        files = image.get("files") or []
        written: dict[str, Any] = {"manifest": str(manifest_path)}
        if files:
            ext = {"gzip": ".gz", "bzip2": ".bz2", "xz": ".xz"}.get(str(files[0].get("compression")), "")
            reporter = output.RichReporter(progress and not g.json)
            result = download(client, uuid, directory / f"{stem}.zfs{ext}", reporter=reporter)
            written.update(file=str(result.path), size=result.size, sha1=result.sha1)
        if g.json:
            output.print_json(written)
        else:
            output.note(f"exported {uuid} to {manifest_path}" + (f" and {written['file']}" if files else ""))


def import_docker_cmd(
    ctx: typer.Context,
    reference: Annotated[str, typer.Argument(help="REPO[:TAG|@DIGEST], e.g. quay.io/coreos/etcd:v3.5.0.")],
    public: Annotated[
        bool | None, typer.Option("--public/--private", help="public value of new layer images.")
    ] = None,
    username: Annotated[
        str | None, typer.Option(help="Registry user; the password is read from IMGAPI_REGISTRY_PASSWORD.")
    ] = None,
    progress: ProgressOpt = True,
) -> None:
    """Pull a Docker image from its registry into layer images (AdminImportDockerImage; operators)."""
    with handled(ctx) as g:
        client = g.client()
        auth = (
            docker.registry_auth(username, os.environ.get("IMGAPI_REGISTRY_PASSWORD", ""))
            if username
            else None
        )
        created = docker.import_docker(
            client, reference, public=public, auth=auth, progress=progress and not g.json
        )
        output.print_image(client.get_image(str(created["image_uuid"])), g.json)
