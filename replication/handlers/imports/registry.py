"""Import jobs in the shape of Workflow API jobs: the runner, over :mod:`replication.adapters.import_records`.

AdminImportRemoteImage and ImportFromDatacenter answer at once with the job; the work runs here as
an asyncio task made of named steps (and rollback steps when one fails). Job documents keep WFAPI's
shape and the invariants the node client's ``...AndWait`` helpers rely on: a finished job always
has a non-empty ``chain_results``; its last entry has ``error: ""`` on success and an object with a
``message`` on failure. Every transition is saved, and finished jobs are kept for
:data:`~replication.adapters.store.KEEP_SECONDS`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid as uuidlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from imgapi_common.errors import ImgapiError
from replication.adapters.import_records import ImportRecords

log = logging.getLogger(__name__)

#: WFAPI workflow version suffix of job names (``import-remote-image-7.0.7``).
WORKFLOW_VERSION = "7.0.7"
# A job's ``execution``: queued -> running -> succeeded | failed | canceled.


def iso_now() -> str:
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


#: One step: its WFAPI task name and the work, which returns the ``result`` text.
StepWork = Callable[[], Awaitable[str]]


@dataclass(frozen=True)
class Step:
    name: str
    work: StepWork


def error_object(exc: BaseException) -> dict[str, Any]:
    """A failed step's ``error``: an object with ``message`` (what the node client shows)."""
    if isinstance(exc, ImgapiError):
        return {"name": exc.code, "code": exc.code, "message": exc.message}
    return {"name": type(exc).__name__, "message": str(exc) or type(exc).__name__}


@dataclass
class Job:
    uuid: str
    task: str
    params: dict[str, Any]
    execution: str = "queued"
    chain_results: list[dict[str, Any]] = field(default_factory=list)
    onerror_results: list[dict[str, Any]] = field(default_factory=list)
    created_at: str = field(default_factory=iso_now)
    done: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def name(self) -> str:
        return f"{self.task}-{WORKFLOW_VERSION}"

    @property
    def image_uuid(self) -> str | None:
        v = self.params.get("image_uuid")
        return v if isinstance(v, str) else None

    def as_json(self) -> dict[str, Any]:
        return {
            "uuid": self.uuid,
            "name": self.name,
            "task": self.task,
            "execution": self.execution,
            "params": self.params,
            "chain_results": list(self.chain_results),
            "onerror_results": list(self.onerror_results),
            "created_at": self.created_at,
        }


async def _run_step(step: Step, results: list[dict[str, Any]]) -> BaseException | None:
    started = iso_now()
    try:
        result = await step.work()
    except asyncio.CancelledError:
        raise
    except Exception as e:
        if not isinstance(e, ImgapiError):
            log.exception("job step %s failed", step.name)
        results.append(
            {
                "name": step.name,
                "result": "",
                "error": error_object(e),
                "started_at": started,
                "finished_at": iso_now(),
            }
        )
        return e
    results.append(
        {"name": step.name, "result": result, "error": "", "started_at": started, "finished_at": iso_now()}
    )
    return None


def _entry(name: str, result: str, error: Any) -> dict[str, Any]:
    now = iso_now()
    return {"name": name, "result": result, "error": error, "started_at": now, "finished_at": now}


def closed_as_canceled(doc: dict[str, Any], why: str) -> dict[str, Any]:
    """A job document ended as ``canceled`` because its work stopped (``why``)."""
    out = {**doc, "execution": "canceled"}
    out["chain_results"] = [
        *doc.get("chain_results", []),
        _entry("cancel", "", {"name": "Canceled", "message": f"job canceled ({why})"}),
    ]
    return out


class JobRegistry:
    """Runs jobs on the running event loop and saves them. At most one active job per (task, image)."""

    def __init__(self, records: ImportRecords) -> None:
        self.records = records
        self._active: dict[str, Job] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def close_unfinished(self) -> int:
        """Jobs a gone process left running (their lease ran out) are closed as canceled; returns
        how many this process closed (another one may close some first)."""
        closed = 0
        for doc in self.records.unfinished():
            closed += self.records.close(closed_as_canceled(doc, "the replication service restarted"))
        return closed

    def get(self, job_uuid: str) -> dict[str, Any] | None:
        return self.records.get(job_uuid)

    def list_for_image(
        self, image_uuid: str, task: str | None = None, execution: str | None = None
    ) -> list[dict[str, Any]]:
        return self.records.for_image(image_uuid, task, execution)

    def _active_for(self, task: str, image_uuid: str) -> Job | None:
        for job in self._active.values():
            if job.task == task and job.image_uuid == image_uuid:
                return job
        return None

    def submit(
        self, task: str, params: dict[str, Any], steps: Sequence[Step], onerror: Sequence[Step] = ()
    ) -> Job:
        """Queue a job (returns the already active one for the same task and image, if any)."""
        image_uuid = params.get("image_uuid")
        if isinstance(image_uuid, str):
            existing = self._active_for(task, image_uuid)
            if existing is not None:
                return existing
        job = Job(uuid=str(uuidlib.uuid4()), task=task, params={"task": task, **params})
        self._active[job.uuid] = job
        self._save(job)
        t = asyncio.create_task(self._run(job, list(steps), list(onerror)), name=f"job-{job.uuid}")
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)
        return job

    def _save(self, job: Job, finished: bool = False) -> None:
        try:
            self.records.save(job.as_json(), finished)
        except Exception:  # the job goes on; its record catches up at the next transition
            log.exception("could not save import job %s", job.uuid)

    async def _step(self, job: Job, step: Step, results: list[dict[str, Any]]) -> BaseException | None:
        failure = await _run_step(step, results)
        self._save(job)
        return failure

    async def _run(self, job: Job, steps: list[Step], onerror: list[Step]) -> None:
        job.execution = "running"
        self._save(job)
        try:
            for step in steps:
                failure = await self._step(job, step, job.chain_results)
                if failure is not None:
                    for undo in onerror:
                        await self._step(job, undo, job.onerror_results)
                    job.execution = "failed"
                    return
            job.execution = "succeeded"
        except asyncio.CancelledError:
            job.chain_results.append(
                _entry("cancel", "", {"name": "Canceled", "message": "job canceled (service shutting down)"})
            )
            job.execution = "canceled"
            raise
        finally:
            if not job.chain_results:  # invariant: finished jobs have a non-empty chain_results
                job.chain_results.append(_entry("noop", "nothing to do", ""))
            self._active.pop(job.uuid, None)
            self._save(job, finished=True)
            job.done.set()

    async def aclose(self) -> None:
        """Shutdown: cancel running jobs (each is saved as canceled)."""
        for t in list(self._tasks):
            t.cancel()
        for t in list(self._tasks):
            with contextlib.suppress(BaseException):
                await t
