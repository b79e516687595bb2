"""What a replication job is: its source, filters, delete propagation, concurrency and bandwidth,
as persisted with the job."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import SecretStr

from imgapi_common.ssrf import Allowlist
from replication.adapters.grpc_source import GrpcSource
from replication.adapters.rest_source import RestSource
from replication.domain.filters import Filters


@dataclass
class JobSpec:
    name: str = ""
    source_kind: str = "grpc"  # grpc | rest
    source_catalog: str = ""
    source_blob: str = ""
    source_url: str = ""
    filters: Filters = field(default_factory=Filters)
    propagate_deletes: bool = False
    concurrency: int = 4
    bandwidth_limit: int = 0
    poll_seconds: float = 5.0

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> JobSpec:
        return cls(
            name=str(d.get("name", "")),
            source_kind=str(d.get("source_kind", "grpc")),
            source_catalog=str(d.get("source_catalog", "")),
            source_blob=str(d.get("source_blob", "")),
            source_url=str(d.get("source_url", "")),
            filters=Filters.from_dict(d.get("filters") or {}),
            propagate_deletes=bool(d.get("propagate_deletes", False)),
            concurrency=int(d.get("concurrency") or 4),
            bandwidth_limit=int(d.get("bandwidth_limit") or 0),
            poll_seconds=float(d.get("poll_seconds") or 5.0),
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source_kind": self.source_kind,
            "source_catalog": self.source_catalog,
            "source_blob": self.source_blob,
            "source_url": self.source_url,
            "filters": self.filters.as_dict(),
            "propagate_deletes": self.propagate_deletes,
            "concurrency": self.concurrency,
            "bandwidth_limit": self.bandwidth_limit,
            "poll_seconds": self.poll_seconds,
        }

    def validate(self) -> None:
        if self.source_kind == "grpc":
            if not self.source_catalog or not self.source_blob:
                raise ValueError("a gRPC source needs source_catalog and source_blob (host:port)")
        elif self.source_kind == "rest":
            if not self.source_url.startswith(("http://", "https://")):
                raise ValueError("a REST source needs source_url (http[s]://host[:port])")
        else:
            raise ValueError(f"unknown source kind {self.source_kind!r}")
        if not 1 <= self.concurrency <= 64:
            raise ValueError("concurrency must be within 1..64")
        if self.bandwidth_limit < 0:
            raise ValueError("bandwidth_limit must be >= 0")
        self.filters.validate()

    def make_source(
        self, token: SecretStr | str = "", allowlist: Allowlist | None = None
    ) -> GrpcSource | RestSource:
        """The source; a gRPC source is called with ``token`` (the replication service's own), a
        REST source goes through the SSRF guard with ``allowlist``'s exemptions."""
        if self.source_kind == "grpc":
            return GrpcSource(self.source_catalog, self.source_blob, token=token)
        return RestSource(self.source_url, allowlist=allowlist)
