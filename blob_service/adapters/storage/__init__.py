"""Storage backends behind one protocol (:class:`Storage`), chosen by configuration."""

from blob_service.adapters.storage.base import (
    StagedConflict,
    Storage,
    StorageBusy,
    StorageUnavailable,
    UploadWriter,
)
from blob_service.adapters.storage.factory import make_storage

__all__ = ["StagedConflict", "Storage", "StorageBusy", "StorageUnavailable", "UploadWriter", "make_storage"]
