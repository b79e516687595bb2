"""The few server settings the domain rules depend on: the server mode and its channels."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Mode = Literal["dc", "public", "private"]


@dataclass(frozen=True)
class DomainConfig:
    """Server mode, configured channel names and the operator account."""

    mode: Mode = "dc"
    #: Configured channel names (configuration order); empty = the server has no channels.
    channels: tuple[str, ...] = ()
    admin_uuid: str | None = None

    @property
    def channels_enabled(self) -> bool:
        """True when images must carry ``channels``.

        Channels are only usable in ``public``/``private`` mode; in ``dc`` mode the
        reference validator rejects any image carrying ``channels``, so a ``dc`` server behaves as
        a server without channels whatever its configuration says.
        """
        return bool(self.channels) and self.mode != "dc"
