"""Running one replication job: its thread, bounded concurrency, retries with backoff, persisted state.

gRPC source: initial sync = replaying the source's change feed from cursor 0; then the same stream
follows live changes. Events are taken in batches; the images of a batch are copied concurrently
(their latest event each), deletes are applied in feed order, then the batch's last cursor is
persisted. A crash replays at most one batch, and every step is idempotent.

REST source: every ``poll_seconds`` the whole listing is paged through (uuid markers); images whose
object changed since the last pass (a fingerprint per image) are synced, vanished ones deleted when
the job propagates deletes.

Images whose copy fails keep status ``failed`` and are retried (with a fresh source record) every
``RETRY_SECONDS`` with exponential backoff per image; conflicts are recorded and not retried until
the source image changes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from prometheus_client import Counter, Gauge
from pydantic import SecretStr

from imgapi_common.ssrf import Allowlist
from replication.adapters.destination import Destination
from replication.adapters.grpc_source import GrpcSource
from replication.adapters.rest_source import RestSource
from replication.adapters.sources import Source, SourceEvent, SourceImage
from replication.adapters.store import Store
from replication.domain.copy_errors import Conflict
from replication.handlers.copy.copier import Copier
from replication.handlers.copy.rate_limiter import RateLimiter
from replication.handlers.copy.reports import Outcome
from replication.handlers.jobs.spec import JobSpec

log = logging.getLogger(__name__)

BATCH = 256
RETRY_SECONDS = 2.0
#: Attempts of one image within a batch before it is left ``failed`` for the retry loop.
ATTEMPTS_IN_BATCH = 3

BYTES = Counter("imgapi_replication_bytes_copied", "File bytes written to the local blob service", ["job"])
IMAGES = Counter("imgapi_replication_images_copied", "Images created locally", ["job"])
UPDATES = Counter("imgapi_replication_images_updated", "Images whose metadata was synced", ["job"])
DELETES = Counter("imgapi_replication_images_deleted", "Images deleted locally", ["job"])
ERRORS = Counter("imgapi_replication_errors", "Failed image copy attempts", ["job"])
CONFLICTS = Counter("imgapi_replication_conflicts", "Conflicts detected", ["job"])
LAG = Gauge("imgapi_replication_lag", "Source cursor minus applied cursor (REST: images pending)", ["job"])
CURSOR = Gauge("imgapi_replication_cursor", "Applied source cursor", ["job"])


class JobRunner:
    """Runs one job in a thread until :meth:`stop`."""

    def __init__(
        self,
        store: Store,
        job_id: str,
        dest_factory: Callable[[], Destination],
        source_token: SecretStr | str = "",
        *,
        retry_seconds: float = RETRY_SECONDS,
        source_allowlist: Allowlist | None = None,
    ) -> None:
        self.store = store
        self.job_id = job_id
        self.dest_factory = dest_factory
        self.source_token = source_token
        self.retry_seconds = retry_seconds
        self.source_allowlist = source_allowlist
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"replication-{job_id[:8]}", daemon=True)
        self.copier: Copier | None = None
        self._next_retry = 0.0

    def start(self) -> None:
        self._thread.start()

    def stop(self, wait: float = 10.0) -> None:
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(wait)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    # --- the loop ------------------------------------------------------------------------------

    def _run(self) -> None:
        job = self.store.get_job(self.job_id)
        if job is None:
            return
        spec = JobSpec.from_dict(job.spec)
        label = self.job_id
        failures = 0
        limiter = RateLimiter(spec.bandwidth_limit)
        progress_mark = (job.cursor, job.images_copied)
        while not self._stop.is_set():
            source: GrpcSource | RestSource | None = None
            dest: Destination | None = None
            pool: ThreadPoolExecutor | None = None
            try:
                source = spec.make_source(self.source_token, self.source_allowlist)
                dest = self.dest_factory()
                self.copier = Copier(
                    source,
                    dest,
                    store=self.store,
                    job_id=self.job_id,
                    limiter=limiter,
                    on_bytes=lambda n: BYTES.labels(label).inc(n),
                    stopped=self._stop.is_set,
                )
                pool = ThreadPoolExecutor(spec.concurrency, thread_name_prefix=f"copy-{self.job_id[:8]}")
                if isinstance(source, GrpcSource):
                    self._follow(spec, source, pool)
                else:
                    self._poll(spec, source, pool)
                failures = 0
            except Exception as e:
                now = self.store.get_job(self.job_id)
                if now is not None and (now.cursor, now.images_copied) != progress_mark:
                    failures = 0  # the link failed, but work got done since the last failure
                    progress_mark = (now.cursor, now.images_copied)
                failures += 1
                log.warning("job %s: %s (retry %d)", self.job_id, e, failures)
                self.store.update_job(self.job_id, last_error=str(e)[:2000])
                self._stop.wait(min(10.0, 0.2 * 2 ** min(failures, 6)))
            finally:
                if pool is not None:
                    pool.shutdown(wait=True, cancel_futures=True)
                if source is not None:
                    source.close()
                if dest is not None:
                    dest.close()

    # --- one image -----------------------------------------------------------------------------

    def _sync_one(self, copier: Copier, img: SourceImage) -> Outcome | None:
        """Sync with a few quick retries; a persistent failure leaves the image ``failed``."""
        label = self.job_id
        p = self.store.get_progress(self.job_id, img.uuid)
        attempts = p.attempts if p is not None else 0
        for i in range(ATTEMPTS_IN_BATCH):
            if self._stop.is_set():
                return None
            try:
                out = copier.sync(img)
            except Conflict as c:
                CONFLICTS.labels(label).inc()
                self.store.record_conflict(self.job_id, img.uuid, c.reason, c.detail)
                self.store.set_progress(
                    self.job_id, img.uuid, status="conflict", fingerprint=img.fingerprint(), last_error=str(c)
                )
                return None
            except Exception as e:  # CopyError, SourceError, unexpected: retried
                attempts += 1
                ERRORS.labels(label).inc()
                transient = getattr(e, "transient", True)
                log.info("job %s: image %s: %s", self.job_id, img.uuid, e)
                self.store.set_progress(
                    self.job_id, img.uuid, status="failed", attempts=attempts, last_error=str(e)[:2000]
                )
                if not transient or i == ATTEMPTS_IN_BATCH - 1:
                    return None
                self._stop.wait(min(5.0, 0.2 * 2**i))
                continue
            if img.activated:
                self.store.set_progress(
                    self.job_id,
                    img.uuid,
                    status="done",
                    attempts=0,
                    last_error="",
                    upload_id="",
                    fingerprint=img.fingerprint(),
                )
            self.store.clear_conflict(self.job_id, img.uuid)
            if out.images_created:
                IMAGES.labels(label).inc(out.images_created)
            if out.updated:
                UPDATES.labels(label).inc()
            if out.images_created or out.file_bytes:
                # bytes_copied counts the files completed, whole: a copy resumed after a crash
                # counts its bytes once, not just those sent after the restart.
                self.store.add_counters(
                    self.job_id, bytes_copied=out.file_bytes, images_copied=out.images_created
                )
            return out
        return None

    def _sync_all(self, pool: ThreadPoolExecutor, images: Iterable[SourceImage]) -> None:
        copier = self.copier
        assert copier is not None
        futures = [pool.submit(self._sync_one, copier, img) for img in images]
        for f in futures:
            f.result()

    def _delete(self, uuid: str) -> None:
        copier = self.copier
        assert copier is not None
        for i in range(ATTEMPTS_IN_BATCH):
            try:
                if copier.delete(uuid):
                    DELETES.labels(self.job_id).inc()
                self.store.forget_progress(self.job_id, uuid)
                self.store.clear_conflict(self.job_id, uuid)
                return
            except Exception as e:
                ERRORS.labels(self.job_id).inc()
                self.store.update_job(self.job_id, last_error=f"delete {uuid}: {e}"[:2000])
                self._stop.wait(0.2 * 2**i)

    def _retry_failed(self, source: Source, pool: ThreadPoolExecutor) -> None:
        now = time.monotonic()
        if now < self._next_retry:
            return
        self._next_retry = now + self.retry_seconds
        failed = self.store.images_with_status(self.job_id, "failed")
        images: list[SourceImage] = []
        for uuid in failed:
            img = source.get(uuid)
            if img is None:
                self.store.forget_progress(self.job_id, uuid)
            else:
                images.append(img)
        if images:
            self._sync_all(pool, images)

    # --- gRPC source: follow the change feed ----------------------------------------------------

    def _wanted(self, spec: JobSpec, img: SourceImage, known: str | None) -> bool:
        return known in ("done", "failed", "copying") or spec.filters.matches(img.manifest)

    def _follow(self, spec: JobSpec, source: GrpcSource, pool: ThreadPoolExecutor) -> None:
        job = self.store.get_job(self.job_id)
        assert job is not None
        cursor, head = job.cursor, job.source_head
        stream = source.watch(cursor)
        try:
            while not self._stop.is_set():
                first = stream.get(timeout=0.2)
                if first is None:
                    self._retry_failed(source, pool)
                    continue
                batch: list[SourceEvent] = [first]
                while len(batch) < BATCH:
                    nxt = stream.get_nowait()
                    if nxt is None:
                        break
                    batch.append(nxt)
                self._apply(spec, batch, pool)
                cursor = batch[-1].cursor
                head = max(head, max(e.head for e in batch))
                synced = cursor >= head
                values: dict[str, Any] = {"cursor": cursor, "source_head": head, "last_error": ""}
                if synced and not job.synced:
                    values["synced"] = 1
                    job.synced = True
                self.store.update_job(self.job_id, **values)
                CURSOR.labels(self.job_id).set(cursor)
                LAG.labels(self.job_id).set(max(0, head - cursor))
        finally:
            stream.close()

    def _apply(self, spec: JobSpec, batch: list[SourceEvent], pool: ThreadPoolExecutor) -> None:
        latest: dict[str, SourceEvent] = {}
        for ev in batch:
            latest[ev.uuid] = ev
        known = self.store.fingerprints(self.job_id)
        images = [
            ev.image
            for ev in latest.values()
            if ev.image is not None
            and ev.image.activated
            and self._wanted(spec, ev.image, known.get(ev.uuid, ("", ""))[0])
        ]
        # a uuid deleted then re-created within the batch: the delete must not win
        deleted = [ev.uuid for ev in batch if ev.kind == "delete" and latest[ev.uuid].kind == "delete"]
        if images:
            self._sync_all(pool, images)
        if spec.propagate_deletes:
            for uuid in deleted:
                self._delete(uuid)
        else:
            for uuid in deleted:
                if known.get(uuid, ("", ""))[0] != "done":
                    self.store.forget_progress(self.job_id, uuid)

    # --- REST source: poll the listing ----------------------------------------------------------

    def _poll(self, spec: JobSpec, source: RestSource, pool: ThreadPoolExecutor) -> None:
        while not self._stop.is_set():
            known = self.store.fingerprints(self.job_id)
            seen: set[str] = set()
            todo: list[SourceImage] = []
            for img in source.list_all():
                seen.add(img.uuid)
                if not img.activated:
                    continue
                status, fp = known.get(img.uuid, ("", ""))
                if status in ("done", "conflict") and fp == img.fingerprint():
                    continue
                if status == "" and not spec.filters.matches(img.manifest):
                    continue
                todo.append(img)
            gone = [u for u, (status, _) in known.items() if u not in seen]
            self.store.update_job(self.job_id, pending=len(todo))
            LAG.labels(self.job_id).set(len(todo))
            todo.sort(key=lambda i: str(i.manifest.get("published_at") or ""))
            for i in range(0, len(todo), BATCH):
                if self._stop.is_set():
                    return
                self._sync_all(pool, todo[i : i + BATCH])
            for uuid in gone:
                if spec.propagate_deletes:
                    self._delete(uuid)
                else:
                    self.store.forget_progress(self.job_id, uuid)
            self.store.update_job(self.job_id, pending=0, synced=1, last_error="")
            LAG.labels(self.job_id).set(0)
            self._stop.wait(spec.poll_seconds)
