"""A replication job leaves no blob behind at the destination: the blobs of an icon the source
replaced and of an image the source deleted are deleted from the destination's blob service."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from imgapi.v1 import image_pb2

from blob_client import BlobClient, BlobError
from tests.components import Shape
from tests.replication.stacks import DC, sha1, start_dc, start_replicator, wait_for


def blob_exists(blobs: BlobClient, blob_id: str) -> bool:
    try:
        blobs.stat(blob_id)
    except BlobError as e:
        assert e.reason == "BlobNotFound", e
        return False
    return True


def image_when(
    dc: DC, uuid: str, ok: Callable[[image_pb2.Image], bool]
) -> Callable[[], image_pb2.Image | None]:
    def check() -> image_pb2.Image | None:
        img = dc.get(uuid)
        return img if img is not None and ok(img) else None

    return check


def test_replaced_and_deleted_blobs_are_removed_at_the_destination(tmp_path: Path, shape: Shape) -> None:
    a = start_dc(tmp_path, "a", shape=shape)
    b = start_dc(tmp_path, "b", shape=shape)
    r = start_replicator(tmp_path, b, shape=shape)
    try:
        uuid = a.publish(b"file bytes", icon=b"\x89PNG first icon", name="orphans")
        r.create_job(
            name="a-to-b", source_catalog=a.catalog_target, source_blob=a.blob_target, propagate_deletes=True
        )
        first = wait_for("the image active in b", image_when(b, uuid, lambda i: i.state == "active"))
        file_blob, first_icon_blob = first.files[0].blob_id, first.icon.blob_id
        assert blob_exists(b.blobs, file_blob) and blob_exists(b.blobs, first_icon_blob)

        a.attach_icon(uuid, b"\x89PNG second icon")
        second = wait_for(
            "the new icon in b",
            image_when(b, uuid, lambda i: i.icon.sha1 == sha1(b"\x89PNG second icon")),
        )
        assert second.icon.blob_id != first_icon_blob
        # The replicator deletes the blobs the catalog names orphaned right after its call returns.
        wait_for("the replaced icon's blob gone", lambda: not blob_exists(b.blobs, first_icon_blob), 10)
        assert blob_exists(b.blobs, second.icon.blob_id) and blob_exists(b.blobs, file_blob)

        a.delete(uuid)
        wait_for("the image deleted in b", lambda: b.get(uuid) is None)
        wait_for("the file's blob gone", lambda: not blob_exists(b.blobs, file_blob), 10)
        wait_for("the icon's blob gone", lambda: not blob_exists(b.blobs, second.icon.blob_id), 10)
    finally:
        r.stop()
        b.stop()
        a.stop()
