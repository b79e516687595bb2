"""The exact ``errors`` entries (field, code, message) of invalid manifests.

A REST client sees each of these in the ``errors`` array of a ``ValidationFailed`` answer, so the
wording and the shown value are part of the interface. Written to kill the mutants scripts/mutation
found surviving: the other validation tests check the field and the code, not the message.
Only public names are imported, so the tests survive a reshuffle of the validation module.
"""

from __future__ import annotations

from typing import Any

import pytest

from catalog_service.domain.config import DomainConfig
from catalog_service.domain.validation import validate_record

DC = DomainConfig()
PRIVATE_CHANNELS = DomainConfig(mode="private", channels=("dev",))
UUID = "1fc068b0-13b0-11e2-9f4e-2f3f6a96d9bc"
OWNER = "91ba0e64-2547-11e2-a972-df579e5fddb3"
ABSENT = object()


def manifest(**changes: Any) -> dict[str, Any]:
    """A valid active zone-dataset manifest, changed (``ABSENT`` removes a field)."""
    rec: dict[str, Any] = dict(
        v=2,
        uuid=UUID,
        owner=OWNER,
        name="base",
        version="1.0.0",
        type="zone-dataset",
        os="smartos",
        public=False,
        disabled=False,
        activated=True,
        state="active",
        published_at="2012-11-02T22:46:45.992Z",
        files=[{"sha1": "a" * 40, "size": 42, "compression": "gzip"}],
        acl=[],
    )
    rec.update(changes)
    return {k: v for k, v in rec.items() if v is not ABSENT}


def entries(rec: dict[str, Any], cfg: DomainConfig = DC) -> list[tuple[str, str, str | None]]:
    return [(e.field, e.code, e.message) for e in validate_record(rec, cfg)]


def test_the_base_manifest_is_valid() -> None:
    assert entries(manifest()) == []


