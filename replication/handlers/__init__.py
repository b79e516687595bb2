"""The replication service's work: replication jobs (``jobs/``), copying one image (``copy/``),
IMGAPI's remote imports as import jobs (``imports/``), Docker imports and pushes (``docker/``)."""
