"""Rename employee name to full_name

Edited by hand: autogenerate cannot tell a rename from a dropped column and
a new one, so it wrote drop 'name' + add 'full_name', which deletes every
name. alter_column(new_column_name=...) keeps the data.

Revision ID: 9cf439908bba
Revises: 920f0073fc10
Create Date: 2026-11-23 16:45:51.499257

"""
from collections.abc import Sequence

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '9cf439908bba'
down_revision: str | Sequence[str] | None = '920f0073fc10'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Batch mode, so SQLite (which cannot always ALTER in place) copies the
    # table; existing_type and existing_nullable let MySQL/MariaDB restate
    # the column in its CHANGE COLUMN statement.
    with op.batch_alter_table('employee', schema=None) as batch_op:
        batch_op.alter_column(
            'name',
            new_column_name='full_name',
            existing_type=sa.String(length=100),
            existing_nullable=False,
        )


def downgrade() -> None:
    with op.batch_alter_table('employee', schema=None) as batch_op:
        batch_op.alter_column(
            'full_name',
            new_column_name='name',
            existing_type=sa.String(length=100),
            existing_nullable=False,
        )
