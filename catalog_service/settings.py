"""Catalog service settings, from the environment (prefix ``IMGAPI_CATALOG_``), validated at start-up."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from imgapi_common.internal_auth import check_bind, token_field

CHANNEL_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


class ChannelSetting(BaseModel):
    name: str
    description: str
    default: bool = False

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not CHANNEL_NAME.match(v):
            raise ValueError(f"channel name {v!r} must match {CHANNEL_NAME.pattern}")
        return v


class CatalogSettings(BaseSettings):
    """Every setting of the catalog service. See docs/configuration.md."""

    model_config = SettingsConfigDict(env_prefix="IMGAPI_CATALOG_", extra="forbid", populate_by_name=True)

    #: gRPC listen address (host:port; port 0 picks a free port).
    bind: str = "127.0.0.1:8501"
    #: The stack's shared secret (IMGAPI_INTERNAL_TOKEN): every call but health checks must carry
    #: it. Required when ``bind`` is not a loopback address (docs/security.md).
    internal_token: SecretStr = token_field()
    #: SQLAlchemy URL. Empty: SQLite file ``catalog.db`` under ``data_dir`` (the embedded default).
    database_url: str = ""
    data_dir: Path = Path("var/catalog")
    #: IMGAPI server mode: ``dc`` (operators and accounts of one datacenter), ``public`` (public
    #: images only) or ``private`` (private images only).
    mode: Literal["dc", "public", "private"] = "dc"
    #: Channels (JSON list of {name, description, default}); empty = no channels.
    channels: list[ChannelSetting] = Field(default_factory=list)
    #: Operator account UUID (dc mode: AdminImportImage owner rewrite, CloneImage base origins).
    admin_uuid: str | None = None
    #: Optional file listing known account UUIDs (one per line). When set, unknown owners are
    #: refused with OwnerDoesNotExist in dc mode; when unset every well-formed UUID is accepted.
    account_registry_file: Path | None = None
    #: Storage names accepted for ``storage=`` and reported as ``files[].stor``.
    storage_names: list[str] = Field(default_factory=lambda: ["local", "manta"])
    default_storage: str = "local"
    placeholder_lifespan_days: int = 7
    #: gRPC handler threads per process.
    max_workers: int = 32
    #: WatchChanges streams served at once per process (default: a quarter of ``max_workers``).
    #: Each holds a handler thread for as long as it lasts, so they are capped below
    #: ``max_workers``: further watchers get UNAVAILABLE (and retry), instead of taking every
    #: thread and stalling all other calls.
    max_watchers: int | None = None
    #: Worker processes sharing the port (SO_REUSEPORT); each uses about one core. Needs a fixed
    #: port in ``bind``.
    processes: int = 1
    #: Bytes of rendered ListImages answers kept per process for repeated queries, reused only
    #: while the change feed has no newer entry (catalog_service/adapters/list_cache.py); 0 = no cache.
    list_cache_bytes: int = Field(default=16 * 1024 * 1024, ge=0)
    #: SQLite only: bytes of the database file read through a memory map (SQLite's ``mmap_size``)
    #: instead of each pooled connection's 2 MiB page cache, which one 1000-image listing
    #: overflows (such a listing's SQL: ~10 -> ~4 ms at 100k images). Off by default: every
    #: connection maps the file on its own, and although the pages are the kernel's shared file
    #: cache, each mapping counts them in the process's RSS again (16 busy connections on a
    #: 300 MB catalog showed 927 MiB).
    sqlite_mmap_bytes: int = Field(default=0, ge=0)
    #: Port of the Prometheus ``/metrics`` endpoint (0 = disabled).
    metrics_port: int = 0
    log_level: str = "INFO"
    #: Log one line per RPC (method, status, duration, request id).
    access_log: bool = False
    grace_seconds: float = 10.0
    #: Migrate the database to head at start-up (the embedded default). Production runs
    #: ``python -m catalog_service migrate`` once instead.
    auto_migrate: bool = True

    @field_validator("admin_uuid")
    @classmethod
    def _admin_uuid(cls, v: str | None) -> str | None:
        if v is not None and v != "" and not UUID_RE.match(v):
            raise ValueError("admin_uuid must be a lower-case UUID")
        return v or None

    @property
    def effective_max_watchers(self) -> int:
        if self.max_watchers is not None:
            return self.max_watchers
        return max(1, self.max_workers // 4) if self.max_workers > 1 else 0

    @model_validator(mode="after")
    def _check(self) -> CatalogSettings:
        if self.channels and self.mode == "dc":
            raise ValueError(
                "IMGAPI_CATALOG_CHANNELS is not supported with IMGAPI_CATALOG_MODE=dc (a dc server has "
                "no channels); use channels with IMGAPI_CATALOG_MODE=public or private, or unset "
                "IMGAPI_CATALOG_CHANNELS"
            )
        if sum(1 for c in self.channels if c.default) > 1:
            raise ValueError("at most one channel may be the default")
        names = [c.name for c in self.channels]
        if len(set(names)) != len(names):
            raise ValueError("channel names must be unique")
        if self.default_storage not in self.storage_names:
            raise ValueError("default_storage must be one of storage_names")
        if ":" not in self.bind:
            raise ValueError("bind must be host:port")
        if self.processes < 1:
            raise ValueError("processes must be >= 1")
        if self.max_watchers is not None and not 0 <= self.max_watchers < self.max_workers:
            raise ValueError("max_watchers must be >= 0 and below max_workers (other calls need threads)")
        if self.processes > 1 and self.bind.endswith(":0"):
            raise ValueError("processes > 1 needs a fixed port in bind")
        check_bind(self.bind, self.internal_token, "IMGAPI_CATALOG_BIND")
        return self

    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'catalog.db').resolve()}"

    @property
    def default_channel(self) -> str | None:
        for c in self.channels:
            if c.default:
                return c.name
        return None