# (changes, expected entries) on a dc-mode server without channels
CASES: list[tuple[dict[str, Any], list[tuple[str, str, str | None]]]] = [
    # published_at
    (
        {"published_at": ""},
        [("published_at", "MissingParameter", 'if activated is "true" published_at must be present')],
    ),
    (
        {"published_at": "2012-11-02"},
        [("published_at", "Invalid", 'published_at date not in "YYYY-MM-DDTHH:MM:SS(.SSS)Z" format')],
    ),
    (
        {"published_at": 5},
        [("published_at", "Invalid", 'published_at date not in "YYYY-MM-DDTHH:MM:SS(.SSS)Z" format')],
    ),
    ({"published_at": "", "activated": False, "state": "unactivated"}, []),
    # uuid-valued fields carry no message
    ({"owner": "nope"}, [("owner", "Invalid", None)]),
    ({"uuid": 5}, [("uuid", "Invalid", None)]),
    ({"origin": "x"}, [("origin", "Invalid", None)]),
    # boolean-ish fields
    (
        {"disabled": "yes"},
        [("disabled", "Invalid", 'invalid value for "disabled" param: "yes" is not a boolean')],
    ),
    ({"activated": 2}, [("activated", "Invalid", 'invalid value for "activated" param: 2 is not a boolean')]),
    (
        {"generate_passwords": None},
        [
            (
                "generate_passwords",
                "Invalid",
                'invalid value for "generate_passwords" param: null is not a boolean',
            )
        ],
    ),
    ({"disabled": "true", "activated": "true", "generate_passwords": "false"}, []),
    # enumerations list their values in the reference's order
    (
        {"type": "vm"},
        [
            (
                "type",
                "Invalid",
                'invalid image type, "vm", must be one of: zone-dataset, lx-dataset, zvol, docker, other, lxd',
            )
        ],
    ),
    (
        {"os": ["a", "b"]},
        [
            (
                "os",
                "Invalid",
                'invalid image os, "a,b", must be one of: smartos, linux, windows, bsd, illumos, other',
            )
        ],
    ),
    (
        {"os": "null"},
        [
            (
                "os",
                "Invalid",
                'invalid image os, "null", must be one of: smartos, linux, windows, bsd, illumos, other',
            )
        ],
    ),
    ({"type": "null", "state": "failed", "activated": False}, []),
    ({"type": "lxd", "os": "other"}, []),
    # zvol-only string fields (disk_driver's double space is the reference's)
    (
        {"nic_driver": "e1000"},
        [
            (
                "nic_driver",
                "Invalid",
                'invalid image nic_driver: "e1000" (cannot have a value when image type is zvol)',
            )
        ],
    ),
    (
        {"disk_driver": "ide"},
        [
            (
                "disk_driver",
                "Invalid",
                'invalid image disk_driver: "ide" (cannot have a value  when image type is zvol)',
            )
        ],
    ),
    (
        {"cpu_type": "host"},
        [
            (
                "cpu_type",
                "Invalid",
                'invalid image cpu_type: "host" (cannot have a value when image type is zvol)',
            )
        ],
    ),
    ({"cpu_type": ""}, []),
    (
        {"type": "zvol", "nic_driver": 5, "disk_driver": "virtio", "cpu_type": None, "image_size": 10240},
        [
            ("nic_driver", "Invalid", 'invalid image nic_driver: "5" (must be a string)'),
            ("cpu_type", "Invalid", 'invalid image cpu_type: "null" (must be a string)'),
        ],
    ),
    (
        {"image_size": 10},
        [
            (
                "image_size",
                "Invalid",
                'invalid image image_size: "10" (cannot have a value when image type is zvol)',
            )
        ],
    ),
    (
        {
            "type": "zvol",
            "nic_driver": "e1000",
            "disk_driver": "ide",
            "cpu_type": "host",
            "image_size": "ten",
        },
        [("image_size", "Invalid", 'invalid image image_size: "ten" (must be a positive integer)')],
    ),
    # URLs (eula is shown as EULA)
    ({"homepage": 5}, [("homepage", "Invalid", "image homepage must be a string: 5")]),
    ({"eula": ["x"]}, [("eula", "Invalid", 'image eula must be a string: ["x"]')]),
    ({"homepage": "ftp://example.com"}, [("homepage", "Invalid", "invalid image homepage URL protocol")]),
    ({"eula": "example.com"}, [("eula", "Invalid", "invalid image EULA URL protocol")]),
    (
        {"homepage": "http://" + "a" * 1018},
        [("homepage", "Invalid", "image homepage URL is too long (max 1024 characters)")],
    ),
    (
        {"eula": "HTTPS://" + "a" * 1017},
        [("eula", "Invalid", "image EULA URL is too long (max 1024 characters)")],
    ),
    ({"homepage": "HTTP://" + "a" * 1017, "eula": "https://x"}, []),
    # channels on a server without channels
    (
        {"channels": ["dev"]},
        [("channels", "Invalid", 'invalid image "channels": this server does not support channels')],
    ),
    # error, files
    ({"error": "boom"}, [("error", "Invalid", 'invalid image "error" (not an object): "boom"')]),
    ({"error": None}, []),
    ({"files": "f"}, [("files", "Invalid", 'invalid image "files": not an array: "f"')]),
    (
        {"files": [{"size": 0, "compression": None}]},
        [
            ("files", "Invalid", 'invalid image "files": file 0 is missing "sha1"'),
            ("files", "Invalid", 'invalid image "files": file 0 is missing "size"'),
            (
                "files",
                "Invalid",
                'invalid image "files": file 0 "compression", null, must be one of: bzip2, gzip, xz, none',
            ),
        ],
    ),
    (
        {"files": [{"sha1": "a", "size": 1, "compression": "zip"}]},
        [
            (
                "files",
                "Invalid",
                'invalid image "files": file 0 "compression", "zip", must be one of: bzip2, gzip, xz, none',
            )
        ],
    ),
    ({"files": [{}, {}]}, [("files", "Invalid", 'invalid image "files": too many files (max 1)')]),
    # billing_tags, traits
    ({"billing_tags": 5}, [("billing_tags", "Invalid", 'invalid image "billing_tags" (not an array): 5')]),
    (
        {"billing_tags": ["ok", 7, "b" * 129]},
        [
            ("billing_tags", "Invalid", 'invalid image "billing_tags" entry : 7'),
            ("billing_tags", "Invalid", 'invalid image "billing_tags" entry : ' + "b" * 129),
        ],
    ),
    ({"billing_tags": "one"}, []),
    ({"traits": "t"}, [("traits", "Invalid", 'invalid image "traits" (not an object): "t"')]),
    ({"traits": ["ok", 1]}, [("traits", "Invalid", 'invalid image "traits" entry: (1, 1)')]),
    (
        {"traits": {"a": True, "b": {"c": 1}}},
        [("traits", "Invalid", 'invalid image "traits" entry: (b, {"c":1})')],
    ),
    # inherited_directories
    (
        {"type": "lx-dataset", "inherited_directories": ["/opt"]},
        [
            (
                "inherited_directories",
                "Invalid",
                'invalid image "inherited_directories": only allowed on "zone-dataset" images',
            )
        ],
    ),
    (
        {"inherited_directories": ["/opt", 1]},
        [
            (
                "inherited_directories",
                "Invalid",
                'invalid image "inherited_directories": not an array of strings: ["/opt",1]',
            )
        ],
    ),
    # v, name, version, description, public (scripts/mutation on field_checks)
    ({"v": -1}, [("v", "Invalid", '"v" must be a positive integer')]),
    ({"name": 5}, [("name", "Invalid", "image name must be a string: 5")]),
    ({"version": [1]}, [("version", "Invalid", "image version must be a string: [1]")]),
    (
        {"version": "1 0"},
        [
            (
                "version",
                "Invalid",
                'image version has invalid characters (only alpha-numeric characters and ".", "-", "_", "/" '
                'and "+" are allowed)',
            )
        ],
    ),
    ({"version": 1.5}, []),  # a number's text is checked against the pattern
    ({"description": True}, [("description", "Invalid", "image description must be a string: true")]),
    (
        {"description": "d" * 10241},
        [("description", "Invalid", "image description is too long (max 10240 characters)")],
    ),
    ({"description": "d" * 10240}, []),
    ({"public": "yes"}, [("public", "Invalid", 'invalid value for "public" param: "yes" is not a boolean')]),
    # acl, users, tags
    ({"acl": 5}, [("acl", "Invalid", 'invalid image "acl" (not an array): 5')]),
    ({"users": "u"}, [("users", "Invalid", 'invalid image "users" (not an array): "u"')]),
    (
        {"users": [{"name": "root"}, {"name": "a", "uid": 1}]},
        [("users", "Invalid", 'invalid image "users" entry: {"name":"a","uid":1}')],
    ),
    ({"tags": ["t"]}, [("tags", "Invalid", 'invalid image "tags" (not an object): ["t"]')]),
    (
        {"tags": {"k": "v" * 102400}},
        [("tags", "Invalid", 'image "tags" string length is too long, max 102400 characters')],
    ),
]


