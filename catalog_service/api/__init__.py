"""The catalog's gRPC transport: the server's assembly, the servicer, proto <-> record conversion."""
