"""The catalog's operations, one module per concern (``lifecycle``, ``files``, ``acl_channels``,
``reads``, ``changes`` over a shared ``core``), composed into
:class:`catalog_service.handlers.operations.CatalogService`, the one object the gRPC servicer calls."""
