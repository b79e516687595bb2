"""The catalog's tables (SQLAlchemy Core). Migrations in catalog_service/adapters/db/migrations mirror this.

``image_docs.record`` holds the full stored record (JSON text, key order preserved); the other columns
and the side tables are derived from it on every write so that ListImages filters, sorts and pages
in the database with indexes.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

#: Columns a listing filters on, carried by the ordered listing indexes (all short: a UUID,
#: enumerations, a boolean, a number, the bounded tag pairs; see migrations 0003 and 0004).
_COVERED = ("owner", "public", "os", "type", "revision", "tag_pairs")

images = Table(
    "images",
    metadata,
    Column("uuid", String(36), primary_key=True),
    Column("owner", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("version", Text, nullable=False),
    Column("type", Text, nullable=False),
    Column("os", Text, nullable=False),
    Column("state", Text, nullable=False),
    Column("activated", Boolean, nullable=False),
    Column("disabled", Boolean, nullable=False),
    Column("public", Boolean, nullable=False),
    #: published_at normalized to "YYYY-MM-DDTHH:MM:SS.mmmZ" (fixed width: text order is time
    #: order); images without one sort as the epoch.
    Column("published_sort", String(24), nullable=False),
    Column("has_published_at", Boolean, nullable=False),
    Column("origin", String(64), nullable=True),
    #: Whether the record passes validation under the configuration in ``meta.config_fingerprint``.
    Column("valid", Boolean, nullable=False),
    Column("expires_at", Text, nullable=True),
    #: Optimistic concurrency: every UPDATE is conditional on the revision read.
    Column("revision", BigInteger, nullable=False),
    #: The image's tag search pairs as one text, so that a tag filter is tested on the listing
    #: index's own entries (no probe of ``image_tags`` per image walked); NULL when too long to
    #: carry (catalog_service/adapters/db/rows.py, ``tag_pairs_text``).
    Column("tag_pairs", Text, nullable=True),
    #: Every listing walks this index in sort order (state filters are cheap on the scanned rows).
    #: It carries the short filtered columns, so a row the filters reject costs no table lookup.
    Index("ix_images_order", "valid", "published_sort", "uuid", "activated", "disabled", "state", *_COVERED),
    #: The default listing (state=active) walks this one: no scan over unactivated images, which
    #: sort first (as the epoch). Covering as above.
    Index("ix_images_state_order", "valid", "activated", "disabled", "published_sort", "uuid", *_COVERED),
    #: ``owner=X`` walks X's images in order (covering as above; ``owner`` leads).
    Index(
        "ix_images_owner",
        "owner",
        "published_sort",
        "uuid",
        "valid",
        "activated",
        "disabled",
        "state",
        *_COVERED[1:],
    ),
    Index("ix_images_name", "name"),
    Index("ix_images_origin", "origin"),
)

#: The documents of each image, kept apart so that ``images`` rows stay small and fast to scan.
image_docs = Table(
    "image_docs",
    metadata,
    Column("uuid", String(36), ForeignKey("images.uuid", ondelete="CASCADE"), primary_key=True),
    Column("record", Text, nullable=False),
    #: The REST image object (compact JSON, no admin fields) for API v1 (no channels) and v2, and
    #: their ETags, rendered at write time so reads serve them without re-serializing.
    Column("view_v1", Text, nullable=False),
    Column("etag_v1", String(40), nullable=False),
    Column("view_v2", Text, nullable=False),
    Column("etag_v2", String(40), nullable=False),
)

image_acl = Table(
    "image_acl",
    metadata,
    Column("image_uuid", String(36), ForeignKey("images.uuid", ondelete="CASCADE"), primary_key=True),
    Column("account", Text, primary_key=True),
    Index("ix_image_acl_account", "account"),
)

image_tags = Table(
    "image_tags",
    metadata,
    Column("image_uuid", String(36), ForeignKey("images.uuid", ondelete="CASCADE"), primary_key=True),
    Column("key", Text, primary_key=True),
    Column("value", Text, nullable=False),
    Index("ix_image_tags_kv", "key", "value"),
)

image_billing_tags = Table(
    "image_billing_tags",
    metadata,
    Column("image_uuid", String(36), ForeignKey("images.uuid", ondelete="CASCADE"), primary_key=True),
    Column("tag", Text, primary_key=True),
    Index("ix_image_billing_tags_tag", "tag"),
)

image_channels = Table(
    "image_channels",
    metadata,
    Column("image_uuid", String(36), ForeignKey("images.uuid", ondelete="CASCADE"), primary_key=True),
    Column("channel", Text, primary_key=True),
    Index("ix_image_channels_channel", "channel"),
)

#: Which blobs each image references (files and icon); a blob nobody references is an orphan.
image_blobs = Table(
    "image_blobs",
    metadata,
    Column("image_uuid", String(36), ForeignKey("images.uuid", ondelete="CASCADE"), primary_key=True),
    Column("blob_id", String(64), primary_key=True),
    Index("ix_image_blobs_blob", "blob_id"),
)

#: The durable change feed: appended in the same transaction as the change it records.
changes = Table(
    "changes",
    metadata,
    Column("cursor", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("image_uuid", String(36), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("changed_at", String(24), nullable=False),
    Column("record", Text, nullable=True),
    # an image's "create" changes, in order: the creation order of an image's dependents
    Index("ix_changes_image", "image_uuid", "kind", "cursor"),
)

meta = Table(
    "meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)
