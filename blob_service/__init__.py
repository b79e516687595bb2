"""blob_service: the bytes of image files and icons, over gRPC (protos/imgapi/v1/blob.proto).

Layers, one job per module:

* ``settings``   ``IMGAPI_BLOB_*`` configuration, validated at start-up.
* ``domain/``    no I/O: ``ids`` (32 lower-case hex, the only thing storage keys derive from),
  ``digests`` (SHA-1/MD5/SHA-256 whose state is saved with a checkpoint), ``digest_pipeline``
  (hashing on worker threads, overlapping with I/O), ``model`` (upload session and blob records),
  ``errors`` (the :class:`BlobError` values the service raises).
* ``adapters/``  ``storage/``: the :class:`~blob_service.adapters.storage.Storage` protocol and its
  ``local`` and ``s3`` backends.
* ``handlers/``  ``operations.BlobService`` (uploads and blobs, no gRPC), ``writing`` (one
  WriteChunks stream: offsets, idempotent repeats, crc32, checkpoints), ``locks``, ``stream_guard``,
  ``reaper`` (removes expired uploads).
* ``api/``       ``servicer`` translates gRPC, ``server`` builds the server, ``status`` is the status
  of a failed call.

The clients, the error type and the wire framing live in the ``blob_client`` package (the gateway
may import it; it imports nothing of this one).

Run with ``python -m blob_service``.
"""
