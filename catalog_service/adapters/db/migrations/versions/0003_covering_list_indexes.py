"""carry the filtered columns in the ordered listing indexes

Every ListImages walks ``ix_images_order``, ``ix_images_state_order`` or ``ix_images_owner`` in
sort order and tests its filters on each row it passes. With only the sort columns in the index,
every row passed cost a lookup in the table for ``owner``, ``public``, ``os``, ``type`` or
``revision``; a selective filter passes many rows per image returned. These columns are all short (a UUID, enumerations, a
boolean, a number), so the index entries stay small on both databases.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_COVERED = ["owner", "public", "os", "type", "revision"]
_STATE = ["valid", "activated", "disabled", "state"]


def upgrade() -> None:
    op.drop_index("ix_images_order", table_name="images")
    op.drop_index("ix_images_state_order", table_name="images")
    op.drop_index("ix_images_owner", table_name="images")
    op.create_index(
        "ix_images_owner", "images", ["owner", "published_sort", "uuid", *_STATE, "public", "os", "type", "revision"]
    )
    op.create_index(
        "ix_images_order", "images", ["valid", "published_sort", "uuid", "activated", "disabled", "state", *_COVERED]
    )
    op.create_index(
        "ix_images_state_order",
        "images",
        ["valid", "activated", "disabled", "published_sort", "uuid", *_COVERED],
    )
    # New indexes of an existing catalog have no planner statistics until the next ANALYZE;
    # without them SQLite would walk a whole ordered index for ``owner=X``. (An empty catalog
    # gathers them as it is written: catalog_service/adapters/db/statistics.py.)
    bind = op.get_bind()
    if bind.exec_driver_sql("SELECT 1 FROM images LIMIT 1").first() is not None:
        if bind.dialect.name == "sqlite":
            op.execute("PRAGMA analysis_limit=1000")
        op.execute("ANALYZE images")


def downgrade() -> None:
    op.drop_index("ix_images_order", table_name="images")
    op.drop_index("ix_images_state_order", table_name="images")
    op.drop_index("ix_images_owner", table_name="images")
    op.create_index("ix_images_owner", "images", ["owner", "published_sort", "uuid"])
    op.create_index("ix_images_order", "images", ["valid", "published_sort", "uuid"])
    op.create_index(
        "ix_images_state_order", "images", ["valid", "activated", "disabled", "published_sort", "uuid"]
    )
