"""Test fixtures the tests build themselves: image files, manifests, an icon, stored records.

Nothing here is read from outside the repository. Binary files are made at import time (bzip2 from
the standard library, a 1x1 JPEG assembled below); the stored-form records and the old
dataset manifests are small JSON files under ``tests/data/imgapi`` written for these tests; the
"remote IMGAPI" manifests of ``xdc/`` are generated from the table below so their ``files`` entries
always describe the generated file exactly.

``FIXTURES`` is a directory (one per test process, removed at exit) laid out as the tests expect:

- ``what_a_piece_of_junk.zfs.bz2``: 22 bytes of text, *not* bzip2 (IMGAPI never inspects a file);
- ``fauxnodejs-1.4.0.zfs.bz2``, ``fauxubuntu.zfs.bz2``: tiny real bzip2 files;
- ``icon.jpg``: a valid 1x1 baseline JPEG;
- ``dc-test-images.json``, ``public-test-images.json``: records in the catalog's stored form;
- ``fauxnodejs-1.4.0.{ds,img}manifest``, ``fauxubuntu.dsmanifest``: manifests for AdminImportImage;
- ``xdc/<uuid>.manifest`` + ``xdc/<uuid>.file0``: what a fake remote IMGAPI serves.
"""

from __future__ import annotations

import atexit
import base64
import bz2
import hashlib
import json
import shutil
import struct
import tempfile
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent / "data" / "imgapi"

JUNK_BYTES = b"What a piece of junk!\n"
#: What every remote (xdc) image file holds, compressed with bzip2.
XDC_FILE_BYTES = bz2.compress(b"a stand-in for a zfs send stream of a remote image\n", 9)
XDC_SHA1 = hashlib.sha1(XDC_FILE_BYTES).hexdigest()
XDC_MD5 = base64.b64encode(hashlib.md5(XDC_FILE_BYTES).digest()).decode()

VADER = "86055c40-2547-11e2-8a6b-4bb37edc84ba"
OPERATOR = "ba28f844-8cb4-f141-882d-46d6251e6a9f"
_NETWORKS = [{"name": "net0", "description": "public"}]

#: uuid, name, version, owner, public, published_at, origin, min_platform, extra fields
_XDC: list[tuple[str, str, str, str, bool, str, str | None, str | None, dict[str, Any]]] = [
    (
        "c58161c0-2547-11e2-a75e-9fdca1940570",
        "inc-level-1",
        "1.0.0",
        OPERATOR,
        True,
        "2018-01-04T11:35:37Z",  # no milliseconds on purpose
        None,
        "20141030T081701Z",
        {"tags": {"role": "os", "group": "minimal-64-lts"}},
    ),
    (
        "900cffef-55e3-4e7d-b7ec-ccf439a159e3",
        "inc-level-2",
        "1.0.0",
        VADER,
        False,
        "2018-03-06T21:12:15.436Z",
        "c58161c0-2547-11e2-a75e-9fdca1940570",
        "20170608T172457Z",
        {},
    ),
    (
        "15963d90-61d7-4664-87a6-f56b16492d5a",
        "inc-level-3",
        "1.0.0",
        VADER,
        False,
        "2018-03-06T21:16:12.134Z",
        "900cffef-55e3-4e7d-b7ec-ccf439a159e3",
        "20170608T172457Z",
        {},
    ),
    (
        "649d6948-4f1d-11e8-8249-1b9928638559",
        "inc-level-4",
        "1.0.0",
        VADER,
        False,
        "2018-03-15T16:59:40.102Z",
        "15963d90-61d7-4664-87a6-f56b16492d5a",
        "20170608T172457Z",
        {},
    ),
    (
        "f3078f0c-a53b-4140-b7af-fbb6308a8e35",
        "vader-private",
        "0.0.1",
        VADER,
        False,
        "2012-11-02T22:46:45.992Z",
        None,
        None,
        {},
    ),
    (
        "9f819499-8298-9842-8cc5-1c2838196ab4",
        "i-am-your-father",
        "0.0.1",
        VADER,
        False,
        "2012-11-02T22:46:45.992Z",
        None,
        None,
        {},
    ),
    (
        "7a1b1967-6ecf-1e4c-8f09-f49094cc36ad",
        "public-operator-image-1",
        "0.0.1",
        OPERATOR,
        True,
        "2012-11-02T22:46:45.992Z",
        None,
        None,
        {},
    ),
]


