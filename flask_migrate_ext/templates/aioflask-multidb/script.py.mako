"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}

"""
from collections.abc import Sequence

from alembic import op
import sqlalchemy as sa
${imports if imports else ""}

# revision identifiers, used by Alembic.
revision: str = ${repr(up_revision)}
down_revision: str | Sequence[str] | None = ${repr(down_revision)}
branch_labels: str | Sequence[str] | None = ${repr(branch_labels)}
depends_on: str | Sequence[str] | None = ${repr(depends_on)}


def upgrade(engine_name: str) -> None:
    globals().get(f"upgrade_{engine_name}", _nothing_to_do)()


def downgrade(engine_name: str) -> None:
    globals().get(f"downgrade_{engine_name}", _nothing_to_do)()


def _nothing_to_do() -> None:
    """A database added after this revision was written."""

<%
    from flask import current_app

    state = current_app.extensions["migrate"]
    if callable(getattr(state, "all_database_names", None)):
        names = state.all_database_names()
    else:
        binds = current_app.config.get("SQLALCHEMY_BINDS")
        if binds is not None:
            names = ["", *binds]
        else:
            names = ["", *getattr(state.db, "bind_names", list)()]
%>
## One upgrade_<name>() / downgrade_<name>() pair per database; "" is the default one.
% for name in names:

def upgrade_${name}() -> None:
    ${context.get(f"{name}_upgrades", "pass")}


def downgrade_${name}() -> None:
    ${context.get(f"{name}_downgrades", "pass")}

% endfor
