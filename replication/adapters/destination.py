"""This datacenter as the destination of copies: its catalog and blob services, called as an
operator, with their errors as :class:`CopyError` values."""

from __future__ import annotations

from typing import Any

import grpc
from imgapi.v1 import catalog_pb2, catalog_pb2_grpc, common_pb2, image_pb2
from pydantic import SecretStr

from blob_client import BlobClient
from imgapi_common import internal_auth
from imgapi_common.errors import ImgapiError
from imgapi_common.grpc_errors import from_rpc_error
from replication.adapters.sources import (
    CHANNEL_OPTIONS,
)
from replication.domain.copy_errors import CopyError

#: Errors of the destination worth retrying.
TRANSIENT_CODES = frozenset({"ServiceUnavailableError", "InternalError", "StorageIsDown"})

OPERATOR_WRITE = common_pb2.CallerContext()
VIEW = common_pb2.ImageView(include_channels=True, include_admin_fields=True)


class Destination:
    """This datacenter's catalog and blob services, called as an operator.

    ``caller`` is the context of write calls (default: the operator in the default channel; the
    gateway passes its request's operator scope so that a channel server files imports in the
    request's channel); reads use the same context in every channel.
    """

    def __init__(
        self,
        catalog_target: str,
        blob_target: str,
        *,
        timeout: float = 60.0,
        caller: common_pb2.CallerContext | None = None,
        token: SecretStr | str = "",
    ) -> None:
        self.write_caller = caller if caller is not None else OPERATOR_WRITE
        self.read_caller = common_pb2.CallerContext()
        self.read_caller.CopyFrom(self.write_caller)
        self.read_caller.channel = "*"
        self._channels = [
            internal_auth.channel(catalog_target, token, CHANNEL_OPTIONS),
            internal_auth.channel(blob_target, token, CHANNEL_OPTIONS),
        ]
        self.catalog = catalog_pb2_grpc.CatalogServiceStub(self._channels[0])
        self.blobs = BlobClient(self._channels[1], retries=3, retry_delay=0.2, timeout=None)
        self.timeout = timeout

    def close(self) -> None:
        for ch in self._channels:
            ch.close()

    def call(self, method: str, request: Any) -> Any:
        try:
            return getattr(self.catalog, method)(request, timeout=self.timeout)
        except grpc.RpcError as e:
            err = from_rpc_error(e)
            raise DestinationError(method, err) from None

    def get(self, uuid: str) -> image_pb2.Image | None:
        try:
            resp = self.catalog.GetImage(
                catalog_pb2.GetImageRequest(caller=self.read_caller, view=VIEW, uuid=uuid),
                timeout=self.timeout,
            )
        except grpc.RpcError as e:
            err = from_rpc_error(e)
            if err.code == "ResourceNotFound":
                return None
            raise DestinationError("GetImage", err) from None
        return resp.image


class DestinationError(CopyError):
    def __init__(self, method: str, err: ImgapiError) -> None:
        super().__init__(
            f"{method}: {err.code}: {err.message}", transient=err.code in TRANSIENT_CODES, code=err.code
        )
        #: The destination's error as it answered.
        self.error = err
