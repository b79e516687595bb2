"""imgapi_cli."""
