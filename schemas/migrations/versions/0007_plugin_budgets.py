"""plugin configs: the budget's state (degraded, paused, disabled) and why

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("plugin_configs") as table:
        table.add_column(sa.Column("budget", _JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("plugin_configs") as table:
        table.drop_column("budget")
