"""session recordings: the $snapshot events of the Postgres pipeline

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "session_recording_events",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("team_id", _ID, nullable=False),
        sa.Column("distinct_id", sa.String(length=400), nullable=False),
        sa.Column("session_id", sa.Text(), nullable=False),
        sa.Column("window_id", sa.Text(), nullable=True),
        sa.Column("snapshot_data", _JSON, nullable=False),
        sa.Column("timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_session_recording_events")),
        sa.UniqueConstraint("uuid", name=op.f("uq_session_recording_events_uuid")),
    )
    with op.batch_alter_table("session_recording_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_session_recording_events_session",
            ["team_id", "session_id", "timestamp"],
            unique=False,
        )


def downgrade() -> None:
    op.drop_table("session_recording_events")
