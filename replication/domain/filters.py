"""Which source images a job replicates: owner, name (~substring), type (!excluded), os, channel,
public, tags (``KEY=VALUE`` as ListImages' ``tag.KEY=VALUE``: the value compared as JavaScript's
``String()`` would write it, an empty one matching only a tag searchable by its key alone). Applied
to the image's REST object; origins of a selected image are always copied."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from imgapi_common.manifest_fields import tag_search_text


@dataclass(frozen=True)
class Filters:
    owner: str = ""
    name: str = ""
    type: str = ""
    os: str = ""
    channel: str = ""
    public: str = ""  # "", "true", "false"
    tags: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Filters:
        return cls(
            owner=str(d.get("owner", "")),
            name=str(d.get("name", "")),
            type=str(d.get("type", "")),
            os=str(d.get("os", "")),
            channel=str(d.get("channel", "")),
            public=str(d.get("public", "")),
            tags=dict(d.get("tags") or {}),
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "owner": self.owner,
            "name": self.name,
            "type": self.type,
            "os": self.os,
            "channel": self.channel,
            "public": self.public,
            "tags": dict(self.tags),
        }

    def validate(self) -> None:
        if self.public not in ("", "true", "false"):
            raise ValueError(f'invalid public filter "{self.public}" (true, false or empty)')

    def matches(self, m: Mapping[str, Any]) -> bool:
        if self.owner and m.get("owner") != self.owner:
            return False
        if self.name and not _text_match(self.name, m.get("name")):
            return False
        if self.type:
            if self.type.startswith("!"):
                if m.get("type") == self.type[1:]:
                    return False
            elif m.get("type") != self.type:
                return False
        if self.os and m.get("os") != self.os:
            return False
        if self.channel:
            chans = m.get("channels")
            if not isinstance(chans, list) or self.channel not in chans:
                return False
        if self.public and (m.get("public") is True) != (self.public == "true"):
            return False
        if self.tags:
            tags = m.get("tags")
            if not isinstance(tags, dict):
                return False
            for k, v in self.tags.items():
                if k not in tags or tag_search_text(tags[k]) != v:
                    return False
        return True


def _text_match(want: str, value: Any) -> bool:
    if not isinstance(value, str):
        return False
    if want.startswith("~"):
        return want[1:] in value
    return value == want
