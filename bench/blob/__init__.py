"""Blob service benchmark: ``python -m bench.blob --help``."""
