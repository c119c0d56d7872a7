"""The ``flask db`` command group.

:mod:`.commands` defines the group and its commands; :mod:`.lazy` holds the
stand-ins Flask sees at start-up, which load it on first use. This package
itself stays light: ``flask_migrate_ext.cli.db`` (Flask-Migrate's
``flask_migrate.cli.db``) and the commands under Flask-Migrate's names load
:mod:`.commands` when asked for.
"""

from __future__ import annotations

import typing as t

#: Flask-Migrate's ``flask_migrate.cli`` names: the group and its commands.
_COMMANDS = {
    "db": "db",
    "branches": "branches_command",
    "check": "check_command",
    "current": "current_command",
    "downgrade": "downgrade_command",
    "edit": "edit_command",
    "heads": "heads_command",
    "history": "history_command",
    "init": "init_command",
    "list_templates": "list_templates_command",
    "merge": "merge_command",
    "migrate": "migrate_command",
    "revision": "revision_command",
    "show": "show_command",
    "stamp": "stamp_command",
    "upgrade": "upgrade_command",
}


def __getattr__(name: str) -> t.Any:
    if name not in _COMMANDS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from . import commands

    return getattr(commands, _COMMANDS[name])


def __dir__() -> list[str]:
    return sorted({*globals(), *_COMMANDS})
