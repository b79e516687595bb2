"""index the change feed by image (creation order of an image's dependents)

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_changes_image", "changes", ["image_uuid", "kind", "cursor"])


def downgrade() -> None:
    op.drop_index("ix_changes_image", table_name="changes")
