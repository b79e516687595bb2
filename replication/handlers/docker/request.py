"""The checks of an import request that come before any registry traffic (ordinary errors)."""

from __future__ import annotations

from dataclasses import dataclass

from imgapi.v1 import docker_pb2

from imgapi_common.errors import FieldError, invalid_parameter, validation_failed
from replication.adapters.docker.registry import Credentials
from replication.domain.docker.reference import Reference, ReferenceError, parse_reference
from replication.handlers.docker.credentials import select_credentials


@dataclass(frozen=True)
class ImportRequest:
    reference: Reference
    public: bool
    credentials: Credentials | None
    channel: str
    request_id: str


def check_request(req: docker_pb2.ImportDockerImageRequest) -> ImportRequest:
    """In this order: ``repo`` + tag/digest parse, the credential headers, ``public``."""
    if not req.repo or bool(req.tag) == bool(req.digest):
        raise validation_failed("missing parameters", [FieldError("repo", "MissingParameter")])
    try:
        ref = parse_reference(f"{req.repo}@{req.digest}" if req.digest else f"{req.repo}:{req.tag}")
    except ReferenceError as e:
        raise validation_failed(str(e), [FieldError("repo", "Invalid")]) from None
    creds = select_credentials(
        ref.repository.index_name,
        req.registry_auth if req.HasField("registry_auth") else None,
        req.registry_config if req.HasField("registry_config") else None,
    )
    public = True
    if req.HasField("public"):
        if req.public not in ("true", "false"):
            raise invalid_parameter(
                f'invalid value for "public" param: "{req.public}" is not a boolean',
                [FieldError("public", "Invalid")],
            )
        public = req.public == "true"
    return ImportRequest(ref, public, creds, req.caller.channel, req.caller.request_id)
