"""blob_client: the one client of the blob service, for every caller that moves image bytes.

The gateway (file and icon uploads and downloads, tus, orphaned blobs), replication (the copier and
its sources) and the benchmarks all go through it (the CLI speaks REST only); the blob service
shares its error type and wire framing. Modules, one job each:

* ``errors``  :class:`BlobError`, the blob service's errors (reason, message, metadata).
* ``wire``    the hand-written protobuf framing of the messages that carry bytes (no copies).
* ``chunks``  cutting a byte stream into chunks; the bytes a resumed upload may resend.
* ``policy``  what is transient and how often to retry it.
* ``model``   the values returned (:class:`UploadInfo`, :class:`BlobInfo`) and :class:`UploadSpec`.
* ``sync``    :class:`BlobClient` and its upload handle :class:`SyncUpload` (blocking).
* ``aio``     :class:`AsyncBlobClient` and its upload handle :class:`Upload` (asyncio).

It imports nothing of the services: the gateway may use it.
"""

from blob_client.aio import READ_WINDOW_OPTIONS, AsyncBlobClient, BlobReader, Upload, WriteOutcome
from blob_client.errors import BlobError
from blob_client.model import BlobInfo, UploadInfo, UploadSpec
from blob_client.policy import NO_RETRY, RetryPolicy
from blob_client.sync import BlobClient, SyncUpload
from blob_client.wire import PUT_BLOB_MAX_BYTES

__all__ = [
    "NO_RETRY",
    "PUT_BLOB_MAX_BYTES",
    "READ_WINDOW_OPTIONS",
    "AsyncBlobClient",
    "BlobClient",
    "BlobError",
    "BlobInfo",
    "BlobReader",
    "RetryPolicy",
    "SyncUpload",
    "Upload",
    "UploadInfo",
    "UploadSpec",
    "WriteOutcome",
]
