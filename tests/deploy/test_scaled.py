"""The production shape on loopback: 2 gateways, 2 catalogs, 2 blob services behind Envoy, the
catalogs on PostgreSQL (migrated once with ``python -m catalog_service migrate``, replicas started
with auto-migration off), the blob services sharing one bucket on an S3-protocol server.

Wiring: gateway i talks to catalog i and blob i directly, so a request through gateway 2 is served
by replica 2 end to end; Envoy balances REST over the gateways and native gRPC over the services.
"""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys
import uuid as uuidlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
import pytest

from tests.components import S3Endpoint, pg_database
from tests.deploy.procs import (
    JUNK,
    JUNK_MD5,
    ROOT,
    SDC,
    TOKEN,
    Envoy,
    procs_group,
    spawn_blob,
    spawn_catalog,
    spawn_envoy,
    spawn_gateway,
    wait_stack,
)

pytestmark = [pytest.mark.envoy, pytest.mark.postgres, pytest.mark.s3]

MIB = 1024 * 1024
TUS = {"Tus-Resumable": "1.0.0"}


@dataclass
class Scaled:
    envoy: Envoy
    gateways: list[str]  # direct URLs of gateway 1 and 2

    def client(self, base_url: str | None = None) -> httpx.Client:
        return httpx.Client(base_url=base_url or self.envoy.url, headers={"Accept-Version": "*"}, timeout=60)


