"""What is transient, and how often and how long to retry it: one policy for every blob caller.

Two kinds of retry exist. *Resuming* an upload — writing again from the offset the service has
committed — is safe after any failure that leaves the upload intact (:data:`RESUMABLE`). *Repeating*
a call — a commit, a status lookup, a read continued from the last byte received — is safe only
after the call failed on its way (:data:`REPEATABLE`): the service was unreachable or its storage
was down.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import grpc

from blob_client.errors import BlobError

log = logging.getLogger("blob_client")

#: Failures after which writing again from the committed offset can succeed.
RESUMABLE = frozenset(
    {"Unavailable", "StorageIsDown", "UploadBusy", "OffsetMismatch", "TooManyUploads", "Internal"}
)
#: Failures after which the same call can succeed.
REPEATABLE = frozenset({"Unavailable", "StorageIsDown"})


@dataclass(frozen=True)
class RetryPolicy:
    """``retries`` further attempts after the first, waiting ``delay`` x the attempt number."""

    retries: int = 5
    delay: float = 0.2

    def may_resume(self, err: BlobError, failures: int) -> bool:
        """Whether an upload whose write failed ``failures`` times in a row may be resumed."""
        return err.reason in RESUMABLE and failures <= self.retries

    def may_repeat(self, err: BlobError, failures: int) -> bool:
        """Whether a call (or read) that failed ``failures`` times in a row may be made again."""
        return err.reason in REPEATABLE and failures <= self.retries

    def wait(self, failures: int) -> float:
        """Seconds to wait before the next attempt."""
        return self.delay * failures


#: No retries at all: the caller answers a client that retries itself (the REST gateway).
NO_RETRY = RetryPolicy(retries=0, delay=0.0)


def storage_unreachable(err: BlobError) -> bool:
    """The blob service or its storage could not be reached (not: it answered with a refusal)."""
    return err.reason == "StorageIsDown" or err.transport_code in (
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
    )


def orphan_not_deleted(blob_id: str, err: BlobError, *, strict: bool) -> None:
    """A failed delete of a blob nothing references: one already gone is fine; any other failure
    leaves harmless garbage (logged), unless ``strict`` and the service or its storage could not be
    reached (``err`` is raised again, the caller reports that the store is down)."""
    if err.reason == "BlobNotFound":
        return
    log.warning("could not delete blob %s: %s: %s", blob_id, err.reason, err.message)
    if strict and storage_unreachable(err):
        raise err
