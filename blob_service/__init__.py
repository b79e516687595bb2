"""blob_service."""
