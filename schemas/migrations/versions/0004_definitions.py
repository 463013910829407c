"""event and property definitions per team

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "event_definitions",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("team_id", _ID, nullable=False),
        sa.Column("name", sa.String(length=400), nullable=False),
        sa.Column("volume_30_day", sa.Integer(), nullable=True),
        sa.Column("query_usage_30_day", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_definitions")),
        sa.UniqueConstraint("team_id", "name", name=op.f("uq_event_definitions_team_id")),
    )
    op.create_table(
        "property_definitions",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("team_id", _ID, nullable=False),
        sa.Column("name", sa.String(length=400), nullable=False),
        sa.Column("is_numerical", sa.Boolean(), server_default="0", nullable=False),
        sa.Column("volume_30_day", sa.Integer(), nullable=True),
        sa.Column("query_usage_30_day", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_property_definitions")),
        sa.UniqueConstraint("team_id", "name", name=op.f("uq_property_definitions_team_id")),
    )


def downgrade() -> None:
    op.drop_table("property_definitions")
    op.drop_table("event_definitions")
