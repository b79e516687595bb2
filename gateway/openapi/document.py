"""The OpenAPI 3.1 document of the REST surface, served at ``GET /openapi.json``.

Paths and methods come from the route table (:data:`gateway.routes.table.ROUTES`); what the table does not
know about each operation is in :data:`gateway.openapi.operations.DOCS`, the bodies' JSON Schemas in
:mod:`gateway.openapi.schemas`. :func:`build_document` refuses a route without a description and a description
without a route, so the document cannot drift from what the gateway serves. The served document
covers the routes mounted for this server's configuration (e.g. ``/channels`` only with channels).

Every operation answers errors as the IMGAPI error body (``#/components/schemas/Error``); the 4XX
and 5XX ranges are declared on each operation.
"""

from __future__ import annotations

from typing import Any

from gateway.openapi.operations import DOCS
from gateway.openapi.parts import ACCEPT_VERSION, ERROR_RESPONSES, JSON, STR, Doc
from gateway.openapi.schemas import SCHEMAS, ref
from gateway.routes.table import ROUTES, Route
from imgapi_common.manifest_fields import UUID, Schema

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
