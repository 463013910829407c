"""autocapture elements: element groups, elements, events.elements_hash

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("elements_hash", sa.String(length=32), nullable=True))
    op.create_table(
        "element_groups",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("team_id", _ID, nullable=False),
        sa.Column("hash", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_element_groups")),
        sa.UniqueConstraint("team_id", "hash", name=op.f("uq_element_groups_team_id")),
    )
    op.create_table(
        "elements",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("group_id", _ID, nullable=False),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("tag_name", sa.Text(), nullable=True),
        sa.Column("href", sa.Text(), nullable=True),
        sa.Column("attr_id", sa.Text(), nullable=True),
        sa.Column("attr_class", _JSON, nullable=True),
        sa.Column("nth_child", sa.Integer(), nullable=True),
        sa.Column("nth_of_type", sa.Integer(), nullable=True),
        sa.Column("attributes", _JSON, server_default="{}", nullable=False),
        sa.Column("order", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["element_groups.id"],
            name=op.f("fk_elements_group_id_element_groups"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_elements")),
    )
    with op.batch_alter_table("elements", schema=None) as batch_op:
        batch_op.create_index("ix_elements_group", ["group_id"], unique=False)


def downgrade() -> None:
    op.drop_table("elements")
    op.drop_table("element_groups")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_column("elements_hash")
