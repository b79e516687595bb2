"""The catalog's operations, one module per concern, composed into
:class:`catalog_service.service.CatalogService`."""
