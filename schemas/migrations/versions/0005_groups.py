"""groups: group types per team with their index, and groups

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "group_type_mappings",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("team_id", _ID, nullable=False),
        sa.Column("group_type", sa.String(length=400), nullable=False),
        sa.Column("group_type_index", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_group_type_mappings")),
        sa.UniqueConstraint("team_id", "group_type", name="uq_group_type_mappings_team_id_type"),
        sa.UniqueConstraint(
            "team_id", "group_type_index", name="uq_group_type_mappings_team_id_index"
        ),
    )
    op.create_table(
        "groups",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("team_id", _ID, nullable=False),
        sa.Column("group_type_index", sa.Integer(), nullable=False),
        sa.Column("group_key", sa.String(length=400), nullable=False),
        sa.Column("group_properties", _JSON, server_default="{}", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_groups")),
        sa.UniqueConstraint(
            "team_id", "group_type_index", "group_key", name=op.f("uq_groups_team_id")
        ),
    )


def downgrade() -> None:
    op.drop_table("groups")
    op.drop_table("group_type_mappings")
