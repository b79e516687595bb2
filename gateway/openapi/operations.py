"""One description per ``(pattern, method)`` of the route table (:data:`gateway.routes.table.ROUTES`):
what the table does not know about an operation (summary, query parameters, headers, request body,
answers). :mod:`gateway.openapi.document` assembles the document from them."""

from __future__ import annotations

from gateway.openapi.parts import (
    ACCOUNT,
    BOOL,
    CHANNEL,
    COMPRESSION,
    CONTENT_MD5,
    DATASET_GUID,
    IF_MATCH,
    IF_NONE_MATCH,
    IMAGE_ACTIONS,
    IMAGE_OK,
    IMAGE_QUERY,
    INCL_ADMIN,
    NOT_MODIFIED,
    RANGE,
    REDIRECT,
    SHA1,
    SKIP_OWNER_CHECK,
    SOURCE,
    STORAGE,
    STR,
    TUS_RESUMABLE,
    Doc,
    h,
    json_body,
    ok_empty,
    ok_json,
    q,
    raw_body,
)
from gateway.openapi.schemas import ref
from imgapi_common.manifest_fields import COMPRESSIONS, UUID

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
            q("compression", {"enum": list(COMPRESSIONS)}, "or Upload-Metadata compression"),
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
