"""The failures of a copy: a step that failed (maybe worth retrying) and a conflict with the image
already here (recorded, never overwritten)."""

from __future__ import annotations


class CopyError(Exception):
    """A copy step failed; ``transient`` says whether a later retry may succeed.

    ``code`` is the IMGAPI error code that describes the failure best (``RemoteSourceError`` for the
    source, ``Download`` for a file that does not match its manifest, the destination's own code),
    "" when none fits; callers answering over REST map it through :class:`ImgapiError`.
    """

    def __init__(self, message: str, *, transient: bool = True, code: str = "") -> None:
        super().__init__(message)
        self.transient = transient
        self.code = code


class Conflict(Exception):
    def __init__(self, uuid: str, reason: str, detail: str) -> None:
        super().__init__(f"conflict on {uuid}: {reason}: {detail}")
        self.uuid = uuid
        self.reason = reason
        self.detail = detail