@pytest.mark.parametrize("changes,expected", CASES)
def test_errors_entries(changes: dict[str, Any], expected: list[tuple[str, str, str | None]]) -> None:
    assert entries(manifest(**changes)) == expected


def test_channels_not_an_array_of_strings() -> None:
    rec = manifest(channels="dev")
    assert entries(rec, PRIVATE_CHANNELS) == [
        ("channels", "Invalid", 'invalid image "channels": not an array of strings: "dev"')
    ]
    assert entries(manifest(channels=["dev", "x"]), PRIVATE_CHANNELS) == []


def requirements(value: Any) -> list[tuple[str, str, str | None]]:
    return entries(manifest(requirements=value))


REQUIREMENT_CASES: list[tuple[Any, list[tuple[str, str, str | None]]]] = [
    (None, [("requirements", "Invalid", 'invalid image "requirements" (not an object): null')]),
    (5, []),  # a number has no keys
    (
        "ab",
        [("0", "Invalid", 'unsupported requirement "0"'), ("1", "Invalid", 'unsupported requirement "1"')],
    ),
    (
        {"networks": 5},
        [("requirements.networks", "Invalid", 'invalid image "requirements.networks" (not an array): 5')],
    ),
    (
        {"networks": [{"name": "net0", "description": "d"}, {"name": "net1"}]},
        [
            (
                "requirements.networks",
                "Invalid",
                'invalid image "requirements.networks" entry: {"name":"net1"}',
            )
        ],
    ),
    (
        {"brand": 5},
        [("requirements.brand", "Invalid", 'invalid image "requirements.brand" (not a string): 5')],
    ),
    (
        {"ssh_key": "yes"},
        [("requirements.ssh_key", "Invalid", 'invalid image "requirements.ssh_key" (not a boolean): "yes"')],
    ),
    ({"ssh_key": True, "brand": "joyent"}, []),
    (
        {"min_ram": "1024"},
        [
            (
                "requirements.min_ram",
                "Invalid",
                'invalid image "requirements.min_ram" (not a positive integer): "1024"',
            )
        ],
    ),
    (
        {"max_ram": 1.5},
        [
            (
                "requirements.max_ram",
                "Invalid",
                'invalid image "requirements.max_ram" (not a positive integer): 1.5',
            )
        ],
    ),
    (
        {"min_ram": 2048, "max_ram": 1024},
        [("requirements.max_ram", "Invalid", "min_ram must be <= max_ram, but:min_ram=2048, max_ram=1024")],
    ),
    ({"min_ram": 1024, "max_ram": 1024}, []),
    (
        {"min_platform": "x", "max_platform": {}},
        [
            (
                "requirements.min_platform",
                "Invalid",
                'invalid image "requirements.min_platform" (not an object): "x"',
            ),
            (
                "requirements.max_platform",
                "Invalid",
                'invalid image "requirements.max_platform" (not an object): {}',
            ),
        ],
    ),
    (
        {"min_platform": {"7.0": "20130101T000000Z"}, "max_platform": {"7.0": "2013"}},
        [
            (
                "requirements.max_platform",
                "Invalid",
                'invalid image "requirements.max_platform" entry: "7.0: 2013" not a valid platform version',
            )
        ],
    ),
    (
        {"bootrom": "bios"},
        [
            (
                "requirements.bootrom",
                "MissingParameter",
                '"requirements.bootrom" requires "requirements.brand"',
            )
        ],
    ),
    (
        {"bootrom": "bios", "brand": "kvm"},
        [
            (
                "requirements.bootrom",
                "Invalid",
                'invalid image "requirements.bootrom": only allowed with the "bhyve" brand',
            )
        ],
    ),
    (
        {"bootrom": "efi", "brand": "bhyve"},
        [
            (
                "requirements.bootrom",
                "Invalid",
                'invalid image "requirements.bootrom", "efi", must be one of: bios, uefi',
            )
        ],
    ),
    ({"bootrom": "uefi", "brand": "bhyve"}, []),
    ({"gpu": 1, "brand": "bhyve"}, [("gpu", "Invalid", 'unsupported requirement "gpu"')]),
]


@pytest.mark.parametrize("value,expected", REQUIREMENT_CASES)
def test_requirements_entries(value: Any, expected: list[tuple[str, str, str | None]]) -> None:
    assert requirements(value) == expected


def test_raw_record_pre_checks() -> None:
    """A stored record's derived ``tags_search`` and its ``icon`` entry are checked too."""
    assert entries(manifest(tags_search="a=b")) == [
        ("tags", "Invalid", 'invalid raw image "tags": not an array of strings')
    ]
    assert entries(manifest(tags_search=["a=b"], icon={"contentMD5": "m", "size": 1})) == [
        ("icon", "Invalid", 'invalid image "icon": icon missing "contentType" field')
    ]
