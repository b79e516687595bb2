"""Gateway configuration (environment variables ``IMGAPI_GATEWAY_*``), validated at start-up."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from imgapi_common.internal_auth import check_token, token_field
from imgapi_common.limits import MAX_JSON_BODY_BYTES


class GatewaySettings(BaseSettings):
    """Everything the REST gateway needs; the server mode/channels come from the catalog."""

    model_config = SettingsConfigDict(env_prefix="IMGAPI_GATEWAY_", extra="forbid", populate_by_name=True)

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    #: ``host:port`` of the catalog and blob gRPC services.
    catalog_target: str = "127.0.0.1:8501"
    blob_target: str = "127.0.0.1:8502"
    #: ``host:port`` of the replication service (``python -m replication``): it runs the remote
    #: import jobs (AdminImportRemoteImage, ImportFromDatacenter, ``GET /jobs/:uuid``) and, with
    #: ``replication_routes``, the operator-only ``/replication/jobs`` routes show and manage its
    #: replication jobs. Empty: no replication service (remote imports answer 503, no jobs).
    replication_target: str = ""
    #: Mount the ``/replication/jobs`` routes when ``replication_target`` is set.
    replication_routes: bool = True
    #: The stack's shared secret (IMGAPI_INTERNAL_TOKEN), sent with every call to those services.
    internal_token: SecretStr = token_field()

    #: ``none`` (no authentication) or ``signature`` (HTTP Signature).
    auth_type: Literal["none", "signature"] = "none"
    #: Directory of ``<user>.keys`` files (one OpenSSH public key per line).
    auth_keys_dir: str | None = None
    #: username -> list of OpenSSH public key lines (JSON in the environment).
    auth_keys: dict[str, list[str]] = Field(default_factory=dict)
    #: Seconds between periodic key reloads (0 = only at start-up and on POST /authkeys/reload).
    auth_keys_reload_seconds: float = Field(default=0.0, ge=0)
    #: Allowed clock skew of signed requests (seconds).
    auth_clock_skew_seconds: int = Field(default=300, ge=0)

    #: ``Server`` response header.
    server_name: str = "imgapi/4.11.0"
    #: Version reported by Ping.
    version: str = "4.11.0"
    #: ``x-server-name`` response header; empty = the host name.
    host_name: str = ""
    #: External base URL advertised in ``workflow-api`` (empty = derived from the request).
    workflow_url: str | None = None

    #: Largest image file accepted (bytes; IMGAPI: 20 GiB) and icon (128 KiB).
    max_file_size: int = Field(default=20 * 1024**3, gt=0)
    max_icon_size: int = Field(default=128 * 1024, gt=0)
    #: Deadline of ordinary catalog/blob calls, and of calls moving bytes (seconds).
    rpc_timeout_seconds: float = Field(default=30.0, gt=0)
    #: Connections to the catalog, used in turn (spreads calls over catalog processes/replicas
    #: that are balanced per connection).
    catalog_connections: int = Field(default=4, ge=1, le=64)
    #: Re-check every N seconds that those connections are spread evenly over the catalog's
    #: processes (gateway/adapters/balance.py; also done at start-up). 0: only at start-up.
    catalog_balance_seconds: float = Field(default=60.0, ge=0)
    transfer_timeout_seconds: float = Field(default=3600.0, gt=0)
    #: Bytes of rendered ListImages answers kept and revalidated with the catalog on each request
    #: (gateway/adapters/list_answers.py); 0 turns the cache off.
    list_cache_bytes: int = Field(default=16 * 1024 * 1024, ge=0)
    #: An upload body (PUT file/icon, tus PATCH) that sends nothing for this long is cut (408).
    upload_idle_seconds: float = Field(default=60.0, gt=0)
    #: How long to wait for the catalog at start-up (seconds).
    startup_timeout_seconds: float = Field(default=60.0, gt=0)
    #: Worker processes (uvicorn workers sharing the port); each uses about one core.
    processes: int = Field(default=1, ge=1)
    #: Port of the Prometheus ``/metrics`` endpoint (0 = disabled; worker N uses port + N).
    metrics_port: int = Field(default=0, ge=0)
    log_level: str = "INFO"
    #: Log one line per request (method, path, status, request id).
    access_log: bool = False
    #: Request body limit of JSON routes (bytes): a larger Content-Length is refused before the
    #: body is read, a chunked body is cut once it passes the limit. At most the catalog's own
    #: request bound (imgapi_common.limits), so a body the gateway accepts is always judged there.
    max_json_body: int = Field(default=MAX_JSON_BODY_BYTES, gt=0, le=MAX_JSON_BODY_BYTES)
    #: Request head limits of every connection (gateway/http/protocol.py): bytes of the request line and
    #: headers, number of header lines, and seconds to receive a whole head (also the time a new
    #: connection may stay silent).
    max_header_bytes: int = Field(default=64 * 1024, ge=1024)
    max_header_count: int = Field(default=100, ge=10)
    header_timeout_seconds: float = Field(default=30.0, gt=0)

    @field_validator("catalog_target", "blob_target")
    @classmethod
    def _host_port(cls, v: str) -> str:
        host, sep, port = v.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError(f"expected host:port, got {v!r}")
        return v

    @field_validator("internal_token")
    @classmethod
    def _token(cls, v: SecretStr) -> SecretStr:
        check_token(v)
        return v

    @field_validator("replication_target")
    @classmethod
    def _optional_host_port(cls, v: str) -> str:
        return cls._host_port(v) if v else v
