"""The OpenAPI 3.1 document of the REST surface, served at ``GET /openapi.json``.

Paths and methods come from the route table (:data:`gateway.routes.ROUTES`): this module only adds,
per ``(pattern, method)``, what the table does not know (summary, query parameters, headers, request
body, answers). :func:`build_document` refuses a route without a description and a description
without a route, so the document cannot drift from what the gateway serves. The served document
covers the routes mounted for this server's configuration (e.g. ``/channels`` only with channels).

Every operation answers errors as the IMGAPI error body (``#/components/schemas/Error``); the 4XX
and 5XX ranges are declared on each operation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway.openapi_schemas import SCHEMAS, UUID, Schema, ref
from gateway.routes import ROUTES, Route

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
COMPRESSION = q("compression", {"enum": ["bzip2", "gzip", "xz", "none"]}, "file compression", required=True)
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

# --- one description per (pattern, method) of the route table -------------------------------------

DOCS: dict[tuple[str, str], Doc] = {
    ("/images", "GET"): Doc(
        "ListImages",
        "List images (operator view, or what `account` may see); 1000 at most per page",
        query=(
            q("account", STR, "scope results to what this account may see"),
            q("owner", STR),
            q("state", {"enum": ["active", "disabled", "unactivated", "creating", "failed", "all"]}),
            q("name", STR, "exact, or ~substring"),
            q("version", STR, "exact, or ~substring"),
            q("public", BOOL),
            q("os", STR),
            q("type", STR, "exact, or !excluded"),
            q(
                "billing_tag",
                {"type": "array", "items": STR},
                "repeatable; all must be present (tag.<KEY>=<VALUE> filters on tags, too)",
            ),
            CHANNEL,
            INCL_ADMIN,
            q("limit", {"type": "integer", "minimum": 0}, "page size (default and maximum 1000)"),
            q("marker", STR, "image UUID or date: inclusive start of the page"),
            q("sort", {"type": "string", "pattern": "^published_at(\\..*)?$"}),
        ),
        ok=ok_json({"type": "array", "items": ref("Image")}, "the images"),
    ),
    ("/images", "POST"): Doc(
        "CreateImage",
        "Create an unactivated image from a manifest (action=create-from-vm, import-lxd-image: 501 "
        "NotAvailable here; action=import-docker-image streams newline-delimited JSON progress when a "
        "replication service is configured, docs/docker.md)",
        query=(
            ACCOUNT,
            CHANNEL,
            q("action", {"enum": ["create-from-vm", "import-docker-image", "import-lxd-image"]}),
        ),
        headers=(CONTENT_MD5,),
        body=json_body(ref("CreateManifest")),
        ok=IMAGE_OK,
    ),
    ("/images/:uuid", "GET"): Doc(
        "GetImage",
        "Get an image",
        query=(*IMAGE_QUERY, INCL_ADMIN),
        headers=(IF_MATCH, IF_NONE_MATCH),
        ok={**IMAGE_OK, **NOT_MODIFIED},
    ),
    ("/images/:uuid", "POST"): Doc(
        "ImageAction",
        "Act on an image: import (AdminImportImage, from `source` if given), import-remote, "
        "import-from-datacenter, change-stor, export, activate, enable, disable, channel-add, update",
        query=(
            q("action", {"enum": list(IMAGE_ACTIONS)}, required=True),
            *IMAGE_QUERY,
            SOURCE,
            SKIP_OWNER_CHECK,
            q("datacenter", STR, "import-from-datacenter"),
            q("stor", STR, "change-stor"),
            q("manta_path", STR, "export"),
        ),
        headers=(IF_MATCH, CONTENT_MD5),
        body=json_body(ref("ImageActionBody")),
        ok=ok_json(
            {"anyOf": [ref("Image"), ref("JobStarted")]},
            "the image (with its Etag header); import-remote and import-from-datacenter: the job "
            "started (poll GET /jobs/{job_uuid} on the workflow-api host)",
        ),
    ),
    ("/images/:uuid", "DELETE"): Doc(
        "DeleteImage",
        "Delete an image (or remove it from the request channel)",
        query=(*IMAGE_QUERY, q("force_all_channels", BOOL)),
        ok=ok_empty("204", "deleted"),
    ),
    ("/images/:uuid/file", "PUT"): Doc(
        "AddImageFile",
        "Upload the image file (or copy it from `source`)",
        query=(COMPRESSION, SHA1, DATASET_GUID, STORAGE, SOURCE, *IMAGE_QUERY),
        body=raw_body("application/octet-stream", "the file bytes"),
        ok=IMAGE_OK,
    ),
    ("/images/:uuid/file", "GET"): Doc(
        "GetImageFile",
        "Download the image file",
        query=(q("index", {"type": "integer", "minimum": 0}), *IMAGE_QUERY),
        headers=(RANGE, h("If-Range", STR), IF_NONE_MATCH),
        ok={
            "200": {
                "description": "the file",
                "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
            },
            "206": {
                "description": "the requested range",
                "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
            },
            **NOT_MODIFIED,
        },
    ),
    ("/images/:uuid/file/from-url", "POST"): Doc(
        "AddImageFileFromUrl",
        "Fetch the image file from an https URL",
        query=(COMPRESSION, SHA1, DATASET_GUID, STORAGE, *IMAGE_QUERY),
        body=json_body(ref("FromUrlBody")),
        ok=IMAGE_OK,
    ),
    ("/images/:uuid/file/uploads", "POST"): Doc(
        "CreateUpload",
        "tus 1.0 creation of a resumable upload of the image file",
        query=(
            q("compression", {"enum": ["bzip2", "gzip", "xz", "none"]}, "or Upload-Metadata compression"),
            SHA1,
            DATASET_GUID,
            STORAGE,
            *IMAGE_QUERY,
        ),
        headers=(
            TUS_RESUMABLE,
            h("Upload-Length", {"type": "string", "pattern": "^[0-9]+$"}),
            h("Upload-Metadata", STR, "key base64(value) pairs, comma-separated"),
        ),
        ok=ok_empty("201", "created (Location header)"),
    ),
    ("/images/:uuid/file/uploads", "OPTIONS"): Doc(
        "UploadCapabilities", "tus capabilities", ok=ok_empty("204", "Tus-* headers")
    ),
    ("/images/:uuid/file/uploads/:upload_id", "HEAD"): Doc(
        "GetUploadOffset",
        "tus offset of an upload",
        query=IMAGE_QUERY,
        headers=(TUS_RESUMABLE,),
        ok=ok_empty("200", "Upload-Offset and Upload-Length headers"),
    ),
    ("/images/:uuid/file/uploads/:upload_id", "PATCH"): Doc(
        "AppendUpload",
        "tus append at Upload-Offset",
        query=IMAGE_QUERY,
        headers=(
            TUS_RESUMABLE,
            h("Upload-Offset", {"type": "string", "pattern": "^[0-9]+$"}),
            h("Upload-Checksum", STR, "<algorithm> <base64 digest>"),
        ),
        body=raw_body("application/offset+octet-stream", "the next bytes"),
        ok=ok_empty("204", "appended (new Upload-Offset header)"),
    ),
    ("/images/:uuid/file/uploads/:upload_id", "DELETE"): Doc(
        "TerminateUpload",
        "tus termination",
        query=IMAGE_QUERY,
        headers=(TUS_RESUMABLE,),
        ok=ok_empty("204", "terminated"),
    ),
    ("/images/:uuid/file/uploads/:upload_id", "OPTIONS"): Doc(
        "UploadCapabilitiesOfUpload", "tus capabilities", ok=ok_empty("204", "Tus-* headers")
    ),
    ("/images/:uuid/icon", "PUT"): Doc(
        "AddImageIcon",
        "Upload the image icon (image/png, image/gif or image/jpeg; 128 KiB at most)",
        query=(SHA1, STORAGE, *IMAGE_QUERY),
        body=raw_body("image/png", "the icon bytes"),
        ok=IMAGE_OK,
    ),
    ("/images/:uuid/icon", "GET"): Doc(
        "GetImageIcon",
        "Download the image icon",
        query=IMAGE_QUERY,
        headers=(IF_NONE_MATCH,),
        ok={
            "200": {
                "description": "the icon",
                "content": {"image/*": {"schema": {"type": "string", "format": "binary"}}},
            },
            **NOT_MODIFIED,
        },
    ),
    ("/images/:uuid/icon", "DELETE"): Doc(
        "DeleteImageIcon", "Remove the image icon", query=IMAGE_QUERY, ok=IMAGE_OK
    ),
    ("/images/:uuid/acl", "POST"): Doc(
        "ImageAcl",
        "Add (default) or remove accounts of the image ACL",
        query=(q("action", {"enum": ["add", "remove"]}), *IMAGE_QUERY),
        headers=(CONTENT_MD5,),
        body=json_body(ref("AclBody")),
        ok=IMAGE_OK,
    ),
    ("/images/:uuid/jobs", "GET"): Doc(
        "ListImageJobs",
        "Jobs about this image",
        query=(
            q("task", {"enum": ["create-from-vm", "import-remote-image"]}),
            q("execution", {"enum": ["queued", "running", "succeeded", "failed", "canceled"]}),
            *IMAGE_QUERY,
        ),
        ok=ok_json({"type": "array", "items": ref("Job")}, "the jobs"),
    ),
    ("/images/:uuid/push", "POST"): Doc(
        "AdminPushDockerImage",
        "Push a docker image (streamed progress when a replication service is configured, else 501)",
        query=(q("repoAndTag", STR), *IMAGE_QUERY),
        ok={},
    ),
    ("/images/:uuid/clone", "POST"): Doc(
        "CloneImage",
        "Clone a shared image (and its origins) into `account` (dc mode)",
        query=(q("account", UUID, required=True), CHANNEL),
        ok=IMAGE_OK,
    ),
    ("/channels", "GET"): Doc(
        "ListChannels",
        "The configured channels",
        ok=ok_json({"type": "array", "items": ref("Channel")}, "the channels"),
    ),
    ("/replication/jobs", "GET"): Doc(
        "ListReplicationJobs",
        "Replication jobs (operators)",
        ok=ok_json({"type": "array", "items": ref("ReplicationJob")}, "the jobs"),
    ),
    ("/replication/jobs", "POST"): Doc(
        "CreateReplicationJob",
        "Start a replication job (operators)",
        body=json_body(ref("ReplicationJobSpec")),
        ok=ok_json(ref("ReplicationJob"), "the job", "201"),
    ),
    ("/replication/jobs/:job_id", "GET"): Doc(
        "GetReplicationJob", "A replication job", ok=ok_json(ref("ReplicationJob"), "the job")
    ),
    ("/replication/jobs/:job_id", "POST"): Doc(
        "ReplicationJobAction",
        "Pause or resume a replication job",
        query=(q("action", {"enum": ["pause", "resume"]}, required=True),),
        ok=ok_json(ref("ReplicationJob"), "the job"),
    ),
    ("/replication/jobs/:job_id", "DELETE"): Doc(
        "DeleteReplicationJob", "Stop and forget a replication job", ok=ok_empty("204", "deleted")
    ),
    ("/ping", "GET"): Doc(
        "Ping",
        "Liveness; ?error=<Name> answers a sample error",
        query=(q("error", STR, "name of a sample error to answer"),),
        ok=ok_json(ref("Ping"), "pong"),
    ),
    ("/state", "GET"): Doc("AdminGetState", "Internal state", ok=ok_json(ref("State"), "the state")),
    ("/state", "POST"): Doc(
        "AdminUpdateState",
        "Drop caches",
        query=(q("action", {"const": "dropcaches"}, required=True),),
        ok=ok_empty("202", "done"),
    ),
    ("/authkeys/reload", "POST"): Doc(
        "AdminReloadAuthKeys", "Reload the HTTP Signature keys", ok=ok_json({"type": "object"}, "{}")
    ),
    ("/datasets", "GET"): Doc("ListDatasets", "SDC 6 compatibility redirect to /images", ok=REDIRECT),
    ("/datasets/:arg", "GET"): Doc("GetDataset", "SDC 6 compatibility redirect to an image", ok=REDIRECT),
    ("/jobs/:job_uuid", "GET"): Doc(
        "GetJob", "Emulated Workflow API job status", ok=ok_json(ref("Job"), "the job")
    ),
    ("/", "GET"): Doc("Root", "Redirect to /docs/", ok=REDIRECT),
    ("/docs", "GET"): Doc("Docs", "Redirect to /docs/", ok=REDIRECT),
    ("/docs/...", "GET"): Doc(
        "DocsPage",
        "Static documentation",
        ok={"200": {"description": "an HTML page", "content": {"text/html": {"schema": STR}}}},
    ),
    ("/favicon.ico", "GET"): Doc("Favicon", "No favicon (404)", ok={}),
    ("/openapi.json", "GET"): Doc(
        "GetOpenApi", "This document", ok=ok_json({"type": "object"}, "the OpenAPI 3.1 document")
    ),
}

_PATH_PARAM_SCHEMAS: dict[str, Schema] = {"uuid": UUID, "job_uuid": UUID}


def openapi_path(pattern: str) -> str:
    """``/images/:uuid`` -> ``/images/{uuid}``; a final ``...`` becomes ``{rest}`` (one segment)."""
    parts = []
    for seg in pattern.split("/"):
        if seg.startswith(":"):
            parts.append("{" + seg[1:] + "}")
        elif seg == "...":
            parts.append("{rest}")
        else:
            parts.append(seg)
    return "/".join(parts)


def _path_params(pattern: str) -> list[Schema]:
    out = []
    for seg in pattern.split("/"):
        name = seg[1:] if seg.startswith(":") else "rest" if seg == "..." else None
        if name is not None:
            out.append(
                {
                    "name": name,
                    "in": "path",
                    "required": True,
                    "schema": _PATH_PARAM_SCHEMAS.get(name, STR),
                }
            )
    return out


def _operation(route: Route, method: str, doc: Doc) -> Schema:
    op = route.ops[method]
    auth = {"strict": "required", "passive": "optional", "none": "none"}[op.auth.value]
    out: Schema = {
        "operationId": doc.operation_id,
        "summary": doc.summary,
        "description": f"HTTP Signature authentication: {auth} (with authType signature).",
        "parameters": [*_path_params(route.pattern), *doc.query, ACCEPT_VERSION, *doc.headers],
        "responses": {**doc.ok, **ERROR_RESPONSES},
    }
    if op.auth.value != "none":
        # strict: a valid signature is required; passive: anonymous is allowed, a bad one is a 401.
        out["security"] = (
            [{"httpSignature": []}] if op.auth.value == "strict" else [{"httpSignature": []}, {}]
        )
    if doc.body is not None:
        out["requestBody"] = doc.body
    return out


def build_document(routes: tuple[Route, ...] = ROUTES, *, version: str = "2.0.0") -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``routes``. Raises ``KeyError`` for an undescribed operation."""
    paths: dict[str, Any] = {}
    for route in routes:
        item = paths.setdefault(openapi_path(route.pattern), {})
        for method in route.ops:
            item[method.lower()] = _operation(route, method, DOCS[(route.pattern, method)])
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "IMGAPI",
            "version": version,
            "description": "The IMGAPI REST surface (Joyent's Images API, REST versions 1.0.0 and 2.0.0) "
            "with this implementation's additions (tus uploads, replication jobs, emulated jobs).",
        },
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "httpSignature": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": 'HTTP Signature (authType signature): Signature keyId="<username>",'
                    'algorithm="rsa-sha256",headers="date",signature="<base64>", over the signed Date '
                    "header; with authType none nothing is checked.",
                }
            },
            "responses": {
                "Error": {
                    "description": "an IMGAPI error",
                    "content": {JSON: {"schema": ref("Error")}},
                }
            },
        },
    }


def undocumented(routes: tuple[Route, ...] = ROUTES) -> set[tuple[str, str]]:
    """Operations of the table without a description (must be empty)."""
    return {(r.pattern, m) for r in routes for m in r.ops} - set(DOCS)


def unrouted(routes: tuple[Route, ...] = ROUTES) -> set[tuple[str, str]]:
    """Descriptions of operations the table does not have (must be empty)."""
    return set(DOCS) - {(r.pattern, m) for r in routes for m in r.ops}
