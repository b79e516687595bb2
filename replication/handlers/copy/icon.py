"""Copying an image's icon: one blob upload, then AttachImageIcon."""

from __future__ import annotations

from imgapi.v1 import catalog_pb2, image_pb2

from blob_client import BlobError
from replication.adapters.destination import VIEW, Destination
from replication.adapters.sources import Source, SourceImage
from replication.domain.copy_errors import CopyError


def copy_icon(source: Source, dest: Destination, img: SourceImage) -> image_pb2.Image:
    """Upload the icon of ``img`` and attach it to the local image (deleting the icon it replaced)."""
    data, content_type = source.read_icon(img)
    try:
        info = dest.blobs.upload([data], expected_size=len(data), label=f"icon:{img.uuid}")
    except BlobError as e:
        raise CopyError(f"icon upload {img.uuid}: {e.reason}: {e.message}") from None
    icon = image_pb2.ImageIcon(
        sha1=info.sha1,
        size=info.size,
        content_type=content_type,
        content_md5=info.content_md5,
        blob_id=info.blob_id,
    )
    res = dest.call(
        "AttachImageIcon",
        catalog_pb2.AttachImageIconRequest(caller=dest.write_caller, view=VIEW, uuid=img.uuid, icon=icon),
    )
    dest.blobs.delete_orphans(res.orphaned_blob_ids)  # the icon it replaced
    return res.image  # type: ignore[no-any-return]
