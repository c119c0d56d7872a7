"""The extension's rules, applied where env.py calls Alembic's ``context.configure``.

Every Flask-Migrate release wrote an env.py of its own shape: some pass their
own ``process_revision_directives`` next to ``**configure_args``, some pass
no ``configure_args`` at all, and users add ``compare_type=...`` or
``include_object=...`` by hand. Handing the extension's rules to env.py in
``configure_args`` collides with all of those (``configure() got multiple
values for keyword argument ...``). Applied to the ``context.configure`` call
itself, they compose with any env.py:

- the options given to ``Migrate()`` (and its defaults) fill in what env.py
  leaves out; what env.py passes itself wins;
- options of the run (a tenant schema's version table, an explicit
  ``MIGRATE_TRANSACTION_MODE``) win over env.py's;
- the command's watchers see each autogenerate result first, then env.py's
  ``process_revision_directives`` runs, then "no changes, no file";
- the extension's own tables are hidden from autogenerate, before env.py's
  ``include_name`` is asked;
- a connection to PostgreSQL through a transaction pooler prepares no
  statements (:mod:`..databases.poolers`).

The rules apply only while an API function runs
(:attr:`~flask_migrate_ext.extension.RunState.active`); other uses of Alembic
in the same process are left alone.
"""

from __future__ import annotations

import functools
import inspect
import logging
import typing as t

import sqlalchemy as sa
from alembic.runtime.environment import EnvironmentContext
from flask import current_app

from ..databases.poolers import behind_transaction_pooler
from ..databases.poolers import without_prepared_statements
from ..settings import LOCK_TABLE
from ..state import current_settings
from ..state import database_names
from ..state import get_state
from ..state import ledger_table_name
from ..state import ProcessRevisionDirectives
from ..state import run_state

if t.TYPE_CHECKING:
    from alembic.operations import ops
    from alembic.runtime.migration import MigrationContext

#: Flask-Migrate's defaults for ``Migrate(compare_type=..., render_as_batch=...)``.
MIGRATE_DEFAULTS: t.Mapping[str, t.Any] = {
    "compare_type": True,
    "render_as_batch": True,
}

_MARK = "_flask_migrate_ext_rules"
_env_logger = logging.getLogger("alembic.env")


def with_rules(given: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    """The arguments ``context.configure`` gets for the ``given`` ones of env.py."""
    run = run_state()
    args = {
        **MIGRATE_DEFAULTS,
        **run.fallbacks,
        **get_state().context_kwargs,
        **given,
        **run.overrides,
    }
    args["process_revision_directives"] = _revision_rules(
        args.get("process_revision_directives"), run.revision_watchers
    )
    args["include_name"] = _hide_own_tables(args.get("include_name"))
    return args


def install() -> None:
    """Apply :func:`with_rules` to every ``context.configure`` call (once)."""
    original = EnvironmentContext.configure
    if getattr(original, _MARK, False):
        return
    signature = inspect.signature(original)

    @functools.wraps(original)
    def configure(self: EnvironmentContext, *args: t.Any, **kwargs: t.Any) -> None:
        if not run_state().active or not current_app:
            return original(self, *args, **kwargs)
        if args:  # env.py files pass keywords, but Alembic allows positions
            bound = signature.bind_partial(self, *args, **kwargs).arguments
            bound.pop("self")
            kwargs = {**bound.pop("kw", {}), **bound}
        _through_pooler(kwargs.get("connection"))
        return original(self, **with_rules(kwargs))

    setattr(configure, _MARK, True)
    EnvironmentContext.configure = configure  # type: ignore[method-assign]


def _through_pooler(connection: t.Any) -> None:
    """Turn prepared statements off on env.py's connection (checked out
    before the engine was found behind a transaction pooler)."""
    engine = getattr(connection, "engine", None)
    if not isinstance(engine, sa.Engine) or current_settings().lock == "session":
        return  # "session": the app says its sessions hold
    if behind_transaction_pooler(engine):
        without_prepared_statements(engine, connection)


def _revision_rules(
    user_hook: ProcessRevisionDirectives | None,
    watchers: t.Sequence[ProcessRevisionDirectives],
) -> ProcessRevisionDirectives:
    """Chain the command's watchers, env.py's hook and "no changes, no file".

    Watchers come first: env.py hooks (every Flask-Migrate env.py has one)
    may empty the directives, and a watcher must still see the comparison.
    The operations they record are the objects env.py's hook may edit.

    Flask-Migrate drops that rule as soon as the user passes a hook of their
    own; here the user's hook runs first and the rule still applies after it.
    """
    database_count = len(database_names())

    def process_revision_directives(
        context: MigrationContext,
        revision: t.Any,
        directives: list[ops.MigrationScript],
    ) -> None:
        for watcher in watchers:
            watcher(context, revision, directives)
        if user_hook is not None:
            user_hook(context, revision, directives)
        cmd_opts = context.config.cmd_opts if context.config else None
        if not getattr(cmd_opts, "autogenerate", False) or not directives:
            return
        ops_list = directives[0].upgrade_ops_list
        if any(ops.upgrade_token != "upgrades" for ops in ops_list):
            # A multi-database env.py calls this once per database: judge
            # only after the last one, or Alembic has no script to add to.
            if len(ops_list) < database_count:
                return
        if all(ops.is_empty() for ops in ops_list):
            directives[:] = []
            _env_logger.info("No changes in schema detected.")

    return process_revision_directives


def own_tables() -> list[str]:
    """The tables the extension keeps for itself in the app's databases,
    the ledger first."""
    ledger = ledger_table_name()
    return [ledger, LOCK_TABLE] if ledger else [LOCK_TABLE]


def _hide_own_tables(
    user_hook: t.Callable[..., bool] | None,
) -> t.Callable[..., bool]:
    """Hide the extension's tables (the ledger, the lock table) from
    autogenerate, as Alembic hides its version table; then ask env.py's."""
    own = set(own_tables())

    def include_name(name: str | None, type_: str, parent_names: t.Any) -> bool:
        if type_ == "table" and name in own:
            return False
        return user_hook(name, type_, parent_names) if user_hook else True

    return include_name
