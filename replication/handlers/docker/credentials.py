"""Registry credentials from the Docker CLI's headers (``X-Registry-Auth``, ``X-Registry-Config``).

Both are base64 (standard or URL-safe, padded or not) JSON; a header that does not decode is ignored
(anonymous access). Neither is ever logged or echoed.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from imgapi_common.errors import ImgapiError
from replication.adapters.docker.registry import Credentials
from replication.domain.docker.reference import DOCKER_HUB

_LEGACY_HUB_KEY = "https://index.docker.io/v1/"
_NOT_IMPLEMENTED = (
    'OAuth to Docker registry is not yet supported, please "docker logout" and "docker login" and try again'
)


def decode_header(value: str | None) -> Any:
    """The JSON a header carries, None when absent or undecodable."""
    if not value:
        return None
    text = value.strip().replace("-", "+").replace("_", "/")
    text += "=" * (-len(text) % 4)
    try:
        return json.loads(base64.b64decode(text, validate=False))
    except (binascii.Error, ValueError):
        return None


def select_credentials(
    index_name: str, registry_auth: str | None, registry_config: str | None
) -> Credentials | None:
    """The credentials for registry ``index_name``; raises 400 ``NotImplemented`` for an identity token."""
    chosen: Any = None
    config = decode_header(registry_config)
    if isinstance(config, dict):
        chosen = config.get(index_name)
        if chosen is None and index_name == DOCKER_HUB:
            chosen = config.get(_LEGACY_HUB_KEY)
    auth = decode_header(registry_auth)
    if auth is not None:
        chosen = auth
    if not isinstance(chosen, dict):
        return None
    if chosen.get("identitytoken"):
        raise ImgapiError("NotImplemented", _NOT_IMPLEMENTED)
    user, password = chosen.get("username"), chosen.get("password")
    if not isinstance(user, str):
        return None
    return Credentials(user, password if isinstance(password, str) else "")
