"""Remote imports inside the replication service: an asyncio event loop in a thread of its own,
the asynchronous stubs of this datacenter's catalog and blob services, and the job registry.

The gRPC servicer (synchronous, thread pool) hands each import RPC to the loop and waits for its
answer; the jobs then run on the loop (their copier in worker threads).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from imgapi.v1 import catalog_pb2_grpc, replication_pb2

from blob_client import AsyncBlobClient
from imgapi_common.errors import not_found
from imgapi_common.internal_auth import aio_channel
from replication.adapters.import_records import ImportRecords
from replication.adapters.leases import LeaseKeeper
from replication.adapters.store import KEEP_SECONDS, Store
from replication.handlers.imports.file_fetch import add_file_from_source, add_file_from_url
from replication.handlers.imports.registry import Job, JobRegistry
from replication.handlers.imports.remote import (
    Datacenters,
    RemoteAnswer,
    import_from_datacenter,
    import_manifest,
    import_remote,
)
from replication.handlers.imports.work import Scope, Services
from replication.settings import ReplicationSettings

log = logging.getLogger(__name__)
T = TypeVar("T")

_OPTIONS = [
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
]


def _step_message(entry: dict[str, Any]) -> replication_pb2.StepResult:
    m = replication_pb2.StepResult(
        name=entry["name"],
        result=entry["result"],
        started_at=entry["started_at"],
        finished_at=entry["finished_at"],
    )
    err = entry.get("error")
    if isinstance(err, dict):
        m.error.name = str(err.get("name", ""))
        m.error.message = str(err.get("message", ""))
        if "code" in err:
            m.error.code = str(err["code"])
    return m


def job_message(doc: dict[str, Any]) -> replication_pb2.ImportJob:
    """A job document (:meth:`replication.handlers.imports.registry.Job.as_json`) as its gRPC message."""
    p = doc["params"]
    return replication_pb2.ImportJob(
        uuid=doc["uuid"],
        name=doc["name"],
        task=doc["task"],
        execution=doc["execution"],
        params=replication_pb2.ImportJobParams(
            task=p.get("task", ""),
            image_uuid=p.get("image_uuid", ""),
            source=p.get("source", ""),
            origins=p.get("origins", []),
            skip_owner_check=bool(p.get("skip_owner_check")),
            target=p.get("target", ""),
        ),
        chain_results=[_step_message(e) for e in doc["chain_results"]],
        onerror_results=[_step_message(e) for e in doc["onerror_results"]],
        created_at=doc["created_at"],
    )


class ImportRunner:
    def __init__(self, settings: ReplicationSettings, store: Store) -> None:
        self.settings = settings
        records = ImportRecords(store, KEEP_SECONDS, settings.lease_seconds)
        self.jobs = JobRegistry(records)
        self.datacenters = Datacenters(settings.datacenter_name, dict(settings.imgapi_url_from_datacenter))
        self._close_unfinished()
        # Renews the leases of this process's running jobs; closes those of processes that go away.
        self._keeper = LeaseKeeper(
            records.lease.seconds, [records.lease.renew, self._close_unfinished], "import-job-leases"
        )
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="imports", daemon=True)
        self._thread.start()
        self.services = self.call(self._connect())

    def _close_unfinished(self) -> None:
        closed = self.jobs.close_unfinished()
        if closed:
            log.warning("%d import job(s) of a replication process that is gone closed as canceled", closed)

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the loop and wait for it (from a gRPC worker thread)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    async def _connect(self) -> Services:
        s = self.settings
        self._channels = [
            aio_channel(s.catalog_target, s.internal_token, _OPTIONS),
            aio_channel(s.blob_target, s.internal_token, _OPTIONS),
        ]
        return Services(
            catalog=catalog_pb2_grpc.CatalogServiceStub(self._channels[0]),  # type: ignore[arg-type]
            # No per-chunk CRC-32: a fetched body brings none to carry over, and the blob service
            # verifies the digests at commit. A file fetch is bounded by the remote's own timeout.
            blobs=AsyncBlobClient(
                self._channels[1],
                timeout=s.rpc_timeout_seconds,
                transfer_timeout=s.remote_timeout_seconds,
                checksum=False,
            ),
            timeout=s.rpc_timeout_seconds,
            catalog_target=s.catalog_target,
            blob_target=s.blob_target,
            token=s.internal_token,
            remote=s.remote(),
        )

    # --- the RPCs ----------------------------------------------------------------------------------

    def import_image(self, req: replication_pb2.ImportImageRequest) -> replication_pb2.ImportImageResponse:
        scope = Scope(self.services, req.caller)

        async def start() -> Job | RemoteAnswer:
            if req.source:
                return await import_remote(self.jobs, scope, req.uuid, req.source, req.skip_owner_check)
            return await import_from_datacenter(
                self.jobs, scope, self.datacenters, req.uuid, req.datacenter, req.account
            )

        out = self.call(start())
        if isinstance(out, RemoteAnswer):
            return replication_pb2.ImportImageResponse(
                remote_answer=replication_pb2.RemoteAnswer(status=out.status, body_json=json.dumps(out.body))
            )
        return replication_pb2.ImportImageResponse(job=job_message(out.as_json()))

    def import_manifest(
        self, req: replication_pb2.ImportManifestRequest
    ) -> replication_pb2.ImportManifestResponse:
        scope = Scope(self.services, req.caller)
        image = self.call(import_manifest(scope, req.view, req.uuid, req.source, req.skip_owner_check))
        return replication_pb2.ImportManifestResponse(image=image)

    def fetch_image_file(
        self, req: replication_pb2.FetchImageFileRequest
    ) -> replication_pb2.FetchImageFileResponse:
        scope = Scope(self.services, req.caller, req.view)
        if req.WhichOneof("from") == "url":
            res = self.call(add_file_from_url(scope, req.uuid, req.url, req.storage))
        else:
            res = self.call(add_file_from_source(scope, req.uuid, req.source, req.storage))
        return replication_pb2.FetchImageFileResponse(image=res.image)

    def get_job(self, uuid: str) -> replication_pb2.ImportJob:
        doc = self.jobs.get(uuid)
        if doc is None:
            raise not_found(f"job {uuid} not found")
        return job_message(doc)

    def list_jobs(self, req: replication_pb2.ListImportJobsRequest) -> replication_pb2.ListImportJobsResponse:
        task = req.task if req.HasField("task") else None
        execution = req.execution if req.HasField("execution") else None
        docs = self.jobs.list_for_image(req.image_uuid, task, execution)
        return replication_pb2.ListImportJobsResponse(jobs=[job_message(d) for d in docs])

    def close(self) -> None:
        """Cancel the running jobs (saved as canceled), close the channels, stop the loop."""
        self._keeper.stop()

        async def shutdown() -> None:
            await self.jobs.aclose()
            # The copier threads of cancelled jobs end at their next check of the stop flag.
            await self.loop.shutdown_default_executor()
            for ch in self._channels:
                await ch.close(None)

        self.call(shutdown())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()
