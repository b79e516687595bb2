"""imgapi_cli: the ``imgapi`` command line client of IMGAPI-compatible servers."""

__version__ = "0.1.0"
