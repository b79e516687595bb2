"""The OpenAPI 3.1 document of the REST surface (``document``), built from the route table and the
descriptions of its operations."""
