"""Pure-Python domain layer of the catalog service: no gRPC, no SQL, no I/O. (The JavaScript value
semantics it relies on are :mod:`imgapi_common.jsvalues`, shared with the REST edge.)

* :mod:`.config` -- the settings the rules depend on (:class:`DomainConfig`).
* :mod:`.validation` -- manifest validation (:mod:`.field_checks`, :mod:`.requirements`).
* :mod:`.records` -- building stored records from CreateImage / AdminImportImage bodies.
* :mod:`.upgrade` -- the SDC 6 dataset manifest upgrade (imports only).
* :mod:`.update` -- UpdateImage rules.
* :mod:`.serialize` -- the one API-view serializer and JSON rendering.
* :mod:`.image` -- the :class:`Image` model: the rules about one image.
* :mod:`.calls` -- the plain values a catalog call takes and returns (caller, view, answers).
* :mod:`.preconditions` -- conditional headers evaluated against an image's ETag.
* :mod:`.json_body` -- strict JSON bodies; :mod:`.clock` -- "now" in IMGAPI's format.

The manifest field rules shared with the gateway live in :mod:`imgapi_common.manifest_fields`, the
JavaScript value semantics IMGAPI relies on in :mod:`imgapi_common.jsvalues`.
"""
