"""The image: a stored record and the rules that belong to it.

A record is the JSON object kept in the database (``dict[str, Any]``, JavaScript value semantics:
``"true"`` is true). :class:`Image` wraps one and answers the questions every operation asks
(activated? visible to this account? owned by it? shared with it?) and applies the state
transitions (activate, enable/disable, files, icon, channels, ACL) in place. Plain Python: no SQL,
no gRPC; failures are :class:`~imgapi_common.errors.ImgapiError`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from imgapi_common.acl_channel_rules import unknown_channel
from imgapi_common.errors import FieldError, ImgapiError, invalid_parameter, not_found, validation_failed
from imgapi_common.jsvalues import is_true, is_uuid, truthy
from imgapi_common.manifest_fields import MAX_ORIGIN_CHAIN


def is_activated(rec: Mapping[str, Any]) -> bool:
    return is_true(rec.get("activated"))


def acl_accounts(rec: Mapping[str, Any]) -> list[Any]:
    """The ``acl`` as a list (a bare string is one account; anything else is none)."""
    acl = rec.get("acl")
    return [acl] if isinstance(acl, str) else (list(acl) if isinstance(acl, list) else [])


def check_account(account: str) -> str:
    """The ``account`` of a request must be a UUID."""
    if not is_uuid(account):
        raise invalid_parameter(
            f'invalid "account": not a UUID: "{account}"', [FieldError("account", "Invalid")]
        )
    return account


def walk_origins(
    start: Any,
    load: Callable[[str], Mapping[str, Any] | None],
    *,
    stop: Callable[[str, Mapping[str, Any]], bool] = lambda _u, _r: False,
) -> tuple[list[dict[str, Any]], str | None]:
    """Follow ``origin`` links from ``start``: (the records walked, nearest first; the uuid at
    which ``stop`` said to stop, or None at the end of the chain). A missing origin is not found;
    a chain longer than :data:`MAX_ORIGIN_CHAIN` is an internal error."""
    chain: list[dict[str, Any]] = []
    cur = start
    while truthy(cur):
        rec = load(str(cur))
        if rec is None:
            raise not_found(f"image {cur} not found")
        if stop(str(cur), rec):
            return chain, str(cur)
        chain.append(dict(rec))
        if len(chain) >= MAX_ORIGIN_CHAIN:
            raise ImgapiError("InternalError", "origin chain too long")
        cur = rec.get("origin")
    return chain, None


class Image:
    """One image record and its rules. Transitions change :attr:`record` in place."""

    def __init__(self, record: dict[str, Any]) -> None:
        self.record = record

    @property
    def uuid(self) -> Any:
        return self.record.get("uuid")

    @property
    def owner(self) -> Any:
        return self.record.get("owner")

    @property
    def is_activated(self) -> bool:
        return is_activated(self.record)

    @property
    def acl(self) -> list[Any]:
        return acl_accounts(self.record)

    def in_channel(self, channel: str) -> bool:
        chans = self.record.get("channels")
        return isinstance(chans, list) and channel in chans

    def shared_with(self, account: str) -> bool:
        return account in self.acl

    def visible_to(self, account: str) -> bool:
        """An account sees its own images, and activated ones that are public or shared with it."""
        return self.owner == account or (
            self.is_activated and (is_true(self.record.get("public")) or self.shared_with(account))
        )

    def check_owner(self, account: str | None, shown: str) -> None:
        """A user request (``account`` not None) may only change its own images."""
        if account is not None and self.owner != account:
            raise ImgapiError("NotImageOwner", f"account {shown} is not the owner of image {self.uuid}")

    # --- state ------------------------------------------------------------------------------

    def recompute_state(self) -> None:
        """Unactivated unless activated; then disabled or active."""
        if not self.is_activated:
            self.record["state"] = "unactivated"
        else:
            self.record["state"] = "disabled" if is_true(self.record.get("disabled")) else "active"

    def has_file(self) -> bool:
        files = self.record.get("files")
        return isinstance(files, list) and bool(files)

    def require_file(self) -> None:
        if not self.has_file():
            raise ImgapiError(
                "NoActivationNoFile", f'image "{self.uuid}" cannot be activated: it has no file'
            )

    def activate(self, now: str) -> None:
        if self.is_activated:
            raise ImgapiError("ImageAlreadyActivated", f'image "{self.uuid}" is already activated')
        self.require_file()
        self.record["activated"] = True
        if not truthy(self.record.get("published_at")):
            self.record["published_at"] = now
        self.record.pop("expires_at", None)
        self.recompute_state()

    def set_disabled(self, disabled: bool) -> None:
        self.record["disabled"] = disabled
        self.recompute_state()

    # --- files and icon ---------------------------------------------------------------------

    def require_files_mutable(self) -> None:
        if self.is_activated:
            raise ImgapiError("ImageFilesImmutable", f"cannot modify files on activated image {self.uuid}")

    def attach_file(self, entry: Mapping[str, Any], *, now: str, default_stor: str) -> None:
        if self.is_activated:
            raise ImgapiError("ImageAlreadyActivated", f'image "{self.uuid}" is already activated')
        f: dict[str, Any] = {
            "sha1": entry["sha1"],
            "size": entry["size"],
            "compression": entry["compression"],
        }
        if entry.get("dataset_guid"):
            f["dataset_guid"] = entry["dataset_guid"]
        f["contentMD5"] = entry["contentMD5"]
        f["mtime"] = now
        f["stor"] = entry.get("stor") or default_stor
        f["blob_id"] = entry["blob_id"]
        for key in ("digest", "uncompressedDigest"):  # a Docker layer's (not in the REST view)
            if isinstance(entry.get(key), str):
                f[key] = entry[key]
        self.record["files"] = [f]

    def detach_file(self) -> None:
        self.require_files_mutable()
        self.record["files"] = []

    def attach_icon(self, entry: Mapping[str, Any], *, now: str, default_stor: str) -> None:
        self.record["icon"] = {
            "sha1": entry["sha1"],
            "size": entry["size"],
            "contentMD5": entry["contentMD5"],
            "contentType": entry["contentType"],
            "mtime": now,
            "stor": entry.get("stor") or default_stor,
            "blob_id": entry["blob_id"],
        }

    def detach_icon(self) -> None:
        if not isinstance(self.record.get("icon"), dict):
            raise not_found(f'image "{self.uuid}" has no icon')
        del self.record["icon"]

    # --- deletion ---------------------------------------------------------------------------

    def check_deletable(self, dependents: Sequence[str]) -> None:
        """An image that is the origin of others cannot be deleted (the first five are named
        when there are ten or more)."""
        if dependents:
            n = len(dependents)
            shown = ", ".join(dependents) if n < 10 else ", ".join(dependents[:5]) + f", and {n - 5} more..."
            raise ImgapiError(
                "ImageHasDependentImages",
                f'image "{self.uuid}" has {n} dependent incremental image(s): {shown}',
            )

    def in_several_channels(self) -> bool:
        """Deleting such an image in one channel only removes it from that channel."""
        chans = self.record.get("channels")
        return isinstance(chans, list) and len(chans) > 1

    # --- clones ---------------------------------------------------------------------------

    #: What a clone does not inherit from its source.
    NOT_CLONED = ("uuid", "acl", "published_at", "icon", "urn", "expires_at")

    def check_cloneable_by(self, account: str) -> None:
        """A clone is of an activated, non-docker, single-file image shared with ``account``."""
        if not self.is_activated:
            raise validation_failed("image is not active", [FieldError("active", "Invalid")])
        if not self.shared_with(account):
            raise ImgapiError("ImageNotShared", f"image {self.uuid} is not shared with account {account}")
        if self.record.get("type") == "docker":
            raise validation_failed("image is a docker image", [FieldError("type", "Invalid")])
        files = self.record.get("files")
        if isinstance(files, list) and len(files) > 1:
            raise ImgapiError("NotImplemented", "cannot clone an image with multiple files")

    def clone_for(
        self, account: str, *, new_uuid: str, origin: str | None, disabled: bool, now: str
    ) -> Image:
        """A private, activated copy owned by ``account`` on top of ``origin`` (``disabled``: an
        intermediate origin of the chain being cloned). It must have a file."""
        c = {k: copy.deepcopy(v) for k, v in self.record.items() if k not in self.NOT_CLONED}
        c["uuid"] = new_uuid
        c["owner"] = account
        if origin is not None:
            c["origin"] = origin
        else:
            c.pop("origin", None)
        if disabled:
            c["disabled"] = True
        c["acl"] = []
        c["activated"] = True
        c["published_at"] = now
        Image(c).recompute_state()
        # a new record in stored order: uuid first
        clone = Image({"v": c.pop("v", 2), "uuid": c.pop("uuid"), **c})
        clone.require_file()
        return clone

    # --- channels and ACL -------------------------------------------------------------------

    def add_channel(self, name: Any, known: Iterable[str], *, given: bool) -> None:
        """Add ``name`` (one of ``known``); ``given``: the request named a channel at all."""
        if not isinstance(name, str) or name not in known:
            raise unknown_channel(name, given=given)
        chans = self.record.get("channels")
        chans = list(chans) if isinstance(chans, list) else []
        if name not in chans:
            chans.append(name)
        self.record["channels"] = chans

    def remove_channel(self, name: str) -> None:
        chans = self.record.get("channels")
        self.record["channels"] = [c for c in chans if c != name] if isinstance(chans, list) else []

    def add_to_acl(self, accounts: Iterable[Any]) -> None:
        acl = self.acl
        seen = set(acl)  # a body of many UUIDs must not cost quadratic time
        for a in accounts:
            if a not in seen:
                seen.add(a)
                acl.append(a)
        self.record["acl"] = acl

    def remove_from_acl(self, accounts: Iterable[Any]) -> None:
        removed = set(accounts)
        self.record["acl"] = [a for a in self.acl if a not in removed]
