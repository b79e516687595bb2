"""The registry of known accounts (an optional file of account UUIDs)."""

from __future__ import annotations

from pathlib import Path


class AccountRegistry:
    """Known accounts (the owners and ACL members an image may name). Without a file every
    well-formed UUID exists."""

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
