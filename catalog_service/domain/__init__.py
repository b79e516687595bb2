"""Pure-Python domain layer of the catalog service: no gRPC, no SQL, no I/O.

* :mod:`.config` -- the settings the rules depend on (:class:`DomainConfig`).
* :mod:`.jsvalues` -- the JavaScript value semantics IMGAPI relies on.
* :mod:`.validation` -- manifest validation (:mod:`.field_checks`, :mod:`.requirements`).
* :mod:`.records` -- building stored records from CreateImage / AdminImportImage bodies.
* :mod:`.upgrade` -- the SDC 6 dataset manifest upgrade (imports only).
* :mod:`.update` -- UpdateImage rules.
* :mod:`.serialize` -- the one API-view serializer and JSON rendering.

The manifest field rules shared with the gateway live in :mod:`imgapi_common.manifest_fields`.
"""