@pytest.fixture(scope="module")
def scaled(tmp_path_factory: pytest.TempPathFactory, s3_endpoint: S3Endpoint) -> Iterator[Scaled]:
    tmp = tmp_path_factory.mktemp("scaled")
    with pg_database() as db_url, procs_group(tmp) as procs:
        # The migration command, once, as production does before starting the replicas.
        env = {k: v for k, v in os.environ.items() if not k.startswith("IMGAPI_")}
        env["IMGAPI_CATALOG_DATABASE_URL"] = db_url
        out = subprocess.run(
            [sys.executable, "-m", "catalog_service", "migrate"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 0, out.stdout + out.stderr
        catalogs = [
            spawn_catalog(
                procs,
                f"catalog{i}",
                database_url=db_url,
                auto_migrate="false",
                admin_uuid=SDC,
                data_dir=str(tmp / f"catalog{i}"),
            )
            for i in (1, 2)
        ]
        for i in (1, 2):
            (tmp / f"spool{i}").mkdir()
        bucket = f"imgapi-scaled-{uuidlib.uuid4().hex[:8]}"
        blobs = [
            spawn_blob(
                procs,
                f"blob{i}",
                backend="s3",
                s3_endpoint=s3_endpoint.endpoint,
                s3_access_key=s3_endpoint.access_key,
                s3_secret_key=s3_endpoint.secret_key,
                s3_secure=str(s3_endpoint.secure).lower(),
                s3_region=s3_endpoint.region,
                s3_bucket=bucket,
                s3_part_size=str(5 * MIB),
                spool_dir=str(tmp / f"spool{i}"),
            )
            for i in (1, 2)
        ]
        gateways = [spawn_gateway(procs, f"gw{i}", catalogs[i - 1][1], blobs[i - 1][1]) for i in (1, 2)]
        envoy = spawn_envoy(
            procs,
            tmp,
            gateways=[g[1] for g in gateways],
            catalogs=[c[1] for c in catalogs],
            blobs=[b[1] for b in blobs],
        )
        wait_stack(catalogs, blobs, gateways, envoy)
        yield Scaled(envoy, [g[1] for g in gateways])


def lifecycle(s: Scaled, n: int) -> str:
    """Create, upload, activate, read back (through Envoy, and through both replicas), delete."""
    data = JUNK.read_bytes()
    with s.client() as c:
        r = c.post(
            "/images",
            json={
                "name": f"scaled-{n}",
                "version": "1.0.0",
                "os": "smartos",
                "type": "zone-dataset",
                "owner": SDC,
            },
        )
        assert r.status_code == 200, r.text
        uuid = str(r.json()["uuid"])
        r = c.put(f"/images/{uuid}/file?compression=bzip2", content=data)
        assert r.status_code == 200, r.text
        r = c.post(f"/images/{uuid}?action=activate", json={})
        assert r.status_code == 200 and r.json()["state"] == "active", r.text
        r = c.get(f"/images/{uuid}/file")
        assert r.status_code == 200 and r.headers["content-md5"] == JUNK_MD5 and r.content == data
    for gw in s.gateways:  # every replica sees the same image and file
        with s.client(gw) as direct:
            assert direct.get(f"/images/{uuid}").json()["state"] == "active"
            r = direct.get(f"/images/{uuid}/file")
            assert r.status_code == 200 and r.headers["content-md5"] == JUNK_MD5
    with s.client() as c:
        assert c.delete(f"/images/{uuid}").status_code == 204
        assert c.get(f"/images/{uuid}").status_code == 404
    return uuid


def test_concurrent_lifecycles(scaled: Scaled) -> None:
    with ThreadPoolExecutor(6) as pool:
        uuids = list(pool.map(lambda n: lifecycle(scaled, n), range(12)))
    assert len(set(uuids)) == 12
    rq = {
        host: int(line.rsplit("::", 1)[1])
        for line in httpx.get(f"{scaled.envoy.admin}/clusters", timeout=5).text.splitlines()
        if line.startswith("gateway::") and "::rq_total::" in line
        for host in [line.split("::")[1]]
    }
    assert len(rq) == 2 and all(n > 0 for n in rq.values()), rq


def test_upload_resumed_through_another_replica(scaled: Scaled) -> None:
    """A tus upload started on gateway 1 (-> blob service 1) is finished on gateway 2
    (-> blob service 2): the session lives in the shared S3 bucket, not in a replica."""
    data = os.urandom(13 * MIB + 12345)
    md5 = base64.b64encode(hashlib.md5(data).digest()).decode()
    gw1, gw2 = scaled.gateways
    with scaled.client(gw1) as c1, scaled.client(gw2) as c2:
        r = c1.post(
            "/images",
            json={"name": "resumed", "version": "1", "os": "smartos", "type": "zone-dataset", "owner": SDC},
        )
        uuid = r.json()["uuid"]
        r = c1.post(
            f"/images/{uuid}/file/uploads?compression=none",
            headers={**TUS, "Upload-Length": str(len(data))},
        )
        assert r.status_code == 201, r.text
        loc = r.headers["location"]
        first = 7 * MIB + 1  # one full 5 MiB S3 part plus a tail
        r = c1.patch(
            loc,
            content=data[:first],
            headers={**TUS, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"},
        )
        assert r.status_code == 204, r.text
        assert r.headers.get("x-server-name") == "gw1"
        # The other replica reports the offset and accepts the rest.
        r = c2.head(loc, headers=TUS)
        assert r.status_code == 200, r.text
        assert r.headers.get("x-server-name") == "gw2"
        offset = int(r.headers["upload-offset"])
        assert offset == first
        r = c2.patch(
            loc,
            content=data[offset:],
            headers={**TUS, "Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream"},
        )
        assert r.status_code == 204, r.text
        img = c2.get(f"/images/{uuid}").json()
        assert img["files"][0]["size"] == len(data)
    with scaled.client() as c:
        r = c.get(f"/images/{uuid}/file")
        assert r.status_code == 200 and r.headers["content-md5"] == md5 and r.content == data
        assert c.post(f"/images/{uuid}?action=activate", json={}).json()["state"] == "active"
        assert c.delete(f"/images/{uuid}").status_code == 204


def test_transcoded_json_on_postgres(scaled: Scaled) -> None:
    """The catalog JSON API through Envoy reaches either catalog replica; both see one database."""
    auth = {"Authorization": f"Bearer {TOKEN}"}  # the internal listener: the services authenticate
    with httpx.Client(base_url=scaled.envoy.internal_url, headers=auth, timeout=30) as c:
        uuids = []
        for n in range(4):
            manifest = f'{{"name": "json-{n}", "version": "1", "os": "smartos", "type": "zone-dataset", '
            manifest += f'"owner": "{SDC}"}}'
            r = c.post("/v1/catalog/images", json={"manifestJson": manifest})
            assert r.status_code == 200, r.text
            uuids.append(r.json()["image"]["uuid"])
        for u in uuids:
            r = c.get(f"/v1/catalog/images/{u}")
            assert r.status_code == 200 and r.json()["image"]["uuid"] == u
            assert c.delete(f"/v1/catalog/images/{u}").json()["deleted"] is True
        # GetServerConfig names the answering process (imgapi-worker-id: host:pid) in its initial
        # metadata, which Envoy passes on as response headers: both replicas must answer.
        seen: set[str] = set()
        for _ in range(20):
            r = c.get("/v1/catalog/config")
            assert r.status_code == 200, r.text
            seen.add(r.headers["imgapi-worker-id"])
            if len(seen) == 2:
                break
        assert len(seen) == 2, seen
    rq = [
        int(line.rsplit("::", 1)[1])
        for line in httpx.get(f"{scaled.envoy.admin}/clusters", timeout=5).text.splitlines()
        if line.startswith("catalog::") and "::rq_total::" in line
    ]
    assert len(rq) == 2 and all(n > 0 for n in rq), rq


def test_listings_read_your_writes_across_replicas(scaled: Scaled) -> None:
    """Each catalog keeps its own ListImages cache: an image created, updated and activated
    through gateway 1 (catalog 1) is listed at once through gateway 2 (catalog 2), which had
    answered the same listings just before."""
    one, two = scaled.gateways
    name = f"ryw-{uuidlib.uuid4().hex[:8]}"
    queries = [{"name": name}, {"name": name, "state": "all"}, {"owner": SDC, "limit": "1000"}]

    def listed(c: httpx.Client) -> list[dict[str, str]]:
        out = []
        for q in queries:
            r = c.get("/images", params=q)
            assert r.status_code == 200, r.text
            out.append({i["uuid"]: i.get("description", "") for i in r.json() if i["name"] == name})
        return out

    with scaled.client(one) as w, scaled.client(two) as r:
        for _ in range(2):  # answered, then answered again (from the cache)
            assert listed(r) == [{}, {}, {}]
        body = {"name": name, "version": "1", "os": "smartos", "type": "zone-dataset", "owner": SDC}
        created = w.post("/images", json=body | {"description": "new"})
        assert created.status_code == 200, created.text
        uuid = created.json()["uuid"]
        assert listed(r) == [{}, {uuid: "new"}, {}]  # not active yet: only state=all lists it
        assert w.post(f"/images/{uuid}?action=update", json={"description": "edited"}).status_code == 200
        assert listed(r) == [{}, {uuid: "edited"}, {}]
        assert w.put(f"/images/{uuid}/file?compression=bzip2", content=JUNK.read_bytes()).status_code == 200
        assert w.post(f"/images/{uuid}?action=activate", json={}).json()["state"] == "active"
        assert listed(r) == [{uuid: "edited"}, {uuid: "edited"}, {uuid: "edited"}]
        assert w.delete(f"/images/{uuid}").status_code == 204
        assert listed(r) == [{}, {}, {}]
