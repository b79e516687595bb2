"""Emulated Workflow API jobs (``GET /jobs/:job_uuid``): the job store and runner.

AdminImportRemoteImage and ImportFromDatacenter answer at once with ``{"image_uuid", "job_uuid"}``
and a ``workflow-api`` header; the work runs here as an asyncio task made of named steps. Job
objects keep WFAPI's shape and the invariants the node client's ``...AndWait`` helpers rely on: a
finished job always has a non-empty ``chain_results``; its last entry has ``error: ""`` on success
and an object with a ``message`` on failure. Jobs live in the gateway process (one registry per
app) and are kept for :data:`KEEP_SECONDS` after they finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid as uuidlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from imgapi_common.errors import ImgapiError

log = logging.getLogger("gateway.jobs")

#: WFAPI workflow version suffix of job names (``import-remote-image-7.0.7``).
WORKFLOW_VERSION = "7.0.7"
#: How long finished jobs stay listable.
KEEP_SECONDS = 6 * 3600
EXECUTIONS = ("queued", "running", "succeeded", "failed", "canceled")
FINISHED = frozenset({"succeeded", "failed", "canceled"})


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
    finished_mono: float | None = None
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


class JobRegistry:
    """In-process job store and runner. At most one active job per (task, image)."""

    def __init__(self, keep_seconds: float = KEEP_SECONDS) -> None:
        self.keep_seconds = keep_seconds
        self._jobs: dict[str, Job] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def get(self, job_uuid: str) -> Job | None:
        self._prune()
        return self._jobs.get(job_uuid)

    def active_for(self, task: str, image_uuid: str) -> Job | None:
        for job in self._jobs.values():
            if job.task == task and job.image_uuid == image_uuid and job.execution not in FINISHED:
                return job
        return None

    def list_for_image(
        self, image_uuid: str, task: str | None = None, execution: str | None = None
    ) -> list[Job]:
        self._prune()
        return [
            j
            for j in self._jobs.values()
            if j.image_uuid == image_uuid
            and (task is None or j.task == task)
            and (execution is None or j.execution == execution)
        ]

    def submit(
        self, task: str, params: dict[str, Any], steps: Sequence[Step], onerror: Sequence[Step] = ()
    ) -> Job:
        """Queue a job (returns the already active one for the same task and image, if any)."""
        image_uuid = params.get("image_uuid")
        if isinstance(image_uuid, str):
            existing = self.active_for(task, image_uuid)
            if existing is not None:
                return existing
        job = Job(uuid=str(uuidlib.uuid4()), task=task, params={"task": task, **params})
        self._jobs[job.uuid] = job
        t = asyncio.create_task(self._run(job, list(steps), list(onerror)), name=f"job-{job.uuid}")
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)
        return job

    async def _run(self, job: Job, steps: list[Step], onerror: list[Step]) -> None:
        job.execution = "running"
        try:
            for step in steps:
                failure = await _run_step(step, job.chain_results)
                if failure is not None:
                    for undo in onerror:
                        await _run_step(undo, job.onerror_results)
                    job.execution = "failed"
                    return
            job.execution = "succeeded"
        except asyncio.CancelledError:
            job.chain_results.append(
                {
                    "name": "cancel",
                    "result": "",
                    "error": {"name": "Canceled", "message": "job canceled (gateway shutting down)"},
                    "started_at": iso_now(),
                    "finished_at": iso_now(),
                }
            )
            job.execution = "canceled"
            raise
        finally:
            if not job.chain_results:  # invariant: finished jobs have a non-empty chain_results
                job.chain_results.append(
                    {
                        "name": "noop",
                        "result": "nothing to do",
                        "error": "",
                        "started_at": iso_now(),
                        "finished_at": iso_now(),
                    }
                )
            job.finished_mono = time.monotonic()
            job.done.set()

    async def wait(self, job_uuid: str, timeout: float | None = None) -> Job:
        job = self._jobs[job_uuid]
        await asyncio.wait_for(job.done.wait(), timeout)
        return job

    def _prune(self) -> None:
        cutoff = time.monotonic() - self.keep_seconds
        for k in [
            k for k, j in self._jobs.items() if j.finished_mono is not None and j.finished_mono < cutoff
        ]:
            del self._jobs[k]

    async def aclose(self) -> None:
        """App shutdown: cancel running jobs."""
        for t in list(self._tasks):
            t.cancel()
        for t in list(self._tasks):
            with contextlib.suppress(BaseException):
                await t
