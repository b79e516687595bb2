"""A Docker registry (distribution API v2) as the import sees it: login (Basic or token auth),
manifests, blobs. Every hop (redirects and token realms included) goes through the SSRF guard.

Failures are :class:`ImgapiError` with the code the import reports: ``RemoteSourceError`` for the
network, ``ResourceNotFound`` for a missing manifest or blob (or a refused manifest after login),
``UnauthorizedError`` for a failed login, ``InternalError`` for other registry answers.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import httpx

from imgapi_common import ssrf
from imgapi_common.errors import ImgapiError
from replication.domain.docker.reference import Repository

#: Request headers: a mapping, or pairs when a name repeats.
HeaderInput = Mapping[str, str] | Sequence[tuple[str, str]]
MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
LISTS = (MANIFEST_LIST, OCI_INDEX)
MANIFEST_V1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"
_REDIRECTS = (302, 307)
_MAX_HOPS = 3
#: Connection failures of manifest and blob requests: retried this many times, backing off from 1 s.
CONNECT_RETRIES = 4
_PARAM = re.compile(r'(\w+)="([^"]*)"')


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str


@dataclass(frozen=True)
class Manifest:
    body: bytes
    digest: str
    media_type: str
    #: The ``Docker-Content-Digest`` the registry sent, if any.
    header_digest: str | None = None


def _status_name(code: int) -> str:
    """The error name a registry status is reported as (``InternalServerError``, ``ForbiddenError``)."""
    try:
        phrase = HTTPStatus(code).phrase
    except ValueError:
        return f"HTTP {code}"
    name = "".join(w[:1].upper() + w[1:] for w in re.split(r"[^A-Za-z0-9]+", phrase) if w)
    return name if name.endswith("Error") else name + "Error"


def connection_message(e: Exception, url: httpx.URL) -> str:
    """A network failure in the words of the reference (``connect ECONNREFUSED 127.0.0.1:5000``)."""
    where = f"{url.host}:{url.port or (443 if url.scheme == 'https' else 80)}"
    seen: BaseException | None = e
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno is not None and seen.errno in errno.errorcode:
            return f"connect {errno.errorcode[seen.errno]} {where}"
        seen = seen.__cause__ or seen.__context__
    text = str(e)
    if "Connection refused" in text:
        return f"connect ECONNREFUSED {where}"
    if isinstance(e, httpx.TimeoutException):
        return f"connect ETIMEDOUT {where}"
    return text or type(e).__name__


class Registry:
    """One session with one registry for one repository (one token, nothing cached across imports)."""

    def __init__(
        self,
        repo: Repository,
        credentials: Credentials | None,
        allowlist: ssrf.Allowlist,
        *,
        insecure: bool = False,
        user_agent: str = "imgapi",
        timeout: float = 15.0,
        retry_delay: float = 1.0,
        accept_oci: bool = False,
    ) -> None:
        self._options: dict[str, Any] = {
            "insecure": insecure,
            "user_agent": user_agent,
            "timeout": timeout,
            "retry_delay": retry_delay,
            "accept_oci": accept_oci,
        }
        self.repo = repo
        self.base = repo.base_url
        self.credentials = credentials
        self.allowlist = allowlist
        self.insecure = insecure
        self.retry_delay = retry_delay
        #: Also ask for OCI manifests and indexes (an extension; off, as in the reference).
        self.accept_oci = accept_oci
        self.http = httpx.Client(
            verify=not insecure,
            timeout=httpx.Timeout(timeout, connect=10.0),
            headers={"User-Agent": user_agent},
            follow_redirects=False,
            trust_env=False,
        )
        self.authorization: str | None = None
        self._challenge: dict[str, str] | None = None

    def close(self) -> None:
        self.http.close()

    # --- requests ------------------------------------------------------------------------------

    def _basic(self) -> str | None:
        if self.credentials is None:
            return None
        pair = f"{self.credentials.username}:{self.credentials.password}".encode()
        return "Basic " + base64.b64encode(pair).decode()

    def _send(
        self,
        url: str | httpx.URL,
        headers: HeaderInput,
        *,
        method: str = "GET",
        content: bytes | Iterator[bytes] | None = None,
        stream: bool = False,
    ) -> httpx.Response:
        """One request through the SSRF guard (no redirects)."""
        u = httpx.URL(url)
        try:
            target = ssrf.check_url(u, self.allowlist)
        except ssrf.FetchBlocked as e:
            raise ImgapiError("RemoteSourceError", f"refused by the SSRF guard: {e.message}") from None
        except ssrf.FetchError as e:
            raise ImgapiError("RemoteSourceError", f"getaddrinfo ENOTFOUND {u.host}: {e.message}") from None
        ext = {"sni_hostname": target.sni_hostname} if target.sni_hostname else {}
        request = self.http.build_request(
            method,
            target.connect_url,
            headers=[*httpx.Headers(headers).multi_items(), ("Host", target.host_header)],
            content=content,
            extensions=ext,
        )
        try:
            return self.http.send(request, stream=stream)
        except httpx.HTTPError as e:
            raise ImgapiError("RemoteSourceError", connection_message(e, u)) from None

    def _get(self, path: str, headers: HeaderInput, *, stream: bool = False) -> httpx.Response:
        """GET ``path`` of the registry with the session's authorization, following 302/307 (at most
        3 hops, without authorization) and retrying connection failures."""
        url: httpx.URL = httpx.URL(self.base + path)
        auth = [("Authorization", self.authorization)] if self.authorization else []
        for hop in range(_MAX_HOPS + 1):
            r = self._retrying(
                url, [*httpx.Headers(headers).multi_items(), *(auth if hop == 0 else [])], stream
            )
            if r.status_code not in _REDIRECTS or hop == _MAX_HOPS:
                return r
            location = r.headers.get("location", "")
            r.close()
            url = url.join(location)
        raise AssertionError("unreachable")

    def _retrying(self, url: httpx.URL, headers: HeaderInput, stream: bool) -> httpx.Response:
        for attempt in range(CONNECT_RETRIES + 1):
            try:
                return self._send(url, headers, stream=stream)
            except ImgapiError as e:
                if e.code != "RemoteSourceError" or "SSRF" in e.message or attempt == CONNECT_RETRIES:
                    raise
                time.sleep(self.retry_delay * (2**attempt))
        raise AssertionError("unreachable")

    # --- login ---------------------------------------------------------------------------------

    def login(self) -> None:
        """Find how the registry wants to be spoken to (``GET /v2/``) and get a pull token if needed."""
        r = self._send(self.base + "/v2/", {})
        r.close()
        if r.status_code == 200:
            return
        if r.status_code != 401:
            raise ImgapiError("InternalError", _status_name(r.status_code))
        self.challenge(r)

    def challenge(self, r: httpx.Response, actions: str = "pull") -> None:
        """Answer the ``WWW-Authenticate`` challenge of ``r`` for ``actions`` on the repository."""
        challenge = r.headers.get("www-authenticate", "")
        if not challenge:
            raise ImgapiError(
                "UnauthorizedError",
                'missing WWW-Authenticate header in 401 response to "GET /v2/" '
                "(see https://docs.docker.com/registry/spec/api/#api-version-check)",
            )
        scheme, _, params = challenge.partition(" ")
        if scheme.lower() == "basic":
            self.authorization = self._basic()
            return
        if scheme.lower() != "bearer":
            raise ImgapiError("UnauthorizedError", f'unsupported auth scheme: "{scheme}"')
        self._challenge = dict(_PARAM.findall(params))
        self.authorization = "Bearer " + self._token(self._challenge, actions)

    def authorize(self, actions: str) -> None:
        """A new token for ``actions`` (``pull,push``) when the registry wants tokens."""
        if self._challenge is not None:
            self.authorization = "Bearer " + self._token(self._challenge, actions)

    def _token(self, challenge: dict[str, str], actions: str) -> str:
        realm = challenge.get("realm", "")
        if "://" not in realm:
            realm = ("http://" if self.insecure else "https://") + realm
        query: list[tuple[str, str]] = []
        if challenge.get("service"):
            query.append(("service", challenge["service"]))
        query.append(("scope", f"repository:{self.repo.remote_name}:{actions}"))
        if self.credentials is not None:
            query.append(("account", self.credentials.username))
        basic = self._basic()
        r = self._send(httpx.URL(realm, params=query), {"Authorization": basic} if basic else {})
        try:
            body = r.json()
        except ValueError:
            body = {}
        finally:
            r.close()
        if r.status_code == 401:
            raise ImgapiError("UnauthorizedError", _token_refusal(body))
        if r.status_code != 200:
            raise ImgapiError("UnauthorizedError", _status_name(r.status_code))
        token = body.get("token") or body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise ImgapiError(
                "UnauthorizedError", "authorization server did not include a token in the response"
            )
        return token

    # --- manifests and blobs -------------------------------------------------------------------

    def _manifest_response(self, ref: str) -> httpx.Response:
        # one Accept line per media type, as the reference sends them
        types = [MANIFEST_V2, MANIFEST_LIST] + ([OCI_MANIFEST, OCI_INDEX] if self.accept_oci else [])
        return self._get(f"/v2/{self.repo.remote_name}/manifests/{ref}", [("Accept", t) for t in types])

    def is_public(self, digest: str) -> bool:
        """Whether an anonymous client may read the manifest ``digest`` (a session of its own,
        without credentials): refused or not found means private; any other failure is raised."""
        anonymous = Registry(self.repo, None, self.allowlist, **self._options)
        try:
            try:
                anonymous.login()
            except ImgapiError as e:
                if e.code == "UnauthorizedError":
                    return False
                raise
            r = anonymous._manifest_response(digest)
            r.close()
        finally:
            anonymous.close()
        if r.status_code in (401, 403, 404):
            return False
        _check_status(r.status_code)
        return True

    def manifest(self, ref: str) -> Manifest:
        """The manifest of a tag or digest, in the Docker media types (and OCI's when enabled)."""
        r = self._manifest_response(ref)
        try:
            body = r.read()
        finally:
            r.close()
        _check_status(r.status_code, not_found_on_401=True)
        header = r.headers.get("docker-content-digest")
        digest = header or "sha256:" + hashlib.sha256(body).hexdigest()
        return Manifest(body, digest, r.headers.get("content-type", "").split(";")[0].strip(), header)

    def blob(self, digest: str) -> bytes:
        r = self._get(f"/v2/{self.repo.remote_name}/blobs/{digest}", {})
        try:
            body = r.read()
        finally:
            r.close()
        _check_status(r.status_code)
        return body

    @contextmanager
    def open_blob(self, digest: str, headers: dict[str, str] | None = None) -> Iterator[httpx.Response]:
        """The blob's streaming response (status checked); ``headers`` e.g. a ``Range``."""
        r = self._get(f"/v2/{self.repo.remote_name}/blobs/{digest}", headers or {}, stream=True)
        try:
            _check_status(r.status_code)
            yield r
        finally:
            r.close()


def _check_status(status: int, *, not_found_on_401: bool = False) -> None:
    if 200 <= status < 300:
        return
    if status == 404:
        raise ImgapiError("ResourceNotFound", "NotFoundError")
    if status == 401 and not_found_on_401:
        raise ImgapiError("ResourceNotFound", "UnauthorizedError")
    raise ImgapiError("InternalError", _status_name(status))


def _token_refusal(body: object) -> str:
    if isinstance(body, dict):
        errors = body.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict) and errors[0].get("message"):
            return str(errors[0]["message"])
        if body.get("details"):
            return str(body["details"])
    return "authorization failed"


