"""blob_service: the bytes of image files and icons, over gRPC (protos/imgapi/v1/blob.proto).

Modules, one job each:

* ``settings``  ``IMGAPI_BLOB_*`` configuration, validated at start-up.
* ``ids``       upload/blob ids (32 lower-case hex): the only thing storage keys derive from.
* ``digests``   SHA-1/MD5/SHA-256 whose state can be saved with a checkpoint and restored.
* ``digest_pipeline``  hashing on worker threads, overlapping with I/O.
* ``model``     the persisted upload session and blob records.
* ``storage/``  the :class:`~blob_service.storage.Storage` protocol; ``local`` and ``s3`` backends.
* ``writing``   one WriteChunks stream: offsets, idempotent repeats, crc32, checkpoints.
* ``service``   the operations (no gRPC); ``servicer`` translates gRPC; ``server`` builds it;
  ``reaper`` removes expired uploads. The clients, the error type and the wire framing live in
  the ``blob_client`` package (the gateway may import it; it imports nothing of this one).

Run with ``python -m blob_service``.
"""
