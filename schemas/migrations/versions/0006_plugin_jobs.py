"""plugin jobs and export retries, persisted until they succeed or fail

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "plugin_jobs",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("team_id", _ID, nullable=False),
        sa.Column("plugin_config_id", _ID, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("run_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=20), server_default="scheduled", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("claim", sa.String(length=36), nullable=True),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plugin_jobs")),
    )
    op.create_index("ix_plugin_jobs_due", "plugin_jobs", ["state", "run_at"])
    op.create_index("ix_plugin_jobs_config", "plugin_jobs", ["plugin_config_id"])


def downgrade() -> None:
    op.drop_index("ix_plugin_jobs_config", table_name="plugin_jobs")
    op.drop_index("ix_plugin_jobs_due", table_name="plugin_jobs")
    op.drop_table("plugin_jobs")
