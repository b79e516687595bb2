"""Multi-datacenter replication: jobs that pull images from another imgapi (gRPC) or IMGAPI (REST)."""
