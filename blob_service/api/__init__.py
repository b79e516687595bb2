"""The blob service's gRPC transport: the server's assembly, the servicer, record <-> message conversion,
the status a failed call ends with."""
