"""Docker image import (AdminImportDockerImage): a registry's layers become a chain of
``type: docker`` images, one per non-empty layer, streamed to the caller as progress messages."""
