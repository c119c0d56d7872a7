"""The Python API: Flask-Migrate's functions, returning data and raising typed errors.

Every function needs an app context and has Flask-Migrate 4.1's name,
parameters and parameter order. They print what Flask-Migrate prints, and also
return what they did. Errors are :class:`~flask_migrate_ext.errors.MigrateError`
subclasses; nothing here exits the process.
"""

from __future__ import annotations

from .base import translate_errors
from .database import downgrade
from .database import DroppedTable
from .database import resolve
from .database import stamp
from .database import uninstall
from .database import UninstallResult
from .database import upgrade
from .inspect import branches
from .inspect import check
from .inspect import current
from .inspect import heads
from .inspect import history
from .inspect import show
from .scripts import edit
from .scripts import init
from .scripts import list_templates
from .scripts import merge
from .scripts import migrate
from .scripts import revision
from .scripts import upgrade_env

__all__ = [
    "DroppedTable",
    "UninstallResult",
    "branches",
    "check",
    "current",
    "downgrade",
    "edit",
    "heads",
    "history",
    "init",
    "list_templates",
    "merge",
    "migrate",
    "resolve",
    "revision",
    "show",
    "stamp",
    "translate_errors",
    "uninstall",
    "upgrade",
    "upgrade_env",
]
