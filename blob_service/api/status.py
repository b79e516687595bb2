"""The status a failed blob-service call ends with (the server's one error interceptor asks)."""

from __future__ import annotations

import logging

from google.rpc import status_pb2

from blob_client.errors import BlobError

log = logging.getLogger(__name__)


def blob_status(exc: Exception, method: str) -> tuple[status_pb2.Status, int]:
    """The status a blob-service call that raised ``exc`` ends with (the server's error interceptor
    calls this): a BlobError as it is, anything else Internal (and logged)."""
    if isinstance(exc, BlobError):
        return exc.to_rpc_status(), 0
    log.error("%s failed", method, exc_info=exc)
    return BlobError("Internal", f"{exc.__class__.__name__}: {exc}").to_rpc_status(), 0
