"""Docker schema 1 (v2.1) manifests: signature check and up-conversion to a schema 2 image.

A signed manifest carries JWS signatures over its own text (``formatLength`` bytes of it plus the
``formatTail``); every signature must verify with the JWK of its header (``x5c`` chains and
algorithm ``none`` are refused). The layers come newest first; the converted image lists them base
first, with a history entry each (empty for Dockerfile metadata steps) and a config made of the top
layer's v1 JSON.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from blob_client import BlobClient, BlobError
from imgapi_common.errors import ImgapiError
from replication.handlers.docker.pull import Pulled

MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
CONFIG_TYPE = "application/vnd.docker.container.image.v1+json"
LAYER_TYPE = "application/vnd.docker.image.rootfs.diff.tar"
_NOP = re.compile(r" #\(nop\) \s*(\w+)")


def _b64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _verify_one(sig: dict[str, Any], body: bytes) -> bytes:
    header = sig.get("header") or {}
    alg = str(header.get("alg", ""))
    if alg.lower() == "none" or "x5c" in header or "jwk" not in header:
        raise ImgapiError("InternalError", f"unsupported manifest signature (alg {alg or 'none'})")
    protected_text = str(sig.get("protected", ""))
    protected = json.loads(_b64(protected_text))
    payload = body[: int(protected["formatLength"])] + _b64(str(protected["formatTail"]))
    signing_input = f"{protected_text}.".encode() + base64.urlsafe_b64encode(payload).rstrip(b"=")
    signature = _b64(str(sig.get("signature", "")))
    # cryptography (~8 MiB resident) loads with the first schema 1 manifest, not with the service.
    from replication.handlers.docker.jwk import verify_with_jwk

    verify_with_jwk(header["jwk"], alg, signature, signing_input)
    return payload


def verified_payload(body: bytes, manifest: dict[str, Any], header_digest: str | None) -> bytes:
    """The signed payload of a schema 1 manifest (every signature checked; the
    ``Docker-Content-Digest`` header, when given, must be its SHA-256)."""
    sigs = manifest.get("signatures")
    if not isinstance(sigs, list) or not sigs:
        raise ImgapiError("InternalError", "schema 1 manifest is not signed")
    payloads = {_verify_one(s, body) for s in sigs if isinstance(s, dict)}
    if len(payloads) != 1:
        raise ImgapiError("InternalError", "schema 1 manifest signatures disagree on the payload")
    payload = payloads.pop()
    digest = "sha256:" + hashlib.sha256(payload).hexdigest()
    if header_digest and header_digest != digest:
        raise ImgapiError("ValidationFailed", f"manifest digest {digest} does not match {header_digest}")
    return payload


@dataclass
class Schema1Image:
    #: base first: (blob digest, v1 JSON, history entry)
    layers: list[tuple[str, dict[str, Any], dict[str, Any]]]

    @property
    def non_empty(self) -> list[str]:
        return [d for d, _, h in self.layers if not h.get("empty_layer")]


def parse_schema1(manifest: dict[str, Any]) -> Schema1Image:
    fs, history = manifest.get("fsLayers") or [], manifest.get("history") or []
    layers = []
    for fs_layer, h in zip(reversed(fs), reversed(history), strict=True):
        text = str(h.get("v1Compatibility", ""))
        try:
            v1 = json.loads(text)
        except ValueError as e:
            raise ImgapiError(
                "ValidationFailed", f'invalid "v1Compatibility" JSON in docker manifest: {e} ({text})'
            ) from None
        cmd = (v1.get("container_config") or {}).get("Cmd")
        created_by = " ".join(str(c) for c in cmd) if isinstance(cmd, list) else ""
        entry: dict[str, Any] = {"created": v1.get("created"), "created_by": created_by}
        m = _NOP.search(created_by)
        if m and m.group(1) not in ("ADD", "COPY", "RUN"):
            entry["empty_layer"] = True
        for key in ("author", "comment"):
            if key in v1:
                entry[key] = v1[key]
        layers.append((str(fs_layer.get("blobSum", "")), v1, entry))
    return Schema1Image(layers)


def upconvert(
    image: Schema1Image, diff_ids: list[str], sizes: list[int], compressions: list[str]
) -> tuple[dict[str, Any], bytes, dict[str, Any], str]:
    """(config, config text, manifest, manifest text) of the converted image; the lists are of the
    non-empty layers, base first."""
    config = {k: v for k, v in image.layers[-1][1].items() if k != "id"}
    config["history"] = [h for _, _, h in image.layers]
    config["rootfs"] = {"type": "layers", "diff_ids": diff_ids}
    config_text = json.dumps(config, separators=(",", ":"), ensure_ascii=False).encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_V2,
        "config": {
            "mediaType": CONFIG_TYPE,
            "size": len(config_text),
            "digest": "sha256:" + hashlib.sha256(config_text).hexdigest(),
        },
        "layers": [
            {"digest": d, "mediaType": LAYER_TYPE + ("" if c == "none" else f".{c}"), "size": s}
            for d, s, c in zip(image.non_empty, sizes, compressions, strict=True)
        ],
    }
    return config, config_text, manifest, json.dumps(manifest, indent=4, ensure_ascii=False)


def uncompressed_digest(blobs: BlobClient, pulled: Pulled, report: Callable[[str], None]) -> str:
    """The diff_id of a pulled layer: what its image recorded, else the SHA-256 of the stored
    blob decompressed (gzip only). The digest is computed after the download finished, so a
    layer that has to be decompressed reports ``Uncompressing layer`` before and
    ``Uncompression completed`` after (through ``report``)."""
    found = pulled.found
    if pulled.reused and found is not None and found.files and found.files[0].HasField("uncompressed_digest"):
        return found.files[0].uncompressed_digest
    if pulled.compression == "none":
        return pulled.layer.digest
    if pulled.compression != "gzip":
        raise ImgapiError("InternalError", f"Unsupported layer compression: {pulled.compression}")
    blob_id = pulled.blob.blob_id if pulled.blob is not None else (found.files[0].blob_id if found else "")
    inflate = zlib.decompressobj(wbits=31)
    sha = hashlib.sha256()
    report("Uncompressing layer")
    try:
        for chunk in blobs.read(blob_id):
            sha.update(inflate.decompress(chunk))
        sha.update(inflate.flush())
    except BlobError as e:
        raise ImgapiError("InternalError", f"{e.reason}: {e.message}") from None
    except zlib.error as e:
        raise ImgapiError("InternalError", f"layer {pulled.layer.digest} is not gzip: {e}") from None
    report("Uncompression completed")
    return "sha256:" + sha.hexdigest()
