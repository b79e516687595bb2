"""What replication reaches outside itself: its database (``store``, ``import_records``,
``docker/records``), this datacenter's catalog and blob services (``destination``), the sources it
copies from (``sources``, ``grpc_source``, ``rest_source``, ``fetcher_transport``) and Docker
registries (``docker/registry``)."""
