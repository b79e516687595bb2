"""initial catalog schema

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "images",
        sa.Column("uuid", sa.String(36), primary_key=True),
        sa.Column("owner", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("version", sa.Text, nullable=False),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("os", sa.Text, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("activated", sa.Boolean, nullable=False),
        sa.Column("disabled", sa.Boolean, nullable=False),
        sa.Column("public", sa.Boolean, nullable=False),
        sa.Column("published_sort", sa.String(24), nullable=False),
        sa.Column("has_published_at", sa.Boolean, nullable=False),
        sa.Column("origin", sa.String(64), nullable=True),
        sa.Column("valid", sa.Boolean, nullable=False),
        sa.Column("expires_at", sa.Text, nullable=True),
        sa.Column("revision", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_images_order", "images", ["valid", "published_sort", "uuid"])
    op.create_index(
        "ix_images_state_order", "images", ["valid", "activated", "disabled", "published_sort", "uuid"]
    )
    op.create_index("ix_images_owner", "images", ["owner", "published_sort", "uuid"])
    op.create_index("ix_images_name", "images", ["name"])
    op.create_index("ix_images_origin", "images", ["origin"])
    fk = {"ondelete": "CASCADE"}
    op.create_table(
        "image_docs",
        sa.Column("uuid", sa.String(36), sa.ForeignKey("images.uuid", **fk), primary_key=True),
        sa.Column("record", sa.Text, nullable=False),
        sa.Column("view_v1", sa.Text, nullable=False),
        sa.Column("etag_v1", sa.String(40), nullable=False),
        sa.Column("view_v2", sa.Text, nullable=False),
        sa.Column("etag_v2", sa.String(40), nullable=False),
    )
    op.create_table(
        "image_acl",
        sa.Column("image_uuid", sa.String(36), sa.ForeignKey("images.uuid", **fk), primary_key=True),
        sa.Column("account", sa.Text, primary_key=True),
    )
    op.create_index("ix_image_acl_account", "image_acl", ["account"])
    op.create_table(
        "image_tags",
        sa.Column("image_uuid", sa.String(36), sa.ForeignKey("images.uuid", **fk), primary_key=True),
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_index("ix_image_tags_kv", "image_tags", ["key", "value"])
    op.create_table(
        "image_billing_tags",
        sa.Column("image_uuid", sa.String(36), sa.ForeignKey("images.uuid", **fk), primary_key=True),
        sa.Column("tag", sa.Text, primary_key=True),
    )
    op.create_index("ix_image_billing_tags_tag", "image_billing_tags", ["tag"])
    op.create_table(
        "image_channels",
        sa.Column("image_uuid", sa.String(36), sa.ForeignKey("images.uuid", **fk), primary_key=True),
        sa.Column("channel", sa.Text, primary_key=True),
    )
    op.create_index("ix_image_channels_channel", "image_channels", ["channel"])
    op.create_table(
        "image_blobs",
        sa.Column("image_uuid", sa.String(36), sa.ForeignKey("images.uuid", **fk), primary_key=True),
        sa.Column("blob_id", sa.String(64), primary_key=True),
    )
    op.create_index("ix_image_blobs_blob", "image_blobs", ["blob_id"])
    op.create_table(
        "changes",
        sa.Column(
            "cursor",
            sa.BigInteger().with_variant(sa.Integer, "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("image_uuid", sa.String(36), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("changed_at", sa.String(24), nullable=False),
        sa.Column("record", sa.Text, nullable=True),
    )
    op.create_table(
        "meta",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )


def downgrade() -> None:
    for t in ("meta", "changes", "image_blobs", "image_docs", "image_channels", "image_billing_tags", "image_tags", "image_acl"):
        op.drop_table(t)
    op.drop_table("images")
