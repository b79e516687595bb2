"""Sharing an image: its ACL and its channels."""

from __future__ import annotations

from sqlalchemy import Connection

from catalog_service.calls import Caller, Rendered, View
from catalog_service.domain.image import Image
from catalog_service.handlers.core import NO_CONDITIONS, CatalogCore
from catalog_service.json_body import parse_json
from catalog_service.preconditions import Conditions
from imgapi_common.acl_channel_rules import check_uuid_list


class AclChannelHandlers(CatalogCore):
    def channel_add(
        self, uuid: str, caller: Caller, view: View, body_json: str, cond: Conditions = NO_CONDITIONS
    ) -> Rendered:
        present, body = parse_json(body_json)
        has_name = present and isinstance(body, dict) and "channel" in body
        name = body.get("channel") if has_name else None

        def change(_: Connection, img: Image) -> None:
            img.add_channel(name, self.cfg.channels, given=has_name)

        return self._mutate(uuid, caller, view, "channel", change, cond=cond)

    def change_acl(self, uuid: str, caller: Caller, view: View, acl_json: str, *, add: bool) -> Rendered:
        present, body = parse_json(acl_json)

        def change(_: Connection, img: Image) -> None:
            accounts = check_uuid_list("acl", body if present else None)
            if add:
                img.add_to_acl(accounts)
            else:
                img.remove_from_acl(accounts)

        return self._mutate(uuid, caller, view, "acl", change)
