"""The catalog's operations: every IMGAPI rule about manifests, state, visibility, ACLs and channels.

Transport-free: callers pass plain values (:class:`Caller`, :class:`View`) and get plain values
back; failures are :class:`~imgapi_common.errors.ImgapiError`. Each mutation is one database
transaction that re-reads the record, applies the rule, and writes conditionally on the revision it
read (retrying on a lost race), appending to the change feed in the same transaction.
"""

from __future__ import annotations

import contextlib
import copy
import json
import re
import uuid as uuidlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import Connection, Engine

from catalog_service import list_params
from catalog_service.clock import now_timestamp
from catalog_service.db.listing import ListQuery
from catalog_service.db.repository import (
    Change,
    ImageRepository,
    StoredImage,
    blob_ids_of,
    db_text,
    dump_record,
    load_record,
    published_sort_key,
)
from catalog_service.domain.bounds import bound_errors
from catalog_service.domain.config import DomainConfig
from catalog_service.domain.image import ZERO_UUID, Image, check_account, check_uuid_list, walk_origins
from catalog_service.domain.jsvalues import (
    is_uuid,
    js_key_order,
    js_parse_int,
    js_string,
    truthy,
)
from catalog_service.domain.serialize import compact_json, etag_of, serialize_image
from catalog_service.domain.update import apply_update
from catalog_service.domain.upgrade import upgrade_dataset_manifest
from catalog_service.domain.validation import (
    COMPRESSIONS,
    MAX_FILE_SIZE,
    MAX_ICON_SIZE,
    build_record,
    check_create_body,
    image_data_error,
    validate_record,
)
from catalog_service.preconditions import Conditions, evaluate
from catalog_service.settings import CatalogSettings
from catalog_service.unit_of_work import UnitOfWork
from imgapi_common.errors import FieldError, ImgapiError, invalid_parameter, not_found, validation_failed
from imgapi_common.limits import MAX_CLIENT_IMAGE_BYTES, MAX_IMAGE_BYTES

ICON_TYPES = ("image/jpeg", "image/gif", "image/png")
NO_CONDITIONS = Conditions()


@dataclass(frozen=True)
class Caller:
    """Who is calling: raw ``account``/``channel`` query values, authentication facts."""

    account: str = ""
    channel: str = ""
    authenticated: bool = False
    user_agent: str = ""
    #: ``account`` was given, even empty: a user request (an empty account owns nothing).
    account_present: bool = False

    @property
    def user_account(self) -> str | None:
        """The account of a user request (possibly ""), None for an operator request."""
        return self.account if self.account or self.account_present else None


@dataclass(frozen=True)
class View:
    include_channels: bool = True
    include_admin_fields: bool = False


@dataclass(frozen=True)
class Rendered:
    """An image as returned to callers: the stored record and its REST view for one request."""

    record: dict[str, Any]
    view_json: str
    etag: str
    revision: int
    not_modified: bool = False
    orphaned_blob_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class UploadPlan:
    record: dict[str, Any]
    max_size: int
    stor: str


class AccountRegistry:
    """Known accounts (spec README §2). Without a file every well-formed UUID exists."""

    def __init__(self, path: Path | None) -> None:
        self._accounts: frozenset[str] | None = None
        if path is not None:
            lines = path.read_text().splitlines()
            self._accounts = frozenset(
                ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith("#")
            )

    @property
    def configured(self) -> bool:
        return self._accounts is not None

    def exists(self, account: str) -> bool:
        return self._accounts is None or account in self._accounts


MAX_JSON_DEPTH = 64


def _reject_constant(name: str) -> Any:
    raise ImgapiError("InvalidContent", f"Invalid JSON: {name} is not a JSON value")


