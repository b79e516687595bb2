"""The replication jobs of one service: created, paused, resumed and deleted here, persisted in the
store, each running job in its :class:`~replication.handlers.jobs.runner.JobRunner`."""

from __future__ import annotations

import threading
from collections.abc import Callable

from pydantic import SecretStr

from imgapi_common.ssrf import Allowlist
from replication.adapters.destination import Destination
from replication.adapters.store import Store
from replication.handlers.jobs.runner import JobRunner
from replication.handlers.jobs.spec import JobSpec


class JobManager:
    """The jobs of one replication service: persisted in ``store``, one runner per running job."""

    def __init__(
        self,
        store: Store,
        dest_factory: Callable[[], Destination],
        source_token: SecretStr | str = "",
        source_allowlist: Allowlist | None = None,
    ) -> None:
        self.store = store
        self.dest_factory = dest_factory
        self.source_token = source_token
        #: Exemptions from the SSRF guard for REST sources (empty: public addresses only).
        self.source_allowlist = source_allowlist
        self.runners: dict[str, JobRunner] = {}
        self._lock = threading.Lock()
        self._create_lock = threading.Lock()  # job names are unique: check and insert as one

    def start_all(self) -> None:
        for job_id in self.store.job_ids():
            job = self.store.get_job(job_id)
            if job is not None and job.state == "running":
                self._start(job_id)

    def _start(self, job_id: str) -> None:
        with self._lock:
            r = self.runners.get(job_id)
            if r is not None and r.alive:
                return
            r = JobRunner(
                self.store,
                job_id,
                self.dest_factory,
                self.source_token,
                source_allowlist=self.source_allowlist,
            )
            self.runners[job_id] = r
            r.start()

    def _stop(self, job_id: str) -> None:
        with self._lock:
            r = self.runners.pop(job_id, None)
        if r is not None:
            r.stop()

    def create(self, spec: JobSpec) -> str:
        spec.validate()
        with self._create_lock:
            if spec.name:
                same = self.find_by_name(spec.name)
                if same is not None:
                    raise ValueError(
                        f"a replication job named {spec.name!r} already exists ({same}); job names are unique"
                    )
            job_id = self.store.create_job(spec.as_dict())
        self._start(job_id)
        return job_id

    def find_by_name(self, name: str) -> str | None:
        """The id of the job called ``name`` (names are unique), or None."""
        for job_id in self.store.job_ids():
            job = self.store.get_job(job_id)
            if job is not None and job.spec.get("name") == name:
                return job_id
        return None

    def pause(self, job_id: str, *, resume: bool = False) -> bool:
        if self.store.get_job(job_id) is None:
            return False
        if resume:
            self.store.update_job(job_id, state="running")
            self._start(job_id)
        else:
            self._stop(job_id)
            self.store.update_job(job_id, state="paused")
        return True

    def delete(self, job_id: str) -> bool:
        self._stop(job_id)
        return self.store.delete_job(job_id)

    def live(self, job_id: str) -> dict[str, tuple[int, int]]:
        r = self.runners.get(job_id)
        return dict(r.copier.live) if r is not None and r.copier is not None else {}

    def stop_all(self) -> None:
        for job_id in list(self.runners):
            self._stop(job_id)
