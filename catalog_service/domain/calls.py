"""The plain values a catalog call takes and returns (no transport types)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


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