def _check_json_value(value: Any) -> None:
    """Reject absurd nesting (iterative, so deep input cannot exhaust the stack). Lone
    surrogates (escaped ``\\ud800``) are values like any other here: validation sees them as the
    reference does, and only storing one is refused (:func:`lone_surrogate_error`)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        v, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise ImgapiError("InvalidContent", f"Invalid JSON: nested deeper than {MAX_JSON_DEPTH} levels")
        if isinstance(v, dict):
            stack.extend((x, depth + 1) for x in v.values())
        elif isinstance(v, list):
            stack.extend((x, depth + 1) for x in v)


def _has_lone_surrogate(value: Any) -> bool:
    stack: list[Any] = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            if not v.isascii():
                try:
                    v.encode("utf-8")
                except UnicodeEncodeError:
                    return True
        elif isinstance(v, dict):
            stack.extend(v.keys())
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
    return False


def lone_surrogate_error() -> ImgapiError:
    """A valid record holding a lone UTF-16 surrogate cannot be stored: the database and the
    services' protobuf strings carry UTF-8 only (docs/compatibility.md)."""
    return ImgapiError("InvalidContent", "Invalid JSON: a string holds a lone UTF-16 surrogate")


def _parse_json(text: str) -> tuple[bool, Any]:
    """(present, value): an empty text is an absent body. Strict JSON (no NaN/Infinity)."""
    if text == "":
        return False, None
    try:
        value = json.loads(
            text, parse_constant=_reject_constant, parse_int=js_parse_int, object_pairs_hook=js_key_order
        )
    except RecursionError:
        raise ImgapiError("InvalidContent", "Invalid JSON: nested too deeply") from None
    _check_json_value(value)
    return True, value