def xdc_manifest(
    uuid: str,
    name: str,
    version: str,
    owner: str,
    public: bool,
    published_at: str,
    origin: str | None,
    min_platform: str | None,
    extra: dict[str, Any],
) -> dict[str, Any]:
    """An API-form v2 manifest as a remote IMGAPI returns it."""
    m: dict[str, Any] = {
        "v": 2,
        "uuid": uuid,
        "owner": owner,
        "name": name,
        "version": version,
        "description": f"{name}: a remote test image" + (f" built on {origin}" if origin else ""),
        "state": "active",
        "disabled": False,
        "public": public,
        "published_at": published_at,
        "type": "zone-dataset",
        "os": "smartos",
        "files": [{"sha1": XDC_SHA1, "size": len(XDC_FILE_BYTES), "compression": "bzip2", "stor": "local"}],
    }
    if min_platform is not None:
        m["requirements"] = {"min_platform": {"7.0": min_platform}, "networks": _NETWORKS}
    if origin is not None:
        m["origin"] = origin
    m.update(extra)
    return m


def tiny_jpeg() -> bytes:
    """A valid 1x1 grey baseline JPEG: one 8x8 block whose coefficients are all zero.

    Both Huffman tables hold a single one-bit code (``0``): DC category 0 and AC end-of-block, so
    the entropy-coded scan is the two bits ``00`` padded with ones.
    """

    def segment(marker: int, payload: bytes) -> bytes:
        return struct.pack(">HH", marker, len(payload) + 2) + payload

    one_code = bytes([1] + [0] * 15) + b"\x00"  # counts per code length, then the symbols
    return b"".join(
        [
            b"\xff\xd8",  # SOI
            segment(0xFFE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"),
            segment(0xFFDB, b"\x00" + bytes([1] * 64)),  # quantisation table 0, all ones
            segment(0xFFC0, b"\x08\x00\x01\x00\x01\x01\x01\x11\x00"),  # 8-bit, 1x1, one component
            segment(0xFFC4, b"\x00" + one_code),  # DC table 0
            segment(0xFFC4, b"\x10" + one_code),  # AC table 0
            segment(0xFFDA, b"\x01\x01\x00\x00\x3f\x00"),  # scan: component 1, tables 0/0
            b"\x3f",
            b"\xff\xd9",  # EOI
        ]
    )


def write_fixtures(dest: Path) -> Path:
    """Write every fixture file into ``dest`` (created if needed) and return it."""
    dest.mkdir(parents=True, exist_ok=True)
    for src in DATA.iterdir():
        shutil.copyfile(src, dest / src.name)
    (dest / "what_a_piece_of_junk.zfs.bz2").write_bytes(JUNK_BYTES)
    (dest / "fauxnodejs-1.4.0.zfs.bz2").write_bytes(bz2.compress(b"fauxnodejs 1.4.0 image file\n", 9))
    (dest / "fauxubuntu.zfs.bz2").write_bytes(bz2.compress(b"fauxubuntu 2.2.1 image file\n", 9))
    (dest / "icon.jpg").write_bytes(tiny_jpeg())
    xdc = dest / "xdc"
    xdc.mkdir(exist_ok=True)
    for row in _XDC:
        m = xdc_manifest(*row)
        (xdc / f"{m['uuid']}.manifest").write_text(json.dumps(m, indent=2) + "\n")
        (xdc / f"{m['uuid']}.file0").write_bytes(XDC_FILE_BYTES)
    return dest


def _materialize() -> Path:
    root = Path(tempfile.mkdtemp(prefix="imgapi-fixtures-"))
    atexit.register(shutil.rmtree, root, True)
    return write_fixtures(root / "imgapi")


FIXTURES = _materialize()
