"""Replaying the raw HTTP transcripts of tests/gateway/transcripts.md against a running gateway."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.components import FIXTURES

EXAMPLES = Path(__file__).with_name("transcripts.md")
JUNK = FIXTURES / "what_a_piece_of_junk.zfs.bz2"
#: Request headers that are illustrative in the transcripts (set by the client library instead).
_DROP = {"host", "date", "connection", "content-length", "authorization"}


@dataclass
class Exchange:
    section: str
    method: str
    target: str
    headers: dict[str, str]
    body: bytes
    status: int
    response_headers: dict[str, str]
    response_body: str


def _split(block: str) -> tuple[str, list[tuple[str, str]], str]:
    head, _, body = block.partition("\n\n")
    lines = head.split("\n")
    headers = []
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers.append((k.strip(), v.strip()))
    return lines[0], headers, body


def parse_examples(text: str | None = None) -> list[Exchange]:
    text = EXAMPLES.read_text() if text is None else text
    out: list[Exchange] = []
    section = ""
    pending: tuple[str, str, dict[str, str], bytes] | None = None
    pos = 0
    block_re = re.compile(r"^```http\n(.*?)\n```", re.S | re.M)
    heading_re = re.compile(r"^(#{2,3} .*)$", re.M)
    for m in block_re.finditer(text):
        for h in heading_re.finditer(text, pos, m.start()):
            section = h.group(1).lstrip("# ").strip()
        pos = m.end()
        first, headers, body = _split(m.group(1))
        if first.startswith("HTTP/1.1"):
            assert pending is not None, first
            method, target, req_headers, req_body = pending
            status = int(first.split()[1])
            out.append(Exchange(section, method, target, req_headers, req_body, status, dict(headers), body))
            pending = None
        else:
            method, target, _ = first.split(" ")
            req_headers = {k: v for k, v in headers if k.lower() not in _DROP}
            if any(k.lower() == "authorization" for k, _ in headers):
                req_headers["Authorization"] = "<sign>"
            raw = body.encode("utf-8")
            if "/file" in target and body == "What a piece of junk!":
                raw = JUNK.read_bytes()  # the transcript shows the 22 bytes without their newline
            pending = (method, target.replace("%%", "%"), req_headers, raw)
    return out


@dataclass
class Substitutions:
    """Example value -> value observed on this server (uuids, timestamps, etags)."""

    values: dict[str, str] = field(default_factory=dict)

    def apply(self, text: str) -> str:
        for k, v in self.values.items():
            text = text.replace(k, v)
        return text


def compact_sha1(obj: object) -> str:
    return hashlib.sha1(json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()).hexdigest()


def replay(
    client: httpx.Client,
    ex: Exchange,
    subs: Substitutions,
    *,
    sign: Callable[[dict[str, str]], None] | None = None,
    learn: Callable[[Exchange, httpx.Response, Substitutions], None] | None = None,
) -> httpx.Response:
    """Send one transcript request and check status, body and Content-Length against it."""
    headers = {k: subs.apply(v) for k, v in ex.headers.items()}
    if headers.get("Authorization") == "<sign>":
        del headers["Authorization"]
        assert sign is not None
        sign(headers)
    r = client.request(ex.method, subs.apply(ex.target), headers=headers, content=ex.body or None)
    if learn is not None:
        learn(ex, r, subs)
    where = f"{ex.section}: {ex.method} {ex.target}"
    assert r.status_code == ex.status, f"{where}: {r.status_code} {r.text}"
    expected_body = subs.apply(ex.response_body)
    if ex.status in (204, 304):
        assert r.content == b"", where
    elif ex.response_headers.get("Content-Type") != "application/json":
        # A file download: the transcript shows the stored bytes without their final newline.
        assert r.content == subs.apply(ex.response_body).encode() + b"\n", where
        if ex.target.split("?")[0].endswith("/file"):
            assert r.content == JUNK.read_bytes(), where
    else:
        assert r.json() == json.loads(expected_body), where
        assert r.text == expected_body, where  # 2-space indentation, key order
        # Exact Content-Length; equal to the transcript's when no substituted value changed length.
        assert r.headers["content-length"] == str(len(expected_body.encode())), where
        if len(subs.apply(ex.response_body)) == len(ex.response_body):
            assert r.headers["content-length"] == ex.response_headers["Content-Length"], where
    for name in ("Allow", "workflow-api", "Content-MD5", "Content-Type"):
        if name in ex.response_headers and name != "workflow-api":
            assert r.headers.get(name.lower()) == ex.response_headers[name], (where, name)
    if "Etag" in ex.response_headers and ex.response_headers.get("Content-Type") == "application/json":
        assert r.headers["etag"] == compact_sha1(r.json()), where
    return r
