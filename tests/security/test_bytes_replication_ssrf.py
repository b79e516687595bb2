"""Issue 10 item 8 (SSRF): the replication service's REST source goes through the one SSRF guard.

A replication job whose REST source is a loopback address is refused (the job records the refusal
and copies nothing) unless the operator allow-listed the address.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from imgapi.v1 import replication_pb2

from imgapi_common.ssrf import Allowlist
from replication.adapters.rest_source import RestSource
from replication.adapters.sources import SourceError
from replication.settings import ReplicationSettings
from tests.replication.stacks import LOOPBACK, start_dc, start_gateway, start_replicator


def test_rest_source_refuses_loopback_unless_allow_listed(tmp_path: Path) -> None:
    a = start_dc(tmp_path, "a")
    b = start_dc(tmp_path, "b")
    refused = allowed = None
    try:
        url = start_gateway(a)
        image = a.publish(b"a file served on loopback", name="ssrf")
        for spelling in (url, url.replace("127.0.0.1", "localhost"), url.replace("127.0.0.1", "2130706433")):
            src = RestSource(spelling)
            try:
                with pytest.raises(SourceError, match="SSRF"):
                    src.get(image)
            finally:
                src.close()

        refused = start_replicator(tmp_path, b, name="refusing", source_allowlist=())
        job = refused.create_job(name="loop", source_kind=replication_pb2.JobSpec.SOURCE_REST, source_url=url)
        j = refused.wait_job(job, "the refusal recorded", lambda j: "SSRF" in j.last_error, timeout=30)
        assert "loopback" in j.last_error and j.images_copied == 0
        assert b.get(image) is None
        refused.stop()
        refused = None

        allowed = start_replicator(tmp_path, b, name="allowing", source_allowlist=LOOPBACK)
        job = allowed.create_job(name="loop", source_kind=replication_pb2.JobSpec.SOURCE_REST, source_url=url)
        allowed.wait_job(job, "the allow-listed source synced", lambda j: j.synced and j.images_copied == 1)
        assert b.file_bytes(image) == b"a file served on loopback"
    finally:
        for r in (refused, allowed):
            if r is not None:
                r.stop()
        b.stop()
        a.stop()


def test_allowlist_setting_reaches_the_guard(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMGAPI_REPLICATION_SOURCE_ALLOWLIST", '["10.1.0.0/16", "*.dc.internal"]')
    allow = Allowlist.parse(ReplicationSettings().source_allowlist)
    assert allow.allows_host("imgapi.dc.internal") and not allow.allows_host("evil.test")
    assert [str(n) for n in allow.networks] == ["10.1.0.0/16"]
