"""An image's life: create, import, clone, activate, enable/disable, update, delete, reaping
placeholders."""

from __future__ import annotations

import contextlib
import re
import uuid as uuidlib
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection

from catalog_service.adapters.db.rows import blob_ids_of
from catalog_service.domain.calls import Caller, Rendered, View
from catalog_service.domain.clock import now_timestamp
from catalog_service.domain.image import Image, check_account, walk_origins
from catalog_service.domain.json_body import parse_json
from catalog_service.domain.preconditions import Conditions
from catalog_service.domain.records import build_record, check_create_body
from catalog_service.domain.update import apply_update
from catalog_service.domain.upgrade import upgrade_dataset_manifest
from catalog_service.domain.validation import image_data_error, validate_record
from catalog_service.handlers.core import NO_CONDITIONS, CatalogCore
from imgapi_common.errors import FieldError, ImgapiError, invalid_parameter, not_found
from imgapi_common.jsvalues import copy_json, js_string
from imgapi_common.manifest_fields import ZERO_UUID


class LifecycleHandlers(CatalogCore):
    """Create, import, clone, activate, disable/enable, update, delete, reap."""

    def activate(self, uuid: str, caller: Caller, view: View, cond: Conditions = NO_CONDITIONS) -> Rendered:
        def change(_: Connection, img: Image) -> None:
            img.activate(now_timestamp())

        return self._mutate(uuid, caller, view, "activate", change, cond=cond, client=False)

    def set_disabled(
        self, uuid: str, caller: Caller, view: View, disabled: bool, cond: Conditions = NO_CONDITIONS
    ) -> Rendered:
        def change(_: Connection, img: Image) -> None:
            img.set_disabled(disabled)

        kind = "disable" if disabled else "enable"
        return self._mutate(uuid, caller, view, kind, change, cond=cond, client=False)

    def update(
        self, uuid: str, caller: Caller, view: View, update_json: str, cond: Conditions = NO_CONDITIONS
    ) -> Rendered:
        present, body = parse_json(update_json)
        account = caller.user_account

        def change(conn: Connection, img: Image) -> None:
            new = apply_update(img.record, body if present else None, self.cfg, account=account)
            if new.get("owner") != img.owner:  # (validated: a UUID when present)
                self._owner_must_exist(new.get("owner"))
            if new.get("uuid") != uuid and self.repo.exists(conn, str(new.get("uuid"))):
                raise ImgapiError("ImageUuidAlreadyExists", f'image uuid "{new.get("uuid")}" already exists')
            img.record = new

        return self._mutate(uuid, caller, view, "update", change, cond=cond)

    def create(self, caller: Caller, view: View, manifest_json: str) -> Rendered:
        channel = self.resolve_channel(caller.channel, write=True)
        present, body = parse_json(manifest_json)
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
            return self.store(conn, rec, view, self._admit(rec), "create")

    def check_import_request(
        self, uuid: str, caller: Caller, manifest_json: str
    ) -> tuple[str | None, dict[str, Any]]:
        """AdminImportImage's checks of the request itself: channel, operator, body uuid. The
        channel and the manifest to import (upgraded from a dataset manifest if need be)."""
        channel = self.resolve_channel(caller.channel, write=True)
        if caller.user_account is not None:
            raise ImgapiError("OperatorOnly", "this endpoint may only be called by an operator")
        present, body = parse_json(manifest_json)
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
        body = dict(body)
        body.pop("channels", None)
        return channel, body

    def admin_import(
        self,
        uuid: str,
        caller: Caller,
        view: View,
        manifest_json: str,
        *,
        skip_owner_check: bool = False,
        from_source: bool = False,
    ) -> Rendered:
        channel, body = self.check_import_request(uuid, caller, manifest_json)

        def attempt(conn: Connection) -> Rendered:
            existing = self.repo.get(conn, uuid)
            if existing is not None and (from_source or existing.record.get("state") != "creating"):
                raise ImgapiError("ImageUuidAlreadyExists", f'image uuid "{uuid}" already exists')
            self._origin_must_exist(conn, body.get("origin"))
            if self.cfg.mode == "dc":
                if body.get("owner") == ZERO_UUID:
                    if self.cfg.admin_uuid:
                        body["owner"] = self.cfg.admin_uuid
                elif not skip_owner_check:
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
            return self.store(conn, rec, view, admitted, "create")

        return self.uow.run("importing", uuid, attempt)

    _IMGADM_UA = re.compile(r"^imgadm/(\d+)\.(\d+)\.(\d+) ")

    def _lx_workaround(self, conn: Connection, body: dict[str, Any], user_agent: str) -> None:
        """Old imgadm versions mis-handle an lx-dataset's ``requirements.min_platform``: their imports
        get it dropped (the reference server's workaround)."""
        req = body.get("requirements")
        if body.get("type") != "lx-dataset" or not isinstance(req, dict) or "min_platform" not in req:
            return
        m = self._IMGADM_UA.match(user_agent)
        if not m or tuple(int(x) for x in m.groups()) >= (3, 7, 4):
            return
        req = dict(req)
        origin = body.get("origin")
        origin_row = self.repo.get(conn, origin)
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
            Image(src).check_cloneable_by(account)

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
                c = (
                    Image(s)
                    .clone_for(
                        account,
                        new_uuid=str(uuidlib.uuid4()),
                        origin=prev,
                        disabled=i < len(sources) - 1,
                        now=now_timestamp(),
                    )
                    .record
                )
                # a clone is activated, so it must be a valid record (never stored invisible); any
                # failure rolls back the clones created so far
                problems = validate_record(c, self.cfg)
                if problems:
                    raise image_data_error(problems)
                self.repo.insert(conn, c, self._admit(c, client=False), kind="create")
                prev = c["uuid"]
            last = c
        return self.render(last, view, 1)

    def delete(self, uuid: str, caller: Caller, force_all_channels: bool = False) -> tuple[bool, list[str]]:
        channel = self.resolve_channel(caller.channel, write=True)

        def attempt(conn: Connection) -> tuple[bool, list[str]]:
            self.repo.lock(conn, uuid, shared=False)  # no new dependent can appear until we commit
            row = self._load(conn, uuid, caller, channel)
            self._check_owner(row.record, caller)
            img = Image(copy_json(row.record))
            img.check_deletable(self.repo.dependents(conn, uuid, channel))
            if channel is not None and img.in_several_channels() and not force_all_channels:
                img.remove_channel(channel)
                self.repo.update(
                    conn, img.record, row.revision, self.is_valid(img.record), "channel", previous=row.record
                )
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
