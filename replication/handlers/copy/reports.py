"""What a copy reports: its milestones as it goes (:class:`CopyMilestone`) and what one call did
(:class:`Outcome`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CopyMilestone:
    """A milestone of a copy, reported to ``on_progress`` (from the copying thread).

    ``kind``: ``begin`` (the image is about to be created or completed here: its origins are
    done), ``imported`` (AdminImportImage created it), ``found`` (it existed here unactivated and is
    being completed), ``resume`` (its file continues at ``done`` of ``total`` bytes: the upload
    already holds the bytes before), ``bytes`` (``done`` of ``total`` committed), ``attached`` (the
    file, ``detail`` = its SHA-1), ``activated``.
    """

    kind: str
    uuid: str
    done: int = 0
    total: int = 0
    detail: str = ""


@dataclass
class Outcome:
    created: bool = False
    updated: bool = False
    #: Bytes sent by this call (a resumed copy sends only what the destination lacked).
    bytes: int = 0
    #: Size of the files this call completed (attached), however many runs it took to send them:
    #: the image's own and those of the missing origins created on the way.
    file_bytes: int = 0
    #: Missing origins created on the way (their bytes are in ``bytes`` and ``file_bytes``).
    origins_created: int = 0

    @property
    def images_created(self) -> int:
        return int(self.created) + self.origins_created
