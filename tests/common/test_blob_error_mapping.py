"""A failed blob-service call, read by the one blob-side mapping (BlobError.from_rpc_error), then
turned into the IMGAPI error a REST client sees (image_uploads.blob_error)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent import futures

import grpc
import pytest
from grpc_status import rpc_status

from blob_client import BlobError
from imgapi_common.errors import ImgapiError
from imgapi_common.grpc_errors import abort_with
from imgapi_common.image_uploads import blob_error

Handler = Callable[[grpc.ServicerContext], None]


@pytest.fixture(scope="module")
def call_failing() -> Iterator[Callable[[Handler], grpc.RpcError]]:
    """A real call whose server fails as ``handler`` says."""
    current: list[Handler] = []

    def handle(request: bytes, context: grpc.ServicerContext) -> bytes:
        current[0](context)
        return b""

    server = grpc.server(futures.ThreadPoolExecutor(2))
    server.add_generic_rpc_handlers(
        [grpc.method_handlers_generic_handler("t.T", {"M": grpc.unary_unary_rpc_method_handler(handle)})]
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")

    def call(handler: Handler) -> grpc.RpcError:
        current[:] = [handler]
        with pytest.raises(grpc.RpcError) as ei:
            channel.unary_unary("/t.T/M", None, None)(b"", timeout=10)
        return ei.value

    yield call
    channel.close()
    server.stop(0)


def _blob(err: BlobError) -> Handler:
    return lambda context: context.abort_with_status(rpc_status.to_status(err.to_rpc_status()))


def _plain(code: grpc.StatusCode, text: str) -> Handler:
    return lambda context: context.abort(code, text)


def test_blob_service_errors(call_failing: Callable[[Handler], grpc.RpcError]) -> None:
    too_big = ImgapiError("InvalidParameter", "too big")
    cases: list[tuple[BlobError, ImgapiError | None, tuple[str, str]]] = [
        (BlobError("SizeExceeded", "over"), too_big, ("InvalidParameter", "too big")),
        (BlobError("SizeExceeded", "over"), None, ("InternalError", "storage error: SizeExceeded")),
        (
            BlobError("InsufficientStorage", "full"),
            None,
            ("InsufficientStorage", "insufficient storage: the image store is full"),
        ),
        (
            BlobError("TooManyUploads", "busy"),
            None,
            ("ServiceUnavailableError", "too many uploads in progress, retry later"),
        ),
        (BlobError("StorageIsDown", "s3 down"), None, ("StorageIsDown", "storage is unavailable")),
        (
            BlobError("DigestMismatch", "x", {"message": "sha256 differs"}),
            None,
            ("InternalError", "storage error: DigestMismatch sha256 differs"),
        ),
    ]
    for sent, big, expected in cases:
        back = BlobError.from_rpc_error(call_failing(_blob(sent)))
        assert (back.reason, back.metadata, back.from_transport) == (sent.reason, sent.metadata, False)
        err = blob_error(back, too_big=big)
        assert (err.code, err.message) == expected, sent


def test_calls_without_a_blob_error(call_failing: Callable[[Handler], grpc.RpcError]) -> None:
    down = BlobError.from_rpc_error(call_failing(_plain(grpc.StatusCode.UNAVAILABLE, "gone")))
    assert (down.reason, down.from_transport) == ("Unavailable", True)
    assert blob_error(down).code == "StorageIsDown"
    # no blob error in the status: read as any failed call (the transport's text, a 500)
    refused = BlobError.from_rpc_error(call_failing(_plain(grpc.StatusCode.UNAUTHENTICATED, "wrong token")))
    assert (refused.reason, refused.from_transport) == ("Internal", True)
    assert blob_error(refused).body() == {"code": "InternalError", "message": "wrong token"}
    cut = BlobError.from_rpc_error(call_failing(_plain(grpc.StatusCode.CANCELLED, "idle stream")))
    assert (cut.reason, blob_error(cut).code) == ("Unavailable", "InternalError")
    # an IMGAPI error answered by a blob-side call keeps its code
    imgapi = BlobError.from_rpc_error(
        call_failing(lambda c: abort_with(c, ImgapiError("NotImageOwner", "not yours")))
    )
    assert blob_error(imgapi).body() == {"code": "NotImageOwner", "message": "not yours"}


def test_errors_raised_on_this_side() -> None:
    assert blob_error(BlobError("Internal", "client bug")).body() == {
        "code": "InternalError",
        "message": "storage error: Internal",
    }
    assert blob_error(BlobError("StorageIsDown", "x")).code == "StorageIsDown"
