"""Replication service settings, from the environment (prefix ``IMGAPI_REPLICATION_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from imgapi_common.internal_auth import check_bind, token_field
from imgapi_common.remote_imgapi import RemoteSettings


class ReplicationSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="IMGAPI_REPLICATION_", extra="forbid", populate_by_name=True)

    #: gRPC listen address of the status API (port 0 picks a free port).
    bind: str = "127.0.0.1:8503"
    #: The stack's shared secret (IMGAPI_INTERNAL_TOKEN): required of every caller of the status
    #: API (health checks excepted) and sent to this datacenter's catalog and blob services and to
    #: gRPC sources. Required when ``bind`` is not a loopback address (docs/security.md).
    internal_token: SecretStr = token_field()
    #: SQLAlchemy URL of the job state. Empty: SQLite ``replication.db`` under ``data_dir``.
    database_url: str = ""
    data_dir: Path = Path("var/replication")
    #: This datacenter's catalog and blob services.
    catalog_target: str = "127.0.0.1:8501"
    blob_target: str = "127.0.0.1:8502"
    #: Prometheus metrics HTTP port (0 = no metrics endpoint).
    metrics_port: int = 0
    #: File to write the bound gRPC port to once serving (tests, supervisors).
    port_file: Path | None = None
    max_workers: int = 8
    #: REST sources are fetched through the SSRF guard: only public addresses, unless listed here
    #: (host names, ``*.suffix`` patterns, IP addresses or CIDRs; JSON list in the environment),
    #: e.g. a sibling IMGAPI on a private network.
    source_allowlist: list[str] = Field(default_factory=list)
    #: Docker registries are fetched through the same SSRF guard: only public addresses, unless
    #: listed here (same forms as ``source_allowlist``), e.g. a registry on the datacenter network.
    docker_registry_allowlist: list[str] = Field(default_factory=list)
    #: Do not verify the TLS certificates of Docker registries (and ask token realms given without
    #: a scheme over http).
    docker_registry_insecure: bool = False
    #: Also pull OCI image manifests and indexes (an extension: the reference asks for Docker media
    #: types only, so an OCI-only tag is "not found" there and here by default).
    docker_registry_oci: bool = False
    log_level: str = "INFO"
    #: How long a Docker import or import job stays this process's without being renewed (renewed
    #: every third of it): after that another replication process sharing the database takes it over.
    lease_seconds: float = Field(default=30.0, gt=0)

    # Remote imports (AdminImportRemoteImage, ImportFromDatacenter) and file fetches (AddImageFile from
    # a source, AddImageFileFromUrl). These used to be the gateway's settings and keep their names.
    #: CIDRs / host names a remote import may reach despite the SSRF rules.
    remote_allowlist: list[str] = Field(
        default_factory=list, validation_alias="IMGAPI_GATEWAY_REMOTE_ALLOWLIST"
    )
    #: Skip TLS verification when pulling from another IMGAPI.
    allow_insecure: bool = Field(default=False, validation_alias="IMGAPI_GATEWAY_ALLOW_INSECURE")
    #: Name of this datacenter and IMGAPI URL per datacenter (ImportFromDatacenter).
    datacenter_name: str | None = Field(default=None, validation_alias="IMGAPI_GATEWAY_DATACENTER_NAME")
    imgapi_url_from_datacenter: dict[str, str] = Field(
        default_factory=dict, validation_alias="IMGAPI_GATEWAY_IMGAPI_URL_FROM_DATACENTER"
    )
    #: Connect and total timeouts of remote fetches (seconds).
    remote_connect_timeout_seconds: float = Field(
        default=20.0, gt=0, validation_alias="IMGAPI_GATEWAY_REMOTE_CONNECT_TIMEOUT_SECONDS"
    )
    remote_timeout_seconds: float = Field(
        default=3600.0, gt=0, validation_alias="IMGAPI_GATEWAY_REMOTE_TIMEOUT_SECONDS"
    )
    #: Largest image file imported (bytes).
    max_file_size: int = Field(default=20 * 1024**3, gt=0, validation_alias="IMGAPI_GATEWAY_MAX_FILE_SIZE")
    #: User-Agent of remote fetches.
    server_name: str = Field(default="imgapi/4.11.0", validation_alias="IMGAPI_GATEWAY_SERVER_NAME")
    #: Deadline of the catalog/blob calls of import jobs (seconds).
    rpc_timeout_seconds: float = Field(default=30.0, gt=0)

    @model_validator(mode="after")
    def _check(self) -> ReplicationSettings:
        check_bind(self.bind, self.internal_token, "IMGAPI_REPLICATION_BIND")
        return self

    def remote(self) -> RemoteSettings:
        """How import jobs reach remote IMGAPIs."""
        return RemoteSettings.of(self)

    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{(self.data_dir / 'replication.db').resolve()}"
