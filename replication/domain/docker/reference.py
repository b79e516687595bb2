"""Parsing a Docker repository string (``busybox``, ``quay.io/coreos/etcd``, ``http://host:5000/x``)
with its ``:tag`` or ``@digest`` into the names the import uses.

* ``index_name``: the registry, ``host[:port]`` (``docker.io`` for Docker Hub);
* ``remote_name``: the repository at that registry (registry URLs, token scopes);
* ``local_name``: how people write it (progress texts, the ``docker:repo`` tag);
* ``canonical_name``: ``local_name`` with ``docker.io/`` made explicit (every message's ``id``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DOCKER_HUB = "docker.io"
_LEGACY_HUB = "https://index.docker.io/v1/"
_NAMESPACE_CHARS = re.compile(r"^[a-z0-9._-]*$")
_NAME_CHARS = re.compile(r"^[a-z0-9_/.-]*$")


class ReferenceError(ValueError):
    """The repository string does not parse; the message is the caller's error text."""


@dataclass(frozen=True)
class Repository:
    index_name: str
    #: ``http`` / ``https`` when the string gave one, else "".
    scheme: str
    remote_name: str

    @property
    def official(self) -> bool:
        return self.index_name == DOCKER_HUB

    @property
    def local_name(self) -> str:
        if self.official:
            return self.remote_name.removeprefix("library/")
        return f"{self.index_name}/{self.remote_name}"

    @property
    def canonical_name(self) -> str:
        return f"{DOCKER_HUB}/{self.local_name}" if self.official else self.local_name

    @property
    def base_url(self) -> str:
        """Where the registry's API is: Docker Hub over https; loopback names over http unless a
        scheme was given; anything else over https (no fallback)."""
        if self.official:
            return "https://registry-1.docker.io"
        scheme = self.scheme
        if not scheme:
            host = self.index_name.rsplit(":", 1)[0] if not self.index_name.startswith("[") else ""
            scheme = "http" if host in ("localhost", "127.0.0.1") else "https"
        return f"{scheme}://{self.index_name}"


@dataclass(frozen=True)
class Reference:
    repository: Repository
    tag: str = ""
    digest: str = ""

    @property
    def ref(self) -> str:
        """The tag or the digest, as given."""
        return self.digest or self.tag


def _normalize_index(name: str) -> str:
    name = name.rstrip("/") if name != _LEGACY_HUB else DOCKER_HUB
    return DOCKER_HUB if name == "index.docker.io" else name


def _check_namespace(ns: str) -> None:
    if not 2 <= len(ns) <= 255:
        raise ReferenceError(f"invalid repository namespace, must be between 2 and 255 characters: {ns}")
    if not _NAMESPACE_CHARS.match(ns):
        raise ReferenceError(f"invalid repository namespace, may only contain [a-z0-9._-] characters: {ns}")
    if ns.startswith("-") and ns.endswith("-"):
        raise ReferenceError(f"invalid repository namespace, cannot start or end with a hypen: {ns}")
    if "--" in ns:
        raise ReferenceError(f"invalid repository namespace, cannot contain consecutive hyphens: {ns}")


def parse_repository(arg: str) -> Repository:
    """The registry and repository names of ``arg`` (no tag or digest)."""
    scheme = ""
    rest = arg
    m = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://", arg)
    if m:
        scheme = m.group(1)
        after = arg[m.end() :]
        host, sep, rest = after.partition("/")
        if scheme not in ("http", "https"):
            raise ReferenceError(f'invalid index scheme, must be "http" or "https": {scheme}://{host}')
        if not sep:
            raise ReferenceError(f'invalid repository name, no "/REPO" after hostame: {arg}')
        index = _normalize_index(host)
    else:
        first, sep, remainder = arg.partition("/")
        if sep and ("." in first or ":" in first or first == "localhost"):
            index, rest = _normalize_index(first), remainder
        else:
            index = DOCKER_HUB
    if index == DOCKER_HUB and scheme == "http":
        raise ReferenceError(f"insecure (http) access to the official index is not allowed: {arg}")
    if "/" in rest:
        ns, _, name = rest.partition("/")
        _check_namespace(ns)
    else:
        ns, name = ("library" if index == DOCKER_HUB else ""), rest
    if not _NAME_CHARS.match(name):
        raise ReferenceError(f"invalid repository name, may only contain [a-z0-9_/.-] characters: {name}")
    remote = f"{ns}/{name}" if ns else name
    return Repository(index, scheme, remote)


def parse_reference(arg: str) -> Reference:
    """``<repo>@<digest>`` (split at the last ``@``) or ``<repo>:<tag>`` (the last ``:`` after the
    last ``/``); a bare repository means tag ``latest``."""
    if "@" in arg:
        repo, _, digest = arg.rpartition("@")
        return Reference(parse_repository(repo), digest=digest)
    slash = arg.rfind("/")
    colon = arg.rfind(":")
    if colon > slash:
        return Reference(parse_repository(arg[:colon]), tag=arg[colon + 1 :])
    return Reference(parse_repository(arg), tag="latest")
