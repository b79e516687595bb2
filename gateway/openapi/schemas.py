"""JSON Schemas of the OpenAPI document (:mod:`gateway.openapi.document`): the IMGAPI error body, the image
manifest (as sent to CreateImage / AdminImportImage / UpdateImage and as answered) and the other
bodies of the REST surface.

They describe what a *valid* request looks like (the rules of the manifest validation, in schema
form) and the shape of answers; the server's own checks stay the authority: any body may be sent,
and one outside these schemas is answered with an IMGAPI error (4xx), never a 5xx.
"""

from __future__ import annotations

from imgapi_common.manifest_fields import (
    CLIENT_FIELDS,
    COMPRESSIONS,
    PUBLISHED_AT_PATTERN,
    REQUIREMENTS,
    STATES,
    UUID,
    Schema,
)


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


FIELD_ERROR: Schema = {
    "type": "object",
    "required": ["field", "code"],
    "properties": {
        "field": {"type": "string", "description": "manifest field, query parameter, body, action..."},
        "code": {"type": "string", "examples": ["MissingParameter", "Invalid", "NotAllowed", "Missing"]},
        "message": {"type": "string"},
    },
    "additionalProperties": False,
}

ERROR: Schema = {
    "type": "object",
    "description": "Every error answer: HTTP status from the code (one status per code).",
    "required": ["code", "message"],
    "properties": {
        "code": {"type": "string", "examples": ["ResourceNotFound", "ValidationFailed", "InvalidParameter"]},
        "message": {"type": "string"},
        "errors": {
            "type": "array",
            "items": ref("FieldError"),
            "description": "ValidationFailed / InvalidParameter only, in detection order",
        },
    },
    "additionalProperties": False,
}

CREATE_MANIFEST: Schema = {
    "type": "object",
    "description": "CreateImage body (no uuid, state, published_at: the server sets them)",
    "required": ["name", "version", "type", "os"],
    "properties": CLIENT_FIELDS,
    "additionalProperties": False,
}

IMPORT_MANIFEST: Schema = {
    "type": "object",
    "description": "AdminImportImage body: a full manifest whose uuid equals the URL's",
    "required": ["uuid", "name", "version", "type", "os"],
    "properties": {
        **CLIENT_FIELDS,
        "uuid": UUID,
        "published_at": {
            "type": "string",
            "pattern": f"^{PUBLISHED_AT_PATTERN}$",
        },
        "urn": {"type": "string"},
    },
    "additionalProperties": False,
}

UPDATE_MANIFEST: Schema = {
    "type": "object",
    "description": "UpdateImage body: the fields to change (operators may also change state, error, "
    "billing_tags, traits, and on unactivated images files[0] digests, origin, uuid)",
    "minProperties": 1,
    "properties": {
        k: v for k, v in CLIENT_FIELDS.items() if k not in ("v", "type", "disabled", "billing_tags")
    },
}

CHANNEL_ADD: Schema = {
    "type": "object",
    "required": ["channel"],
    "properties": {"channel": {"type": "string"}},
}

IMAGE_ACTION_BODY: Schema = {
    "description": "import: the manifest (IMPORT_MANIFEST); update: the changes; channel-add: "
    "{channel}; other actions: ignored",
    "anyOf": [ref("ImportManifest"), ref("UpdateManifest"), ref("ChannelAddBody")],
}

FILE: Schema = {
    "type": "object",
    "required": ["sha1", "size", "compression"],
    "properties": {
        "sha1": {"type": "string"},
        "size": {"type": "integer"},
        "compression": {"enum": list(COMPRESSIONS)},
        "dataset_guid": {"type": "string"},
        "stor": {"type": "string", "description": "inclAdminFields=true only"},
    },
}

IMAGE: Schema = {
    "type": "object",
    "description": "An image manifest as served (fields shown per the serialization rules)",
    "required": ["v", "uuid", "owner", "name", "version", "state", "disabled", "public"],
    "properties": {
        **CLIENT_FIELDS,
        "uuid": UUID,
        "state": {"enum": list(STATES)},
        "published_at": {"type": "string"},
        "files": {"type": "array", "items": ref("File")},
        "icon": {"const": True},
        "error": {"type": "object"},
        "urn": {"type": "string"},
        "channels": {"type": "array", "items": {"type": "string"}, "description": "API version 2 only"},
        "type": {"type": "string"},
        "os": {"type": "string"},
    },
}

ACL_BODY: Schema = {"type": "array", "items": UUID, "description": "account UUIDs"}

FROM_URL_BODY: Schema = {
    "type": "object",
    "required": ["file_url"],
    "properties": {"file_url": {"type": "string", "format": "uri", "pattern": "^https://"}},
}

JOB_STARTED: Schema = {
    "type": "object",
    "required": ["image_uuid", "job_uuid"],
    "properties": {"image_uuid": UUID, "job_uuid": UUID},
}

JOB: Schema = {
    "type": "object",
    "description": "An emulated Workflow API job",
    "required": ["uuid", "execution", "chain_results"],
    "properties": {
        "uuid": UUID,
        "name": {"type": "string"},
        "task": {"type": "string"},
        "execution": {"enum": ["queued", "running", "succeeded", "failed", "canceled"]},
        "params": {"type": "object"},
        "chain_results": {"type": "array", "items": {"type": "object"}},
        "onerror_results": {"type": "array", "items": {"type": "object"}},
        "created_at": {"type": "string"},
    },
}

PING: Schema = {
    "type": "object",
    "required": ["ping", "version", "imgapi"],
    "properties": {
        "ping": {"const": "pong"},
        "version": {"type": "string"},
        "imgapi": {"const": True},
        "pid": {"type": "integer"},
        "user": {"type": "string"},
    },
}

CHANNEL: Schema = {
    "type": "object",
    "required": ["name"],
    "properties": {"name": {"type": "string"}, "description": {"type": "string"}, "default": {"const": True}},
}

REPLICATION_JOB_SPEC: Schema = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string"},
        "source_kind": {"enum": ["grpc", "rest"]},
        "source_url": {"type": "string"},
        "source_catalog": {"type": "string"},
        "source_blob": {"type": "string"},
        "propagate_deletes": {"type": "boolean"},
        "concurrency": {"type": "integer", "minimum": 0},
        "bandwidth_limit": {"type": "integer", "minimum": 0},
        "poll_seconds": {"type": "number", "minimum": 0},
        "filters": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                **{k: {"type": "string"} for k in ("owner", "name", "type", "os", "channel")},
                "public": {"type": "boolean"},
                "tags": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        },
    },
}

SCHEMAS: dict[str, Schema] = {
    "Error": ERROR,
    "FieldError": FIELD_ERROR,
    "Image": IMAGE,
    "File": FILE,
    "Requirements": REQUIREMENTS,
    "CreateManifest": CREATE_MANIFEST,
    "ImportManifest": IMPORT_MANIFEST,
    "UpdateManifest": UPDATE_MANIFEST,
    "ChannelAddBody": CHANNEL_ADD,
    "ImageActionBody": IMAGE_ACTION_BODY,
    "AclBody": ACL_BODY,
    "FromUrlBody": FROM_URL_BODY,
    "JobStarted": JOB_STARTED,
    "Job": JOB,
    "Ping": PING,
    "Channel": CHANNEL,
    "ReplicationJobSpec": REPLICATION_JOB_SPEC,
    "ReplicationJob": {"type": "object"},
    "State": {"type": "object"},
}
