"""Size bounds of stored images and the gRPC message sizes derived from them (docs/limits.md).

One tenant must not be able to make an answer too large for the transport: every stored image is
bounded, so the largest answer (a ListImages page of ``MAX_PAGE`` images) has a known size, and the
catalog's send limit and its clients' receive limits are derived from that size here, in one place.
"""

from __future__ import annotations

#: The largest stored image: UTF-8 bytes of the compact JSON of its stored record, without the
#: derived tags search array. Real manifests are 0.5-3 KiB; this leaves room for every field limit
#: (100 KiB of ASCII ``tags``, 10 KiB ``description``...) of one image at once.
MAX_IMAGE_BYTES = 128 * 1024

#: Room kept below MAX_IMAGE_BYTES for what the server adds to an image after the client's writes
#: (its file and icon entries, ``published_at``): client writes must fit in the rest, so that an
#: image written at the client bound can still receive its file and be activated.
SERVER_RESERVE_BYTES = 4 * 1024
MAX_CLIENT_IMAGE_BYTES = MAX_IMAGE_BYTES - SERVER_RESERVE_BYTES

#: The answer carrying one image (typed fields + the pre-rendered REST view + etag and framing):
#: each of the two renderings is at most the stored record, plus a fixed allowance for framing.
MAX_IMAGE_ANSWER_BYTES = 2 * MAX_IMAGE_BYTES + 4 * 1024

#: ListImages ``limit`` upper bound (IMGAPI's: 1000).
MAX_PAGE = 1000

#: The gateway's default JSON body limit, and the catalog's request limit derived from it (the body
#: travels as one string field, plus the caller context and framing).
MAX_JSON_BODY_BYTES = 8 * 1024 * 1024
MAX_CATALOG_REQUEST_BYTES = MAX_JSON_BODY_BYTES + 64 * 1024

#: Margin on top of a full page (response headers, future fields).
ANSWER_MARGIN_BYTES = 16 * 1024 * 1024

#: The catalog's largest answer: a full page of the largest images, with the margin. The catalog
#: server sends up to this size and every client of it (the gateway) accepts it.
MAX_CATALOG_ANSWER_BYTES = MAX_PAGE * MAX_IMAGE_ANSWER_BYTES + ANSWER_MARGIN_BYTES
