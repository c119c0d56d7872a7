"""Add employee username, filled from email

A schema change with a data migration in the middle, edited by hand from
what autogenerate wrote (it adds the column as NOT NULL at once, which fails
on a table that has rows): add the column as nullable, fill it from existing
data, then make it NOT NULL and unique. The fill runs Python row by row, so
this revision needs a database connection (it cannot be rendered with --sql).

Revision ID: 888f1c844761
Revises: 9cf439908bba
Create Date: 2026-11-23 16:46:01.569236

"""
import re
from collections.abc import Sequence

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '888f1c844761'
down_revision: str | Sequence[str] | None = '9cf439908bba'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The table as it is at this revision. Never import the app's models in a
# migration: they describe the newest schema, not this one.
employee = sa.table(
    'employee',
    sa.column('id', sa.Integer),
    sa.column('full_name', sa.String),
    sa.column('email', sa.String),
    sa.column('username', sa.String),
)


def make_username(full_name: str, email: str | None) -> str:
    """``ada.lovelace@example.com`` -> ``ada.lovelace``; no email: the name."""
    source = email.split('@')[0] if email else full_name
    return re.sub(r'[^a-z0-9]+', '.', source.lower()).strip('.')[:40] or 'user'


def upgrade() -> None:
    with op.batch_alter_table('employee', schema=None) as batch_op:
        batch_op.add_column(sa.Column('username', sa.String(length=50), nullable=True))

    connection = op.get_bind()
    rows = connection.execute(
        sa.select(employee.c.id, employee.c.full_name, employee.c.email)
        .order_by(employee.c.id)
    ).all()
    taken: set[str] = set()
    for id_, full_name, email in rows:
        username = make_username(full_name, email)
        if username in taken:  # two people called Ada: ada, then ada.<id>
            username = f'{username}.{id_}'
        taken.add(username)
        connection.execute(
            employee.update().where(employee.c.id == id_).values(username=username)
        )

    with op.batch_alter_table('employee', schema=None) as batch_op:
        batch_op.alter_column(
            'username', existing_type=sa.String(length=50), nullable=False
        )
        batch_op.create_unique_constraint(batch_op.f('uq_employee_username'), ['username'])


def downgrade() -> None:
    # The usernames are derived data: dropping them loses nothing that the
    # upgrade cannot compute again.
    with op.batch_alter_table('employee', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_employee_username'), type_='unique')
        batch_op.drop_column('username')
