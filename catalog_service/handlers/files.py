"""An image's file and icon: upload plans, attaching and detaching."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection

from catalog_service.domain.calls import Caller, Rendered, UploadPlan, View
from catalog_service.domain.clock import now_timestamp
from catalog_service.domain.image import Image
from catalog_service.handlers.core import CatalogCore
from imgapi_common.errors import FieldError, ImgapiError, invalid_parameter
from imgapi_common.manifest_fields import COMPRESSIONS, MAX_FILE_SIZE, MAX_ICON_SIZE

ICON_TYPES = ("image/jpeg", "image/gif", "image/png")


class FileHandlers(CatalogCore):
    """Upload plans and attaching/detaching an image's file and icon."""

    def prepare_upload(
        self,
        uuid: str,
        caller: Caller,
        *,
        icon: bool,
        compression: str = "",
        storage: str = "",
        content_type: str = "",
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
        return UploadPlan(rec, MAX_ICON_SIZE if icon else MAX_FILE_SIZE, stor)

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
        def change(_: Connection, img: Image) -> None:
            img.attach_file(entry, now=now_timestamp(), default_stor=self.settings.default_storage)

        return self._mutate(uuid, caller, view, "file", change, client=False)

    def detach_file(self, uuid: str, caller: Caller, view: View) -> Rendered:
        def change(_: Connection, img: Image) -> None:
            img.detach_file()

        return self._mutate(uuid, caller, view, "file", change, client=False)

    def attach_icon(self, uuid: str, caller: Caller, view: View, entry: Mapping[str, Any]) -> Rendered:
        def change(_: Connection, img: Image) -> None:
            img.attach_icon(entry, now=now_timestamp(), default_stor=self.settings.default_storage)

        return self._mutate(uuid, caller, view, "icon", change, client=False)

    def detach_icon(self, uuid: str, caller: Caller, view: View) -> Rendered:
        def change(_: Connection, img: Image) -> None:
            img.detach_icon()

        return self._mutate(uuid, caller, view, "icon", change, client=False)
