"""The replication service's gRPC transport: the ReplicationService servicer, the DockerImport
servicer and the server's assembly."""