class RegistryAnswer(Exception):
    """A registry refused a push request: its raw body is the message (no IMGAPI code)."""

    def __init__(self, body: str) -> None:
        super().__init__(body)
        self.message = body


class PushSession(Registry):
    """A registry session that also writes: blob existence checks, blob uploads, manifests."""

    def _call(
        self,
        method: str,
        url: str | httpx.URL,
        headers: dict[str, str] | None = None,
        content: bytes | Iterator[bytes] | None = None,
    ) -> httpx.Response:
        auth = {"Authorization": self.authorization} if self.authorization else {}
        r = self._send(url, {**auth, **(headers or {})}, method=method, content=content)
        r.read()
        return r

    def ping(self) -> httpx.Response:
        """``GET /v2/`` without credentials (no retry)."""
        r = self._send(self.base + "/v2/", {})
        r.close()
        return r

    def blob_exists(self, digest: str) -> bool:
        r = self._call("HEAD", f"{self.base}/v2/{self.repo.remote_name}/blobs/{digest}")
        if r.status_code == 200:
            return True
        if r.status_code == 404:
            return False
        raise RegistryAnswer(r.text or _status_name(r.status_code))

    def upload_blob(
        self,
        digest: str,
        size: int,
        data: bytes | Iterator[bytes],
        content_type: str = "application/octet-stream",
    ) -> None:
        """A monolithic upload: ``POST .../blobs/uploads/`` then ``PUT <Location>?digest=``."""
        r = self._call("POST", f"{self.base}/v2/{self.repo.remote_name}/blobs/uploads/")
        if r.status_code != 202 or "location" not in r.headers:
            raise RegistryAnswer(r.text or _status_name(r.status_code))
        location = httpx.URL(self.base).join(r.headers["location"]).copy_merge_params({"digest": digest})
        headers = {"Content-Length": str(size), "Content-Type": content_type}
        r = self._call("PUT", location, headers, data)
        if r.status_code not in (201, 204):
            raise RegistryAnswer(r.text or _status_name(r.status_code))

    def put_manifest(self, tag: str, body: bytes, media_type: str) -> str:
        """Store the manifest under ``tag``; the registry's digest of it."""
        url = f"{self.base}/v2/{self.repo.remote_name}/manifests/{tag}"
        r = self._call("PUT", url, {"Content-Type": media_type}, body)
        if r.status_code not in (201, 202):
            raise RegistryAnswer(r.text or _status_name(r.status_code))
        return r.headers.get("docker-content-digest") or "sha256:" + hashlib.sha256(body).hexdigest()
