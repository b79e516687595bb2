"""What the blob service reaches outside itself: the storage backends (``storage/``)."""
