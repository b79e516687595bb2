"""THE route table of the IMGAPI REST surface, and path matching.

Each row: path pattern, then one operation per method in ``Allow``-header order. An operation holds
its handler (the ``async def handler(ctx) -> Response`` itself), its auth mode (strict / passive /
none) and whether the JSON body is parsed right after the channel step (``body=True``).

Patterns: ``:name`` matches one segment (any characters but ``/``, possibly empty); a final
``...`` matches any rest. A trailing slash is significant. Routes with ``when`` are mounted only
for that server configuration (CloneImage in dc mode, ListChannels with channels, the replication
routes with ``replication_target``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from imgapi.v1 import catalog_pb2
from starlette.responses import Response

from gateway.context import RequestContext
from gateway.http.auth import AuthMode
from gateway.routes import (
    acl,
    actions,
    admin,
    compat,
    files,
    images,
    openapi_json,
    replication_jobs,
    tus,
    workflow_jobs,
)
from gateway.settings import GatewaySettings

Handler = Callable[[RequestContext], Awaitable[Response]]
Condition = Callable[[catalog_pb2.ServerConfig, GatewaySettings], bool]

STRICT, PASSIVE, NONE = AuthMode.STRICT, AuthMode.PASSIVE, AuthMode.NONE


@dataclass(frozen=True)
class Op:
    handler: Handler
    auth: AuthMode
    body: bool = False


@dataclass(frozen=True)
class Route:
    pattern: str
    ops: dict[str, Op]
    when: Condition | None = None
    segments: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "segments", tuple(self.pattern.split("/")[1:]))


def R(pattern: str, when: Condition | None = None, **ops: Op) -> Route:
    return Route(pattern, ops, when)


def dc_only(c: catalog_pb2.ServerConfig, s: GatewaySettings) -> bool:
    return c.mode == "dc"


def with_channels(c: catalog_pb2.ServerConfig, s: GatewaySettings) -> bool:
    return len(c.channels) > 0


def with_replication(c: catalog_pb2.ServerConfig, s: GatewaySettings) -> bool:
    return bool(s.replication_target) and s.replication_routes


# fmt: off
ROUTES: tuple[Route, ...] = (
    R("/images",
      GET=Op(images.list_images, PASSIVE),                  # ListImages
      POST=Op(images.create_image, STRICT, body=True)),     # CreateImage (+ ?action=)
    R("/images/:uuid",
      GET=Op(images.get_image, PASSIVE),                    # GetImage
      POST=Op(actions.image_action, STRICT, body=True),     # ?action= dispatcher
      DELETE=Op(images.delete_image, STRICT)),              # DeleteImage
    R("/images/:uuid/file",
      PUT=Op(files.add_image_file, STRICT),                 # AddImageFile (+ ?source=)
      GET=Op(files.get_image_file, NONE)),                  # GetImageFile
    R("/images/:uuid/file/from-url",
      POST=Op(files.add_image_file_from_url, STRICT)),      # AddImageFileFromUrl
    R("/images/:uuid/file/uploads",
      POST=Op(tus.create_upload, STRICT),                   # tus creation (addition)
      OPTIONS=Op(tus.options, NONE)),
    R("/images/:uuid/file/uploads/:upload_id",
      HEAD=Op(tus.head_upload, STRICT),                     # tus core (addition)
      PATCH=Op(tus.patch_upload, STRICT),
      DELETE=Op(tus.delete_upload, STRICT),                 # tus termination
      OPTIONS=Op(tus.options, NONE)),
    R("/images/:uuid/icon",
      PUT=Op(files.add_image_icon, STRICT),                 # AddImageIcon
      GET=Op(files.get_image_icon, NONE),                   # GetImageIcon
      DELETE=Op(files.delete_image_icon, STRICT)),          # DeleteImageIcon
    R("/images/:uuid/acl",
      POST=Op(acl.image_acl, STRICT, body=True)),           # Add/RemoveImageAcl
    R("/images/:uuid/jobs",
      GET=Op(images.list_image_jobs, NONE)),                # ListImageJobs
    R("/images/:uuid/push",
      POST=Op(images.push_docker_image, STRICT, body=True)),  # AdminPushDockerImage
    R("/images/:uuid/clone", dc_only,
      POST=Op(images.clone_image, STRICT)),                 # CloneImage
    R("/channels", with_channels,
      GET=Op(admin.list_channels, PASSIVE)),                # ListChannels
    R("/replication/jobs", with_replication,
      GET=Op(replication_jobs.list_jobs, STRICT),                # replication jobs (addition)
      POST=Op(replication_jobs.create_job, STRICT, body=True)),
    R("/replication/jobs/:job_id", with_replication,
      GET=Op(replication_jobs.get_job, STRICT),
      POST=Op(replication_jobs.job_action, STRICT),              # ?action=pause|resume
      DELETE=Op(replication_jobs.delete_job, STRICT)),
    R("/ping",
      GET=Op(admin.ping, PASSIVE)),                         # Ping
    R("/state",
      GET=Op(admin.get_state, STRICT),                      # AdminGetState
      POST=Op(admin.update_state, STRICT)),                 # AdminUpdateState
    R("/authkeys/reload",
      POST=Op(admin.reload_auth_keys, STRICT)),             # AdminReloadAuthKeys
    R("/datasets",
      GET=Op(compat.list_datasets, NONE)),                  # SDC 6 redirect
    R("/datasets/:arg",
      GET=Op(compat.get_dataset, NONE)),                    # SDC 6 redirect
    R("/jobs/:job_uuid",
      GET=Op(workflow_jobs.get_job, NONE)),                          # emulated WFAPI
    R("/",
      GET=Op(compat.docs_redirect, NONE)),
    R("/docs",
      GET=Op(compat.docs_redirect, NONE)),
    R("/docs/...",
      GET=Op(compat.docs, NONE)),
    R("/favicon.ico",
      GET=Op(compat.favicon, NONE)),
    R("/openapi.json",
      GET=Op(openapi_json.openapi_document, NONE)),              # this API's OpenAPI 3.1 document
)
# fmt: on


@dataclass(frozen=True)
class Match:
    route: Route
    params: dict[str, str]


def match_path(routes: tuple[Route, ...], segments: list[str]) -> Match | None:
    """First route whose pattern matches the (decoded) path segments."""
    for route in routes:
        params = _match(route.segments, segments)
        if params is not None:
            return Match(route, params)
    return None


def _match(pattern: tuple[str, ...], segments: list[str]) -> dict[str, str] | None:
    params: dict[str, str] = {}
    if pattern and pattern[-1] == "...":
        if len(segments) < len(pattern) or any(
            p != s and not p.startswith(":") for p, s in zip(pattern[:-1], segments, strict=False)
        ):
            return None
        return params
    if len(pattern) != len(segments):
        return None
    for p, s in zip(pattern, segments, strict=True):
        if p.startswith(":"):
            params[p[1:]] = s
        elif p != s:
            return None
    return params


@dataclass(frozen=True)
class Mounted:
    """The routes of this server configuration."""

    routes: tuple[Route, ...]


def mount(
    config: catalog_pb2.ServerConfig, settings: GatewaySettings, routes: tuple[Route, ...] = ROUTES
) -> Mounted:
    return Mounted(tuple(r for r in routes if r.when is None or r.when(config, settings)))
