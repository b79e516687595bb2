"""What every handler shares: configuration, the repository and unit of work, loading an image as a
caller may see it, rendering, admission of a record to the store and the load-change-write loop."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Engine

from catalog_service.adapters.accounts import AccountRegistry
from catalog_service.adapters.db.repository import ImageRepository, StoredImage
from catalog_service.adapters.db.rows import Views, blob_ids_of, stored_views
from catalog_service.adapters.db.unit_of_work import UnitOfWork
from catalog_service.adapters.list_cache import ListCache
from catalog_service.domain.bounds import bound_errors
from catalog_service.domain.calls import Caller, Rendered, View
from catalog_service.domain.config import DomainConfig
from catalog_service.domain.image import Image, check_account
from catalog_service.domain.json_body import has_lone_surrogate, lone_surrogate_error
from catalog_service.domain.preconditions import Conditions, evaluate
from catalog_service.domain.serialize import compact_json, etag_of, etag_of_json, view_fields
from catalog_service.domain.validation import image_data_error, validate_record
from catalog_service.settings import CatalogSettings
from imgapi_common.errors import FieldError, ImgapiError, not_found, validation_failed
from imgapi_common.jsvalues import copy_json, is_uuid, js_string, truthy
from imgapi_common.limits import MAX_CLIENT_IMAGE_BYTES, MAX_IMAGE_BYTES

NO_CONDITIONS = Conditions()


class CatalogCore:
    """Configuration, repository, unit of work and the steps every handler shares."""

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
        self.list_cache = ListCache(settings.list_cache_bytes)

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
        if has_lone_surrogate(rec):
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
        views: Views | None = None,
    ) -> Rendered:
        """``rec`` as answered for ``view``; ``views``: its :func:`stored_views`, when just made
        for storing it (the answer is then the stored text, as GetImage reads it)."""
        if views is None:
            base = compact_json(
                view_fields(rec, self.cfg, include_channels=view.include_channels, include_admin_fields=False)
            )
            etag = etag_of_json(base)
        else:
            base, etag = (views[2], views[3]) if view.include_channels else (views[0], views[1])
        shown = (
            compact_json(
                view_fields(rec, self.cfg, include_channels=view.include_channels, include_admin_fields=True)
            )
            if view.include_admin_fields
            else base
        )
        return Rendered(rec, shown, etag, revision, not_modified, tuple(orphaned))

    def store(self, conn: Connection, rec: dict[str, Any], view: View, admitted: bool, kind: str) -> Rendered:
        """Insert a new image (validity ``admitted``) and render it for ``view``, its views made once."""
        views = stored_views(rec, self.cfg)
        self.repo.insert(conn, rec, admitted, kind=kind, views=views)
        return self.render(rec, view, 1, views=views)

    def _etag(self, rec: Mapping[str, Any], view: View) -> str:
        return etag_of(
            view_fields(rec, self.cfg, include_channels=view.include_channels, include_admin_fields=False)
        )

    # --- request steps shared by the handlers: channel, then the image load and its visibility --

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
        row = self.repo.get(conn, uuid)
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

    # --- the mutation loop --------------------------------------------------------------------

    def _mutate(
        self,
        uuid: str,
        caller: Caller,
        view: View,
        kind: str,
        change: Callable[[Connection, Image], None],
        *,
        cond: Conditions | None = None,
        check_owner: bool = True,
        client: bool = True,
    ) -> Rendered:
        """Load (+owner, +cond), apply ``change`` to a copy and write it conditionally, recording a
        ``kind`` change in the feed; retry races. ``change`` applies a rule of the :class:`Image`
        (it may replace its record). ``client``: the change writes client data (not only the
        server's own fields)."""
        channel = self.resolve_channel(caller.channel, write=True)

        def attempt(conn: Connection) -> Rendered:
            # Writers of one image queue on its row lock (PostgreSQL) instead of spinning on
            # revision conflicts; the conditional UPDATE stays the guard.
            self.repo.lock(conn, uuid, shared=False)
            row = self._load(conn, uuid, caller, channel)
            if check_owner:
                self._check_owner(row.record, caller)
            if cond is not None:
                evaluate(cond, self._etag(row.record, view), is_get=False)
            img = Image(copy_json(row.record))
            change(conn, img)
            new = img.record
            admitted = self._admit(new, client=client)
            views = stored_views(new, self.cfg)
            if new["uuid"] != uuid:
                self.repo.delete(conn, uuid, row.revision)
                revision = self.repo.insert(conn, new, admitted, kind=kind, views=views)
            else:
                revision = self.repo.update(
                    conn, new, row.revision, admitted, kind, previous=row.record, views=views
                )
            orphaned = self.repo.unreferenced(conn, blob_ids_of(row.record) - blob_ids_of(new))
            return self.render(new, view, revision, orphaned=orphaned, views=views)

        return self.uow.run("updating", uuid, attempt)

    # --- existence checks --------------------------------------------------------------------

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
        if truthy(origin) and not self.repo.lock(conn, origin, shared=True):
            raise ImgapiError("OriginDoesNotExist", f'origin image "{js_string(origin)}" does not exist')
