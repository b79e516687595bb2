"""Memory stays flat: blobs are streamed through, never held whole (service and client)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from blob_client import BlobClient
from blob_service.api.server import create_server
from blob_service.settings import MIB
from tests.blob.conftest import channel_to, settings_for

SIZE = 192 * MIB


def generated(hasher: hashlib._Hash) -> Iterator[bytes]:
    block = bytes(range(256)) * 4096  # 1 MiB
    for i in range(SIZE // MIB):
        piece = i.to_bytes(8, "big") + block[8:]
        hasher.update(piece)
        yield piece


@pytest.mark.slow
def test_rss_stays_flat_for_a_large_blob(tmp_path: Path) -> None:
    settings = settings_for("local", tmp_path, None, max_blob_size=1024 * MIB, checkpoint_bytes=32 * MIB)
    srv, port, _, svc = create_server(settings)
    srv.start()
    me = psutil.Process()
    try:
        with channel_to(port) as ch:
            client = BlobClient(ch)
            client.upload([b"warm-up" * 1000])  # threads, pools, channel buffers exist from here on
            base = me.memory_info().rss
            sent = hashlib.sha1()
            info = client.upload(generated(sent))
            after_upload = me.memory_info().rss
            assert info.size == SIZE
            assert info.sha1 == sent.hexdigest()
            got = hashlib.sha1()
            for chunk in client.read(info.blob_id):
                got.update(chunk)
            after_download = me.memory_info().rss
            assert got.hexdigest() == info.sha1
    finally:
        srv.stop(0)
        svc.stop()
    # the client retains checkpoint_bytes + 16 MiB for resuming; the service holds a few chunks
    assert after_upload - base < 80 * MIB, (base, after_upload)
    assert after_download - base < 80 * MIB, (base, after_download)
