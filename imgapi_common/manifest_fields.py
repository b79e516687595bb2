"""The image manifest fields as every side sees them: their allowed values, their size limits, the
JSON types a client may send, and which of them UpdateImage may change.

The catalog's validation enforces these rules; the gateway's OpenAPI document describes them; the
replication copier keeps the updatable ones in sync; all of them share the owner of nobody's images
and the longest origin chain. Written once here, so the three cannot drift.
"""

from __future__ import annotations

from typing import Any

from imgapi_common.jsvalues import js_len, js_string

Schema = dict[str, Any]

STATES = ("active", "unactivated", "disabled", "creating", "failed")
#: In the reference server's order (its error message lists them so; lxd came last).
TYPES = ("zone-dataset", "lx-dataset", "zvol", "docker", "other", "lxd")
OSES = ("smartos", "linux", "windows", "bsd", "illumos", "other")
COMPRESSIONS = ("bzip2", "gzip", "xz", "none")
BOOTROMS = ("bios", "uefi")
#: Placeholder states, in which ``type``/``os`` may be the pseudo-value ``"null"``.
PLACEHOLDER_STATES = ("creating", "failed")

MAX_FILE_SIZE = 21474836480  # 20 GiB
MAX_ICON_SIZE = 131072  # 128 KiB
MAX_NAME_LENGTH = 1024
MAX_VERSION_LENGTH = 512
MAX_DESCRIPTION_LENGTH = 10240
MAX_URL_LENGTH = 1024
MAX_BILLING_TAG_LENGTH = 128
#: ``tags``: the most characters of its compact JSON.
MAX_TAGS_JSON_LENGTH = 102400
#: A longer string tag value is searchable by its key only (``KEY=``).
MAX_TAG_SEARCH_VALUE_LENGTH = 100

#: The owner of images that belong to nobody in particular (public/private servers, SDC admin).
ZERO_UUID = "00000000-0000-0000-0000-000000000000"
#: Longest origin chain any operation walks: the catalog's, a remote import's, a replication job's.
MAX_ORIGIN_CHAIN = 100

#: Whole-value patterns (anchor them with ``fullmatch`` or ``^...$``).
NAME_PATTERN = r"[A-Za-z0-9._/ -]+"
VERSION_PATTERN = r"[A-Za-z0-9._/+-]+"
PUBLISHED_AT_PATTERN = r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{3})?Z"

#: Fields specific to zvol images (taken from create/import bodies only when ``type == "zvol"``).
ZVOL_FIELDS = ("nic_driver", "disk_driver", "cpu_type", "image_size")

#: Fields a user (not only an operator) may change with UpdateImage.
USER_UPDATABLE_FIELDS = (
    "owner",
    "name",
    "version",
    "description",
    "homepage",
    "eula",
    "public",
    "os",
    "acl",
    "requirements",
    "users",
    "tags",
    "generate_passwords",
    "inherited_directories",
    *ZVOL_FIELDS,
    "channels",
)
#: UpdateImage fields only an operator may change, in the order they are checked.
OPERATOR_ONLY_FIELDS = ("state", "error", "billing_tags", "traits", "files", "origin", "uuid")

UUID: Schema = {"type": "string", "format": "uuid", "pattern": "^[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}$"}
_URL: Schema = {"type": "string", "maxLength": MAX_URL_LENGTH, "pattern": "^[Hh][Tt][Tt][Pp][Ss]?:"}
_PLATFORMS: Schema = {
    "type": "object",
    "minProperties": 1,
    "additionalProperties": {
        "type": "string",
        "pattern": "^20[1-9][0-9][01][0-9][0-3][0-9]T[0-2][0-9][0-5][0-9][0-5][0-9]Z$",
    },
    "description": "SDC version -> platform build stamp YYYYMMDDTHHMMSSZ",
}

#: JSON Schema of a valid ``requirements`` object.
REQUIREMENTS: Schema = {
    "type": "object",
    "properties": {
        "networks": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "description"],
                "properties": {"name": {"type": "string"}, "description": {"type": "string"}},
                "additionalProperties": False,
            },
        },
        "brand": {"type": "string"},
        "ssh_key": {"type": "boolean"},
        "min_ram": {"type": "integer", "minimum": 0},
        "max_ram": {"type": "integer", "minimum": 0},
        "min_platform": _PLATFORMS,
        "max_platform": _PLATFORMS,
        "bootrom": {"enum": list(BOOTROMS)},
    },
}

#: Every field a client may send to CreateImage, with the JSON Schema of a valid value (an import
#: adds ``uuid``, ``published_at`` and ``urn``; the server sets the others).
CLIENT_FIELDS: dict[str, Schema] = {
    "v": {"type": "integer", "minimum": 0},
    "owner": UUID,
    "name": {
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_NAME_LENGTH,
        "pattern": f"^{NAME_PATTERN}$",
    },
    "version": {
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_VERSION_LENGTH,
        "pattern": f"^{VERSION_PATTERN}$",
    },
    "description": {"type": "string", "maxLength": MAX_DESCRIPTION_LENGTH},
    "homepage": _URL,
    "eula": _URL,
    "disabled": {"type": "boolean"},
    "public": {"type": "boolean"},
    "type": {"enum": list(TYPES)},
    "os": {"enum": list(OSES)},
    "origin": UUID,
    "acl": {"type": "array", "items": UUID},
    "requirements": REQUIREMENTS,
    "users": {
        "type": "array",
        "items": {
            "type": "object",
            "required": ["name"],
            "properties": {"name": {"type": "string"}},
            "additionalProperties": False,
        },
    },
    "traits": {
        "type": "object",
        "additionalProperties": {"type": ["string", "boolean", "array"]},
    },
    "tags": {"type": "object", "description": "any JSON values; compact JSON <= 100 KiB"},
    "billing_tags": {"type": "array", "items": {"type": "string", "maxLength": MAX_BILLING_TAG_LENGTH}},
    "generate_passwords": {"type": "boolean"},
    "inherited_directories": {"type": "array", "items": {"type": "string"}},
    "nic_driver": {"type": "string"},
    "disk_driver": {"type": "string"},
    "cpu_type": {"type": "string"},
    "image_size": {"type": "integer"},
}


def tag_search_text(value: Any) -> str:
    """The text a tag value is searched by (ListImages' ``tag.KEY=V``, replication's tag filters):
    JavaScript's ``String(v)`` of a number or boolean, a string as it is; a string longer than
    :data:`MAX_TAG_SEARCH_VALUE_LENGTH` or a non-scalar value is searchable by its key only (``""``)."""
    if isinstance(value, str):
        return value if js_len(value) <= MAX_TAG_SEARCH_VALUE_LENGTH else ""
    if isinstance(value, (bool, int, float)):
        return js_string(value)
    return ""
