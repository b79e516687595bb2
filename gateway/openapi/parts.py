"""Building blocks of the OpenAPI document's operations (:mod:`gateway.openapi.document`): the description
of one operation (:class:`Doc`), query and header parameters, request bodies and answers shared by
several operations."""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.openapi.schemas import ref
from imgapi_common.manifest_fields import COMPRESSIONS, UUID, Schema

JSON = "application/json"


@dataclass(frozen=True)
class Doc:
    """What the route table does not say about one operation."""

    operation_id: str
    summary: str
    query: tuple[Schema, ...] = ()
    headers: tuple[Schema, ...] = ()
    body: Schema | None = None
    #: success status -> response object
    ok: dict[str, Schema] = field(default_factory=dict)


# --- parameters ---------------------------------------------------------------------------------


def q(name: str, schema: Schema, description: str = "", *, required: bool = False) -> Schema:
    p: Schema = {"name": name, "in": "query", "required": required, "schema": schema}
    if description:
        p["description"] = description
    return p


def h(name: str, schema: Schema, description: str = "") -> Schema:
    p: Schema = {"name": name, "in": "header", "required": False, "schema": schema}
    if description:
        p["description"] = description
    return p


STR: Schema = {"type": "string"}
BOOL: Schema = {"type": "boolean"}

ACCOUNT = q("account", UUID, "act as / scope to this account (a user request; absent = operator)")
CHANNEL = q("channel", STR, "request channel (servers with channels); * = all channels on reads")
INCL_ADMIN = q("inclAdminFields", BOOL, "add admin-only fields (files[].stor)")
COMPRESSION = q("compression", {"enum": list(COMPRESSIONS)}, "file compression", required=True)
SHA1 = q("sha1", {"type": "string", "pattern": "^[0-9a-f]{40}$"}, "expected SHA-1 of the bytes")
DATASET_GUID = q("dataset_guid", STR)
STORAGE = q("storage", STR, "storage backend name (operators only)")
SOURCE = q("source", {"type": "string", "format": "uri"}, "base URL of another IMGAPI to copy from")
SKIP_OWNER_CHECK = q("skip_owner_check", BOOL)

ACCEPT_VERSION = h(
    "Accept-Version",
    STR,
    "semver range of REST versions (1.0.0, 2.0.0); absent = ~1; ranges admitting "
    "2.0.0 get the channels field",
)
IF_MATCH = h("If-Match", STR, "image ETag(s); mismatch = 412")
IF_NONE_MATCH = h("If-None-Match", STR, "image ETag(s); match = 304 on GET, 412 otherwise")
CONTENT_MD5 = h("Content-MD5", STR, "base64 MD5 of the JSON body; mismatch = 400 BadDigest")
RANGE = h("Range", STR, "bytes=<range> (one range)")
TUS_RESUMABLE = h("Tus-Resumable", {"const": "1.0.0"})

IMAGE_QUERY = (ACCOUNT, CHANNEL)

# --- bodies and answers ---------------------------------------------------------------------------


def json_body(schema: Schema, description: str = "") -> Schema:
    b: Schema = {"required": False, "content": {JSON: {"schema": schema}}}
    if description:
        b["description"] = description
    return b


def raw_body(media: str, description: str) -> Schema:
    return {
        "required": False,
        "description": description,
        "content": {media: {"schema": {"type": "string", "format": "binary"}}},
    }


def ok_json(schema: Schema, description: str, status: str = "200") -> dict[str, Schema]:
    return {status: {"description": description, "content": {JSON: {"schema": schema}}}}


def ok_empty(status: str, description: str) -> dict[str, Schema]:
    return {status: {"description": description}}


IMAGE_OK = ok_json(ref("Image"), "the image (with its Etag header)")
NOT_MODIFIED = ok_empty("304", "If-None-Match matched")
REDIRECT = ok_empty("301", "redirect (Location header)")

ERROR_RESPONSES: dict[str, Schema] = {
    "4XX": {"$ref": "#/components/responses/Error"},
    "5XX": {"$ref": "#/components/responses/Error"},
}

IMAGE_ACTIONS = (
    "import",
    "import-remote",
    "import-from-datacenter",
    "change-stor",
    "export",
    "activate",
    "enable",
    "disable",
    "channel-add",
    "update",
)
