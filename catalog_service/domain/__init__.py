"""Pure-Python domain layer of the catalog service: no gRPC, no SQL, no I/O. (The JavaScript value
semantics it relies on are :mod:`imgapi_common.jsvalues`, shared with the REST edge.)

* :mod:`.config` -- the settings the rules depend on (:class:`DomainConfig`).
* :mod:`.validation` -- manifest validation and building stored records (manifest.md §4).
* :mod:`.upgrade` -- the SDC 6 dataset manifest upgrade (manifest.md §4.8).
* :mod:`.update` -- UpdateImage rules (manifest.md §5).
* :mod:`.serialize` -- the one API-view serializer and JSON rendering (manifest.md §3).
"""
