"""Replication rules without I/O: which images a job takes (``filters``), the failures of a copy
(``copy_errors``), Docker references, layers and progress messages (``docker/``)."""