class CatalogService:
    def __init__(self, settings: CatalogSettings, engine: Engine) -> None:
        self.settings = settings
        self.engine = engine
        self.cfg = DomainConfig(
            mode=settings.mode,
            channels=tuple(c.name for c in settings.channels),
            admin_uuid=settings.admin_uuid,
        )
        self.repo = ImageRepository(self.cfg)
        self.registry = AccountRegistry(settings.account_registry_file)
        self._dialect = engine.dialect.name
        self.uow = UnitOfWork(engine)

    # --- infrastructure ---------------------------------------------------------------------

    def config_fingerprint(self) -> str:
        return json.dumps(
            {"mode": self.cfg.mode, "channels": list(self.cfg.channels), "max_image_bytes": MAX_IMAGE_BYTES}
        )

    def revalidate_if_config_changed(self) -> int:
        """Re-check every record's validity when mode or channels changed since the last start."""
        fp = self.config_fingerprint()
        with self.uow.transaction() as conn:
            if self.repo.get_meta(conn, "config_fingerprint") == fp:
                return 0
            n = 0
            for uuid, rec, was_valid in self.repo.all_records(conn):
                valid = self.is_valid(rec)
                self.repo.refresh_derived(conn, uuid, rec, valid)
                n += valid != was_valid
            self.repo.set_meta(conn, "config_fingerprint", fp)
            return n

    def is_valid(self, rec: Mapping[str, Any]) -> bool:
        """Whether a stored record is served: it passes validation and fits the size bounds (a
        record stored before the bounds existed is invisible rather than breaking listings)."""
        return not validate_record(rec, self.cfg) and not bound_errors(rec)

    def _admit(self, rec: Mapping[str, Any], *, client: bool = True) -> bool:
        """Refuse a write whose result breaks a size bound (docs/limits.md), before it commits,
        so its answer can always be sent; else the record's validity. Client writes must leave
        the room the server's own additions (file, icon, publication) need."""
        errs = bound_errors(rec, MAX_CLIENT_IMAGE_BYTES if client else MAX_IMAGE_BYTES)
        if errs:
            raise image_data_error(errs)
        if _has_lone_surrogate(rec):
            raise lone_surrogate_error()
        return not validate_record(rec, self.cfg)

    def store_raw(self, rec: Mapping[str, Any]) -> None:
        """Insert a record in stored form as is (seeding, benchmarks); validity is computed."""
        with self.uow.transaction() as conn:
            self.repo.insert(conn, rec, self.is_valid(rec))

    def store_many(self, recs: Sequence[Mapping[str, Any]]) -> None:
        """Bulk-insert stored-form records in one transaction (seeding, benchmarks)."""
        with self.uow.transaction() as conn:
            self.repo.insert_many(conn, [(r, self.is_valid(r)) for r in recs])

    # --- rendering --------------------------------------------------------------------------

    def render(
        self,
        rec: dict[str, Any],
        view: View,
        revision: int,
        *,
        orphaned: Sequence[str] = (),
        not_modified: bool = False,
    ) -> Rendered:
        base = serialize_image(
            rec, self.cfg, include_channels=view.include_channels, include_admin_fields=False
        )
        etag = etag_of(base)
        shown = (
            serialize_image(rec, self.cfg, include_channels=view.include_channels, include_admin_fields=True)
            if view.include_admin_fields
            else base
        )
        return Rendered(rec, compact_json(shown), etag, revision, not_modified, tuple(orphaned))

    def _etag(self, rec: Mapping[str, Any], view: View) -> str:
        return etag_of(
            serialize_image(rec, self.cfg, include_channels=view.include_channels, include_admin_fields=False)
        )

    # --- request steps (endpoints.md §1.2) ----------------------------------------------------

    def resolve_channel(self, raw: str, *, write: bool) -> str | None:
        if not self.cfg.channels_enabled:
            return None
        if raw == "":
            default = self.settings.default_channel
            if default is None:
                raise validation_failed(
                    "channel not specified and the server has no default channel",
                    [FieldError("channel", "MissingParameter")],
                )
            return default
        if raw == "*" and not write:
            return None
        if raw not in self.cfg.channels:
            raise validation_failed(f"unknown channel: {raw}", [FieldError("channel", "Invalid")])
        return raw

    @staticmethod
    def check_account(raw: str) -> str | None:
        return None if raw == "" else check_account(raw)

    def _load(self, conn: Connection, uuid: str, caller: Caller, channel: str | None) -> StoredImage:
        account = self.check_account(caller.account)
        if account is None:
            account = caller.user_account
        row = self.repo.get(conn, uuid) if is_uuid(uuid) else None  # no stored image has another id
        if row is None or not row.valid:
            raise not_found(f"image {uuid} not found")
        img = Image(row.record)
        if channel is not None and not img.in_channel(channel):
            raise not_found("image not found")
        if account is not None and not img.visible_to(account):
            raise not_found("image not found")
        return row

    @staticmethod
    def _check_owner(rec: dict[str, Any], caller: Caller) -> None:
        Image(rec).check_owner(caller.user_account, caller.account)

    def _admin_fields(self, raw: str, caller: Caller) -> bool:
        value = list_params.parse_bool_param("inclAdminFields", raw)
        if value and self.cfg.mode != "dc" and not caller.authenticated:
            raise ImgapiError(
                "UnauthorizedError", 'Unauthorized (auth required to use "inclAdminFields" parameter)'
            )
        return bool(value)

    # --- reads ------------------------------------------------------------------------------

    def get_image(
        self,
        uuid: str,
        caller: Caller,
        view: View,
        incl_admin_fields: str = "",
        cond: Conditions = NO_CONDITIONS,
        subject: Literal["image", "file", "icon"] = "image",
    ) -> Rendered:
        channel = self.resolve_channel(caller.channel, write=False)
        with self.uow.read() as conn:
            row = self._load(conn, uuid, caller, channel)
        admin = self._admin_fields(incl_admin_fields, caller) or view.include_admin_fields
        view = View(view.include_channels, admin)
        if admin:
            rendered = self.render(row.record, view, row.revision)
        else:
            v1, e1, v2, e2 = row.views
            text, etag = (v2, e2) if view.include_channels else (v1, e1)
            rendered = Rendered(row.record, text, etag, row.revision)
        last_modified = None
        if subject == "file":
            files = row.record.get("files") or []
            last_modified = files[0].get("mtime") if files and isinstance(files[0], dict) else None
        elif subject == "icon":
            icon = row.record.get("icon")
            last_modified = icon.get("mtime") if isinstance(icon, dict) else None
        if evaluate(cond, rendered.etag, is_get=True, last_modified=last_modified):
            return Rendered(rendered.record, rendered.view_json, rendered.etag, rendered.revision, True)
        return rendered

    def list_images(
        self,
        caller: Caller,
        view: View,
        *,
        owner: str = "",
        name: str = "",
        version: str = "",
        state: str = "",
        public: str = "",
        os: str = "",
        type: str = "",
        tags: Mapping[str, str] | None = None,
        billing_tags: Sequence[str] = (),
        limit: str = "",
        marker: str = "",
        sort: str = "",
        incl_admin_fields: str = "",
        full_records: bool = True,
    ) -> list[Rendered]:
        channel = self.resolve_channel(caller.channel, write=False)
        admin = self._admin_fields(incl_admin_fields, caller) or view.include_admin_fields
        view = View(view.include_channels, admin)
        n = list_params.parse_limit(limit)
        st = list_params.parse_state(state)
        if self.cfg.mode != "dc" and not caller.authenticated:
            if st in ("disabled", "unactivated", "creating", "failed"):
                return []
            if st == "all":
                st = "active"
        pub = list_params.parse_bool_param("public", public)
        descending = list_params.parse_sort(sort)
        with self.uow.read() as conn:
            mk: tuple[str, str | None] | None = None
            if marker != "":
                if list_params.is_uuid_marker(marker):
                    sort_key = self.repo.published_sort_of(conn, marker)
                    if sort_key is None:
                        raise not_found(f"image {marker} not found")
                    mk = (sort_key, marker)
                else:
                    date = list_params.parse_date_marker(marker)
                    if date is None:
                        raise list_params.bad_marker(marker)
                    mk = (published_sort_key(date), None)
            q = ListQuery(
                state=st,
                account=None if caller.user_account is None else db_text(caller.user_account),
                owner=db_text(owner) or None,
                name=list_params.text_match(name, allow_substring=True),
                version=list_params.text_match(version, allow_substring=True),
                os=db_text(os) or None,
                type=list_params.text_match(type, allow_negate=True),
                public=pub,
                tags=list_params.tag_filters(tags or {}),
                billing_tags=list_params.billing_filters(billing_tags),
                channel=channel,
                limit=n,
                descending=descending,
                marker=mk,
            )
            full = full_records or view.include_admin_fields
            rows = self.repo.list_rows(
                conn, q, self._dialect, include_channels=view.include_channels, full=full
            )
        if view.include_admin_fields:
            return [self.render(load_record(r.record), view, int(r.revision)) for r in rows]
        return [
            Rendered(load_record(r.record) if full else {"uuid": r.uuid}, r.view, r.etag, int(r.revision))
            for r in rows
        ]

    def server_channels(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for c in self.settings.channels:
            d: dict[str, Any] = {"name": c.name, "description": c.description}
            if c.default:
                d["default"] = True
            out.append(d)
        return out

    # --- the mutation loop --------------------------------------------------------------------

    def _mutate(
        self,
        uuid: str,
        caller: Caller,
        view: View,
        change: Callable[[Connection, dict[str, Any]], tuple[dict[str, Any], str]],
        *,
        cond: Conditions | None = None,
        check_owner: bool = True,
        client: bool = True,
    ) -> Rendered:
        """Load (+owner, +cond), apply ``change`` to a copy and write it conditionally; retry races.
        ``client``: the change writes client data (not only the server's own fields)."""
        channel = self.resolve_channel(caller.channel, write=True)

        def attempt(conn: Connection) -> Rendered:
            if is_uuid(uuid):
                # Writers of one image queue on its row lock (PostgreSQL) instead of
                # spinning on revision conflicts; the conditional UPDATE stays the guard.
                self.repo.lock(conn, uuid, shared=False)
            row = self._load(conn, uuid, caller, channel)
            if check_owner:
                self._check_owner(row.record, caller)
            if cond is not None:
                evaluate(cond, self._etag(row.record, view), is_get=False)
            new, kind = change(conn, copy.deepcopy(row.record))
            if new["uuid"] != uuid:
                self.repo.delete(conn, uuid, row.revision)
                revision = self.repo.insert(conn, new, self._admit(new, client=client), kind=kind)
            else:
                revision = self.repo.update(conn, new, row.revision, self._admit(new, client=client), kind)
            orphaned = self.repo.unreferenced(conn, blob_ids_of(row.record) - blob_ids_of(new))
            return self.render(new, view, revision, orphaned=orphaned)

        return self.uow.run("updating", uuid, attempt)

    # --- state transitions ----------------------------------------------------------------------

    def activate(self, uuid: str, caller: Caller, view: View, cond: Conditions = NO_CONDITIONS) -> Rendered:
        def change(_: Connection, rec: dict[str, Any]) -> tuple[dict[str, Any], str]:
            Image(rec).activate(now_timestamp())
            return rec, "activate"

        return self._mutate(uuid, caller, view, change, cond=cond, client=False)

    def set_disabled(
        self, uuid: str, caller: Caller, view: View, disabled: bool, cond: Conditions = NO_CONDITIONS
    ) -> Rendered:
        def change(_: Connection, rec: dict[str, Any]) -> tuple[dict[str, Any], str]:
            Image(rec).set_disabled(disabled)
            return rec, "disable" if disabled else "enable"

        return self._mutate(uuid, caller, view, change, cond=cond, client=False)

    def update(
        self, uuid: str, caller: Caller, view: View, update_json: str, cond: Conditions = NO_CONDITIONS
    ) -> Rendered:
        present, body = _parse_json(update_json)
        account = caller.user_account

        def change(conn: Connection, rec: dict[str, Any]) -> tuple[dict[str, Any], str]:
            new = apply_update(rec, body if present else None, self.cfg, account=account)
            if new.get("owner") != rec.get("owner"):  # (validated: a UUID when present)
                self._owner_must_exist(new.get("owner"))
            if new.get("uuid") != uuid and self.repo.exists(conn, str(new.get("uuid"))):
                raise ImgapiError("ImageUuidAlreadyExists", f'image uuid "{new.get("uuid")}" already exists')
            return new, "update"

        return self._mutate(uuid, caller, view, change, cond=cond)

    def channel_add(
        self, uuid: str, caller: Caller, view: View, body_json: str, cond: Conditions = NO_CONDITIONS
    ) -> Rendered:
        present, body = _parse_json(body_json)
        has_name = present and isinstance(body, dict) and "channel" in body
        name = body.get("channel") if has_name else None

        def change(_: Connection, rec: dict[str, Any]) -> tuple[dict[str, Any], str]:
            Image(rec).add_channel(name, self.cfg.channels, given=has_name)
            return rec, "channel"

        return self._mutate(uuid, caller, view, change, cond=cond)

    def change_acl(self, uuid: str, caller: Caller, view: View, acl_json: str, *, add: bool) -> Rendered:
        present, body = _parse_json(acl_json)

        def change(_: Connection, rec: dict[str, Any]) -> tuple[dict[str, Any], str]:
            accounts = check_uuid_list("acl", body if present else None)
            if add:
                Image(rec).add_to_acl(accounts)
            else:
                Image(rec).remove_from_acl(accounts)
            return rec, "acl"

        return self._mutate(uuid, caller, view, change)

    # --- files and icons ----------------------------------------------------------------------

    def prepare_upload(
        self,
        uuid: str,
        caller: Caller,
        *,
        icon: bool,
        compression: str = "",
        storage: str = "",
        content_type: str = "",
        content_length: str = "",
    ) -> UploadPlan:
        channel = self.resolve_channel(caller.channel, write=True)
        with self.uow.read() as conn:
            row = self._load(conn, uuid, caller, channel)
        rec = row.record
        self._check_owner(rec, caller)
        if icon:
            if content_type not in ICON_TYPES:
                raise ImgapiError(
                    "Upload",
                    f"invalid content-type, {content_type}, must be one of {', '.join(ICON_TYPES)}",
                )
        else:
            Image(rec).require_files_mutable()
            if compression == "":
                raise invalid_parameter('missing "compression"', [FieldError("compression", "Missing")])
            if compression not in COMPRESSIONS:
                raise invalid_parameter(
                    f'invalid compression "{compression}" (must be one of gzip, bzip2, xz, none)',
                    [FieldError("compression", "Invalid")],
                )
        stor = self.check_storage(storage, caller)
        max_size = MAX_ICON_SIZE if icon else MAX_FILE_SIZE
        if content_length.strip().isdigit() and int(content_length) > max_size:
            what = "icon" if icon else "file"
            raise ImgapiError(
                "Upload",
                f"{what} size, {int(content_length)}, exceeds the maximum allowed {what} size, {max_size}",
            )
        return UploadPlan(rec, max_size, stor)

    def check_storage(self, storage: str, caller: Caller) -> str:
        if storage == "":
            return self.settings.default_storage
        if caller.user_account is not None:
            raise invalid_parameter(
                f'invalid storage "{storage}"',
                [FieldError("storage", "NotAllowed", "Parameter cannot be specified by non-operators")],
            )
        if storage not in self.settings.storage_names:
            raise invalid_parameter(
                f'invalid storage "{storage}" (must be one of {", ".join(self.settings.storage_names)})',
                [FieldError("storage", "Invalid")],
            )
        return self.settings.default_storage

    def attach_file(self, uuid: str, caller: Caller, view: View, entry: Mapping[str, Any]) -> Rendered:
        def change(_: Connection, rec: dict[str, Any]) -> tuple[dict[str, Any], str]:
            Image(rec).attach_file(entry, now=now_timestamp(), default_stor=self.settings.default_storage)
            return rec, "file"

        return self._mutate(uuid, caller, view, change, client=False)

    def detach_file(self, uuid: str, caller: Caller, view: View) -> Rendered:
        def change(_: Connection, rec: dict[str, Any]) -> tuple[dict[str, Any], str]:
            Image(rec).detach_file()
            return rec, "file"

        return self._mutate(uuid, caller, view, change, client=False)

    def attach_icon(self, uuid: str, caller: Caller, view: View, entry: Mapping[str, Any]) -> Rendered:
        def change(_: Connection, rec: dict[str, Any]) -> tuple[dict[str, Any], str]:
            Image(rec).attach_icon(entry, now=now_timestamp(), default_stor=self.settings.default_storage)
            return rec, "icon"

        return self._mutate(uuid, caller, view, change, client=False)

    def detach_icon(self, uuid: str, caller: Caller, view: View) -> Rendered:
        def change(_: Connection, rec: dict[str, Any]) -> tuple[dict[str, Any], str]:
            Image(rec).detach_icon()
            return rec, "icon"

        return self._mutate(uuid, caller, view, change, client=False)

    # --- create / import / clone / delete --------------------------------------------------------

    def _owner_must_exist(self, owner: Any) -> None:
        if (
            self.cfg.mode == "dc"
            and self.registry.configured
            and is_uuid(owner)
            and not self.registry.exists(owner)
        ):
            raise ImgapiError("OwnerDoesNotExist", f'owner "{owner}" does not exist')

    def _origin_must_exist(self, conn: Connection, origin: Any) -> None:
        # A shared lock on the origin row: a concurrent DeleteImage of the origin (which locks it
        # exclusively before counting dependents) either sees this new dependent or makes it fail.
        if truthy(origin) and not (is_uuid(origin) and self.repo.lock(conn, origin, shared=True)):
            raise ImgapiError("OriginDoesNotExist", f'origin image "{js_string(origin)}" does not exist')

    def create(self, caller: Caller, view: View, manifest_json: str) -> Rendered:
        channel = self.resolve_channel(caller.channel, write=True)
        present, body = _parse_json(manifest_json)
        body = check_create_body(body if present else None, self.cfg, account=caller.user_account)
        self._owner_must_exist(body.get("owner"))
        with self.uow.transaction() as conn:
            self._origin_must_exist(conn, body.get("origin"))
            rec = build_record(
                body,
                self.cfg,
                for_import=False,
                new_uuid=str(uuidlib.uuid4()),
                channels=None if channel is None else [channel],
            )
            self.repo.insert(conn, rec, self._admit(rec))
        return self.render(rec, view, 1)

    def admin_import(
        self,
        uuid: str,
        caller: Caller,
        view: View,
        manifest_json: str,
        *,
        skip_owner_check: str = "",
        from_source: bool = False,
    ) -> Rendered:
        channel = self.resolve_channel(caller.channel, write=True)
        if caller.user_account is not None:
            raise ImgapiError("OperatorOnly", "this endpoint may only be called by an operator")
        present, body = _parse_json(manifest_json)
        if not present or not isinstance(body, dict):
            body = {}
        if self.cfg.mode != "dc":
            # The owner is forced before the SDC 6 upgrade (as the reference does), so a v1
            # manifest on a public/private server fails its upgrade: extra parameters.
            body = {**body, "owner": ZERO_UUID}
        if "v" not in body and "creator_uuid" in body:
            with contextlib.suppress(ValueError):
                body = upgrade_dataset_manifest(body)
        if body.get("uuid") != uuid:
            # as JavaScript prints it: an absent uuid is undefined, a null one null
            shown = js_string(body["uuid"]) if "uuid" in body else "undefined"
            raise invalid_parameter(
                f'URL UUID, "{uuid}" and body UUID, "{shown}" do not match',
                [FieldError("uuid", "Invalid")],
            )
        skip = list_params.parse_bool_param("skip_owner_check", skip_owner_check)
        body = dict(body)
        body.pop("channels", None)

        def attempt(conn: Connection) -> Rendered:
            existing = self.repo.get(conn, uuid) if is_uuid(uuid) else None
            if existing is not None and (from_source or existing.record.get("state") != "creating"):
                raise ImgapiError("ImageUuidAlreadyExists", f'image uuid "{uuid}" already exists')
            self._origin_must_exist(conn, body.get("origin"))
            if self.cfg.mode == "dc":
                if body.get("owner") == ZERO_UUID:
                    if self.cfg.admin_uuid:
                        body["owner"] = self.cfg.admin_uuid
                elif not skip:
                    self._owner_must_exist(body.get("owner"))
            else:
                body["owner"] = ZERO_UUID
            self._lx_workaround(conn, body, caller.user_agent)
            rec = build_record(
                body, self.cfg, for_import=True, channels=None if channel is None else [channel]
            )
            admitted = self._admit(rec)
            if existing is not None:
                self.repo.delete(conn, uuid, existing.revision)
            self.repo.insert(conn, rec, admitted, kind="create")
            return self.render(rec, view, 1)

        return self.uow.run("importing", uuid, attempt)

    _IMGADM_UA = re.compile(r"^imgadm/(\d+)\.(\d+)\.(\d+) ")

    def _lx_workaround(self, conn: Connection, body: dict[str, Any], user_agent: str) -> None:
        """endpoints.md §2.5 step 8: old imgadm versions mis-handle lx min_platform."""
        req = body.get("requirements")
        if body.get("type") != "lx-dataset" or not isinstance(req, dict) or "min_platform" not in req:
            return
        m = self._IMGADM_UA.match(user_agent)
        if not m or tuple(int(x) for x in m.groups()) >= (3, 7, 4):
            return
        req = dict(req)
        origin = body.get("origin")
        origin_row = self.repo.get(conn, origin) if isinstance(origin, str) and is_uuid(origin) else None
        origin_req = origin_row.record.get("requirements") if origin_row else None
        if isinstance(origin_req, dict) and "min_platform" in origin_req:
            req["min_platform"] = origin_req["min_platform"]
        else:
            del req["min_platform"]
        body["requirements"] = req

    def clone(self, uuid: str, caller: Caller, view: View) -> Rendered:
        if self.cfg.mode != "dc":
            raise not_found(f"/images/{uuid}/clone does not exist")
        channel = self.resolve_channel(caller.channel, write=True)
        with self.uow.transaction() as conn:
            row = self._load(conn, uuid, caller, channel)
            account = check_account(caller.account)
            src = row.record
            if not Image(src).is_activated:
                raise validation_failed("image is not active", [FieldError("active", "Invalid")])
            if not Image(src).shared_with(account):
                raise ImgapiError("ImageNotShared", f"image {uuid} is not shared with account {account}")
            if src.get("type") == "docker":
                raise validation_failed("image is a docker image", [FieldError("type", "Invalid")])
            if isinstance(src.get("files"), list) and len(src["files"]) > 1:
                raise ImgapiError("NotImplemented", "cannot clone an image with multiple files")

            def load(origin: str) -> dict[str, Any] | None:
                origin_row = self.repo.get(conn, origin)
                return origin_row.record if origin_row is not None and origin_row.valid else None

            # the user-owned origins are cloned too, root first, on top of the operator's base
            chain, base = walk_origins(
                src.get("origin"), load, stop=lambda _u, o: o.get("owner") in (self.cfg.admin_uuid, ZERO_UUID)
            )
            prev = base
            sources = [*reversed(chain), src]
            for i, s in enumerate(sources):
                c = {
                    k: copy.deepcopy(v)
                    for k, v in s.items()
                    if k not in ("uuid", "acl", "published_at", "icon", "urn", "expires_at")
                }
                c["uuid"] = str(uuidlib.uuid4())
                c["owner"] = account
                if prev is not None:
                    c["origin"] = prev
                else:
                    c.pop("origin", None)
                if i < len(sources) - 1:
                    c["disabled"] = True
                c["acl"] = []
                c["activated"] = True
                c["published_at"] = now_timestamp()
                Image(c).recompute_state()
                # the clone is a new record in stored order: uuid first
                c = {"v": c.pop("v", 2), "uuid": c.pop("uuid"), **c}
                # a clone is activated: it needs a file, and must be a valid record (never stored
                # invisible); any failure rolls back the clones created so far
                Image(c).require_file()
                problems = validate_record(c, self.cfg)
                if problems:
                    raise image_data_error(problems)
                self.repo.insert(conn, c, self._admit(c, client=False), kind="create")
                prev = c["uuid"]
            last = c
        return self.render(last, view, 1)

    def delete(self, uuid: str, caller: Caller, force_all_channels: str = "") -> tuple[bool, list[str]]:
        channel = self.resolve_channel(caller.channel, write=True)

        def attempt(conn: Connection) -> tuple[bool, list[str]]:
            if is_uuid(uuid):  # no new dependent can appear until we commit
                self.repo.lock(conn, uuid, shared=False)
            row = self._load(conn, uuid, caller, channel)
            self._check_owner(row.record, caller)
            force = list_params.parse_bool_param("force_all_channels", force_all_channels)
            deps = self.repo.dependents(conn, uuid, channel)
            if deps:
                shown = (
                    ", ".join(deps)
                    if len(deps) < 10
                    else ", ".join(deps[:5]) + f", and {len(deps) - 5} more..."
                )
                raise ImgapiError(
                    "ImageHasDependentImages",
                    f'image "{uuid}" has {len(deps)} dependent incremental image(s): {shown}',
                )
            chans = row.record.get("channels")
            if channel is not None and isinstance(chans, list) and len(chans) > 1 and not force:
                img = Image(copy.deepcopy(row.record))
                img.remove_channel(channel)
                self.repo.update(conn, img.record, row.revision, self.is_valid(img.record), "channel")
                return False, []
            self.repo.delete(conn, uuid, row.revision)
            return True, self.repo.unreferenced(conn, blob_ids_of(row.record))

        return self.uow.run("deleting", uuid, attempt)

    # --- housekeeping ---------------------------------------------------------------------------

    def reap_placeholders(self, now: datetime | None = None) -> list[str]:
        """Delete ``creating``/``failed`` placeholders whose ``expires_at`` passed; returns orphan blobs."""
        now_text = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S")
        orphans: list[str] = []
        with self.uow.transaction() as conn:
            for uuid, revision, rec in self.repo.expired_placeholders(conn, now_text):
                self.repo.delete(conn, uuid, revision)
                orphans += self.repo.unreferenced(conn, blob_ids_of(rec))
        return orphans

    # --- change feed ----------------------------------------------------------------------------

    def changes_after(self, cursor: int, limit: int = 500) -> list[Change]:
        with self.uow.read() as conn:
            return self.repo.changes_after(conn, cursor, limit)

    def changes_head(self) -> int:
        """The newest cursor of the feed (0 when empty)."""
        with self.uow.read() as conn:
            return self.repo.changes_head(conn)

    def follow_changes(
        self, cursor: int, *, replay_only: bool, is_active: Callable[[], bool], poll_seconds: float = 0.25
    ) -> Iterator[Change]:
        """Replay the feed after ``cursor``, then follow it (other replicas' writes are polled)."""
        while is_active():
            batch = self.changes_after(cursor)
            for ch in batch:
                yield ch
                cursor = ch.cursor
            if batch:
                continue
            if replay_only:
                return
            self.uow.wait_for_change(poll_seconds)

    @staticmethod
    def dump(rec: Mapping[str, Any]) -> str:
        return dump_record(rec)
