"""carry each image's tag pairs in the ordered listing indexes

A tag filter most images pass (``tag.role=db`` on a third of them) was a probe of ``image_tags``
for every image the listing walked: at 100k images and limit 1000, ~3,000 probes and 21.7 ms of
SQL on PostgreSQL. ``images.tag_pairs`` holds the image's search pairs as one bounded text (each
pair a compact JSON array text, sorted and joined; "" without tags; NULL when longer than 512
characters, where the probe stays), and the three ordered listing indexes carry it: the
filter is tested on the index entry itself (8.7 ms).

The column is filled from ``image_tags`` (the same pairs the records gave). The encoding is the
one of ``tag_pairs_text`` in catalog_service/adapters/db/rows.py, repeated here so that this
migration keeps doing what it did when that code changes.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05
"""

import orjson
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_MAX = 512
_STATE = ["valid", "activated", "disabled", "state"]
_COVERED_0003 = ["owner", "public", "os", "type", "revision"]


def _pairs_text(pairs: list[tuple[str, str]]) -> str | None:
    text = "".join(sorted(orjson.dumps([k, v]).decode() for k, v in pairs))
    return text if len(text) <= _MAX else None


def _create_indexes(covered: list[str]) -> None:
    op.create_index("ix_images_owner", "images", ["owner", "published_sort", "uuid", *_STATE, *covered[1:]])
    op.create_index(
        "ix_images_order", "images", ["valid", "published_sort", "uuid", "activated", "disabled", "state", *covered]
    )
    op.create_index(
        "ix_images_state_order", "images", ["valid", "activated", "disabled", "published_sort", "uuid", *covered]
    )


def _drop_indexes() -> None:
    for name in ("ix_images_order", "ix_images_state_order", "ix_images_owner"):
        op.drop_index(name, table_name="images")


def upgrade() -> None:
    op.add_column("images", sa.Column("tag_pairs", sa.Text(), nullable=True))
    bind = op.get_bind()
    bind.exec_driver_sql("UPDATE images SET tag_pairs = ''")
    by_image: dict[str, list[tuple[str, str]]] = {}
    for uuid, key, value in bind.exec_driver_sql("SELECT image_uuid, key, value FROM image_tags"):
        by_image.setdefault(uuid, []).append((key, value))
    if by_image:
        bind.execute(
            sa.text("UPDATE images SET tag_pairs = :pairs WHERE uuid = :uuid"),
            [{"uuid": uuid, "pairs": _pairs_text(pairs)} for uuid, pairs in by_image.items()],
        )
    _drop_indexes()
    _create_indexes([*_COVERED_0003, "tag_pairs"])
    # As in 0003: new indexes of a catalog with images need planner statistics now.
    if bind.exec_driver_sql("SELECT 1 FROM images LIMIT 1").first() is not None:
        if bind.dialect.name == "sqlite":
            op.execute("PRAGMA analysis_limit=1000")
        op.execute("ANALYZE images")


def downgrade() -> None:
    _drop_indexes()
    _create_indexes(_COVERED_0003)
    op.drop_column("images", "tag_pairs")
