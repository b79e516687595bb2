"""Docker layers as IMGAPI images: derived UUIDs, the layer list of a manifest + config, and the
manifest of a layer image."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from imgapi_common.errors import ImgapiError

_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
MAX_DESCRIPTION = 10240
_COMPRESSION_BY_SUFFIX = (
    (".tar.gzip", "gzip"),
    (".tar.bzip2", "bzip2"),
    (".tar.xz", "xz"),
    ("rootfs.diff.tar", "none"),
    ("rootfs.diff", "none"),
    # OCI layers (accepted when OCI manifests are enabled)
    ("image.layer.v1.tar+gzip", "gzip"),
    ("image.layer.v1.tar", "none"),
)
_MAGIC = ((b"\x1f\x8b\x08", "gzip"), (b"\x42\x5a\x68", "bzip2"), (b"\xfd\x37\x7a\x58\x5a\x00", "xz"))
CONFIG_KEYS = ("Cmd", "Entrypoint", "Env", "WorkingDir")


def check_digest(digest: str) -> None:
    if not _DIGEST.match(digest):
        raise ImgapiError(
            "ValidationFailed", f'docker digests should be of the form "sha256:xxx", got: {digest}'
        )


def layer_uuid(digests: list[str]) -> str:
    """The UUID of the layer whose stack (base first) has these compressed blob digests."""
    for d in digests:
        check_digest(d)
    h = hashlib.sha256(" ".join(digests).encode()).hexdigest()
    return f"{h[0:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def short_id(digest: str) -> str:
    return digest.removeprefix("sha256:")[:12]


def compression_of_media_type(media_type: str) -> str | None:
    """The compression a layer media type says, None when it says nothing known."""
    for suffix, name in _COMPRESSION_BY_SUFFIX:
        if media_type.endswith(suffix):
            return name
    return None


def sniff_compression(head: bytes) -> str:
    """The compression of a blob from its first bytes (fewer than 6 bytes: ``none``)."""
    if len(head) < 6:
        return "none"
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    return "none"


@dataclass(frozen=True)
class Layer:
    """One non-empty layer of the image being imported (``index`` 0 = base)."""

    index: int
    digest: str
    media_type: str
    size: int
    uncompressed_digest: str
    uuid: str
    origin: str | None
    #: The layer's Docker JSON: the whole config for the top layer when the config's last history
    #: entry is this layer, else a small object made of its history entry.
    json: dict[str, Any]

    @property
    def short(self) -> str:
        return short_id(self.digest)


def layers_of(manifest: dict[str, Any], config: dict[str, Any]) -> list[Layer]:
    """The non-empty layers of a schema 2 manifest, matched with the config's history and diff_ids."""
    mlayers = manifest.get("layers") or []
    diff_ids = (config.get("rootfs") or {}).get("diff_ids") or []
    history = config.get("history")
    if not isinstance(history, list):
        history = [{"created": config.get("created")} for _ in mlayers]
    non_empty = [h for h in history if not (isinstance(h, dict) and h.get("empty_layer") is True)]
    if len(non_empty) > len(mlayers) or len(diff_ids) != len(mlayers):
        raise ImgapiError("ValidationFailed", "docker config history does not match the manifest layers")
    out: list[Layer] = []
    digests: list[str] = []
    for pos, entry in enumerate(history):
        entry = entry if isinstance(entry, dict) else {}
        if entry.get("empty_layer") is True:
            continue
        i = len(out)
        ml = mlayers[i]
        digests.append(str(ml.get("digest", "")))
        uuid = layer_uuid(digests)
        if pos == len(history) - 1:
            js: dict[str, Any] = config
        else:
            js = {"created": entry.get("created"), "container_config": {"Cmd": [entry.get("created_by")]}}
        out.append(
            Layer(
                index=i,
                digest=digests[-1],
                media_type=str(ml.get("mediaType", "")),
                size=int(ml.get("size") or 0),
                uncompressed_digest=str(diff_ids[i]),
                uuid=uuid,
                origin=out[-1].uuid if out else None,
                json=js,
            )
        )
    return out


def published_at(created: Any) -> str:
    """An RFC 3339 time as ``YYYY-MM-DDTHH:MM:SS.mmmZ`` in UTC, the fraction cut to milliseconds."""
    if not isinstance(created, str):
        raise ValueError("no created time")
    m = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$", created.strip())
    if not m:
        raise ValueError(f"not a time: {created}")
    frac = (m.group(2) or ".0")[1:]
    zone = "+00:00" if m.group(3) == "Z" else m.group(3)
    t = datetime.fromisoformat(m.group(1) + zone).astimezone(UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S") + f".{frac[:3].ljust(3, '0')}Z"


def _description(js: dict[str, Any]) -> str:
    comment = js.get("comment")
    if isinstance(comment, str) and comment:
        return comment[:MAX_DESCRIPTION]
    cmd = (js.get("container_config") or {}).get("Cmd")
    if isinstance(cmd, list):
        return " ".join("" if c is None else str(c) for c in cmd)[:MAX_DESCRIPTION]
    return ""


def layer_manifest(
    layer: Layer, *, owner: str, public: bool, local_name: str, channel: str = ""
) -> dict[str, Any]:
    """The manifest of a new layer image (AdminImportImage input)."""
    js = layer.json
    try:
        when = published_at(js.get("created"))
    except ValueError:
        raise ImgapiError("InternalError", "could not convert Docker image JSON to a manifest") from None
    m: dict[str, Any] = {
        "v": 2,
        "uuid": layer.uuid,
        "owner": owner,
        "name": "docker-layer",
        "version": layer.short,
        "disabled": False,
        "public": public,
        "published_at": when,
        "type": "docker",
        "os": "linux" if js.get("os") == "linux" else "other",
    }
    description = _description(js)
    if description:
        m["description"] = description
    if layer.origin:
        m["origin"] = layer.origin
    tags: dict[str, Any] = {"docker:repo": local_name, "docker:id": layer.digest}
    if "architecture" in js:
        tags["docker:architecture"] = js["architecture"]
    cfg = js.get("config")
    if isinstance(cfg, dict):
        tags["docker:config"] = {k: cfg[k] for k in CONFIG_KEYS if k in cfg}
    m["tags"] = tags
    if channel:
        m["channels"] = [channel]
    return m
