"""HTTP at the REST edge, no gRPC calls: the connection protocol, bodies, query strings, responses and
errors, conditional requests, ranges, version negotiation, HTTP Signature authentication, ListImages
parameters."""
