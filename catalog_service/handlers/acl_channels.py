"""Sharing an image: its ACL and its channels."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection

from catalog_service.domain.calls import Caller, Rendered, View
from catalog_service.domain.image import Image
from catalog_service.domain.preconditions import Conditions
from catalog_service.handlers.core import NO_CONDITIONS, CatalogCore
from imgapi_common.acl_channel_rules import check_uuid_list


class AclChannelHandlers(CatalogCore):
    def channel_add(
        self, uuid: str, caller: Caller, view: View, channel: str, cond: Conditions = NO_CONDITIONS
    ) -> Rendered:
        def change(_: Connection, img: Image) -> None:
            img.add_channel(channel, self.cfg.channels, given=True)

        return self._mutate(uuid, caller, view, "channel", change, cond=cond)

    def change_acl(
        self, uuid: str, caller: Caller, view: View, accounts: Sequence[str], *, add: bool
    ) -> Rendered:
        def change(_: Connection, img: Image) -> None:
            check_uuid_list("acl", list(accounts))
            if add:
                img.add_to_acl(accounts)
            else:
                img.remove_from_acl(accounts)

        return self._mutate(uuid, caller, view, "acl", change)
