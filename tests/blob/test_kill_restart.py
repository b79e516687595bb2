"""The service process killed with SIGKILL mid-upload, restarted, and the upload resumed."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from blob_client import BlobClient
from blob_service.domain.errors import BlobError
from blob_service.settings import MIB, BlobSettings
from tests.blob.conftest import channel_to
from tests.blob.data import content_md5, digests, expected, payload, pieces
from tests.blob.service_process import ServiceProcess
from tests.components import free_port


def test_sigkill_mid_upload_then_resume(settings: BlobSettings, tmp_path: Path) -> None:
    proc = ServiceProcess(settings, free_port(), tmp_path / "service.log")
    proc.start()
    data = payload(20 * MIB + 12345, seed=20)
    killed = threading.Event()
    try:
        with channel_to(proc.port) as ch:
            client = BlobClient(ch, retries=0)
            up = client.start_upload(expected_size=len(data), sha1=digests(data)["sha1"])

            def stream() -> Iterator[bytes]:
                """12 MiB, then nothing until the process is killed: the kill always falls in
                the middle of the upload."""
                sent = 0
                for piece in pieces(data, 256 * 1024):
                    if sent >= 12 * MIB:
                        killed.wait(30)
                        return
                    sent += len(piece)
                    yield piece

            def kill_once_durable() -> None:
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:  # wait for a state: 6 MiB durable
                    if client.get_upload(up.upload_id).committed_offset >= 6 * MIB:
                        break
                    time.sleep(0.01)
                proc.kill()
                killed.set()

            killer = threading.Thread(target=kill_once_durable)
            killer.start()
            with pytest.raises(BlobError) as e:
                client.write(up.upload_id, 0, stream())
            killer.join()
            assert e.value.reason == "Unavailable"

        proc.start()  # same data dir / bucket
        with channel_to(proc.port) as ch:
            client = BlobClient(ch)
            at = client.get_upload(up.upload_id).committed_offset
            assert 6 * MIB <= at < len(data)
            assert client.write(up.upload_id, at, pieces(data[at:])) == len(data)
            info = client.commit(up.upload_id, **expected(data))
            d = digests(data)
            assert (info.sha1, info.md5, info.sha256) == (d["sha1"], d["md5"], d["sha256"])
            assert info.content_md5 == content_md5(data)
            assert b"".join(client.read(info.blob_id)) == data
        assert proc.stop() == 0  # SIGTERM: graceful
    finally:
        if proc.proc is not None and proc.proc.poll() is None:
            proc.proc.kill()
