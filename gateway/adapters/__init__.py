"""What the gateway calls: gRPC channels and stubs of the catalog, blob and replication services,
balanced catalog connections, the deletion of orphaned blobs."""
