"""Alembic database migrations for Flask apps, as ``flask db`` commands.

A drop-in replacement for Flask-Migrate: ``from flask_migrate_ext import
Migrate``. Importing this package does not import Alembic; the API functions
import it when they are called.

The functions here are Flask-Migrate's: ``current``, ``heads``, ``history``,
``show``, ``branches`` and ``list_templates`` print what Flask-Migrate prints
(:mod:`.compat`), then return the data. :mod:`flask_migrate_ext.api` has the
same functions without printing.
"""

from __future__ import annotations

import typing as t

from .errors import CommandFailedError
from .errors import DatabaseNotConfiguredError
from .errors import DatabaseUnreachableError
from .errors import DirectoryExistsError
from .errors import DirectoryNotFoundError
from .errors import ExitCode
from .errors import GraphvizNotFoundError
from .errors import LintFailedError
from .errors import LockLostError
from .errors import LockTimeoutError
from .errors import MigrateError
from .errors import MigrationChecksFailedError
from .errors import MigrationFailedError
from .errors import NotInitializedError
from .errors import NotUpToDateError
from .errors import PartiallyAppliedError
from .errors import PendingMigrationsError
from .errors import RevisionGraphError
from .errors import RevisionNotFoundError
from .errors import SchemaDriftError
from .errors import TargetsFailedError
from .errors import TemplateNotFoundError
from .errors import UnknownRevisionError
from .errors import VerifyFailedError
from .extension import Migrate
from .state import _MigrateConfig  # noqa: F401  (Flask-Migrate's name)
from .state import MigrateState
from .version import __version__

if t.TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig
    from alembic.util import CommandError as CommandError

    from .api import Accepted as Accepted
    from .api import BranchPoint as BranchPoint
    from .api import CheckResult as CheckResult
    from .api import DatabaseState as DatabaseState
    from .api import DatabaseStatus as DatabaseStatus
    from .api import downgrade as downgrade
    from .api import DroppedTable as DroppedTable
    from .api import edit as edit
    from .api import Finding as Finding
    from .api import graph as graph
    from .api import HistoryGraph as HistoryGraph
    from .api import init as init
    from .api import lint as lint
    from .api import LintFinding as LintFinding
    from .api import LintResult as LintResult
    from .api import merge as merge
    from .api import migrate as migrate
    from .api import resolve as resolve
    from .api import Revision as Revision
    from .api import revision as revision
    from .api import RevisionStatus as RevisionStatus
    from .api import stamp as stamp
    from .api import status as status
    from .api import StatusResult as StatusResult
    from .api import Template as Template
    from .api import uninstall as uninstall
    from .api import UninstallResult as UninstallResult
    from .api import upgrade as upgrade
    from .api import upgrade_env as upgrade_env
    from .api import verify as verify
    from .api import VerifyResult as VerifyResult
    from .apply.results import RunResult as RunResult
    from .apply.results import Step as Step
    from .apply.targets import TargetResult as TargetResult
    from .compat import branches as branches
    from .compat import catch_errors as catch_errors
    from .compat import check as check
    from .compat import current as current
    from .compat import heads as heads
    from .compat import history as history
    from .compat import list_templates as list_templates
    from .compat import log as log
    from .compat import show as show
    from .databases.adapters import SQLAlchemyDatabases as SQLAlchemyDatabases
    from .databases.adapters import SQLAlchemyLiteDatabases as SQLAlchemyLiteDatabases
    from .scripts.config import Config as Config
    from .scripts.envfile import EnvUpgrade as EnvUpgrade


_API_FUNCTIONS = frozenset(
    {
        "branches",
        "check",
        "current",
        "downgrade",
        "edit",
        "graph",
        "heads",
        "history",
        "init",
        "lint",
        "list_templates",
        "merge",
        "migrate",
        "resolve",
        "revision",
        "show",
        "stamp",
        "status",
        "uninstall",
        "upgrade",
        "upgrade_env",
        "verify",
    }
)
#: Flask-Migrate's functions that print Alembic's output: printing wrappers
#: over the API's functions of the same name.
_PRINTING_FUNCTIONS = frozenset(
    {"branches", "check", "current", "heads", "history", "list_templates", "show"}
)
_LAZY = {
    **{name: "api" for name in _API_FUNCTIONS - _PRINTING_FUNCTIONS},
    **{name: "compat" for name in _PRINTING_FUNCTIONS},
    "BranchPoint": "api",
    "CheckResult": "api",
    "DatabaseState": "api",
    "HistoryGraph": "api",
    "Revision": "api",
    "Template": "api",
    "DroppedTable": "api",
    "UninstallResult": "api",
    "StatusResult": "api",
    "DatabaseStatus": "api",
    "RevisionStatus": "api",
    "Finding": "api",
    "VerifyResult": "api",
    "LintResult": "api",
    "LintFinding": "api",
    "Accepted": "api",
    "catch_errors": "compat",
    "log": "compat",
    "Config": "scripts.config",
    "EnvUpgrade": "scripts.envfile",
    "SQLAlchemyDatabases": "databases.adapters",
    "SQLAlchemyLiteDatabases": "databases.adapters",
    "RunResult": "apply.results",
    "Step": "apply.results",
    "TargetResult": "apply.targets",
}


#: Names Flask-Migrate re-exports from Alembic: ``(module, name)``.
_FROM_ALEMBIC = {
    "AlembicConfig": ("alembic.config", "Config"),
    "CommandError": ("alembic.util", "CommandError"),
}

alembic_version: tuple[int, int, int]


def __getattr__(name: str) -> t.Any:
    # The API imports Alembic; load it on first use, not with the package.
    import importlib

    if name == "alembic_version":
        from .compat import alembic_version as read_version

        return read_version()
    if name in _FROM_ALEMBIC:
        module_path, attribute = _FROM_ALEMBIC[name]
        return getattr(importlib.import_module(module_path), attribute)
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(f".{module_name}", __name__)
    return getattr(module, name)


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY, *_FROM_ALEMBIC, "alembic_version"})


__all__ = [
    "AlembicConfig",
    "BranchPoint",
    "CheckResult",
    "CommandError",
    "CommandFailedError",
    "Config",
    "DatabaseNotConfiguredError",
    "DatabaseState",
    "DatabaseUnreachableError",
    "DirectoryExistsError",
    "DirectoryNotFoundError",
    "DroppedTable",
    "EnvUpgrade",
    "ExitCode",
    "GraphvizNotFoundError",
    "HistoryGraph",
    "Migrate",
    "MigrateError",
    "MigrateState",
    "MigrationChecksFailedError",
    "MigrationFailedError",
    "NotInitializedError",
    "NotUpToDateError",
    "PendingMigrationsError",
    "PartiallyAppliedError",
    "LintFailedError",
    "LintFinding",
    "LintResult",
    "LockLostError",
    "LockTimeoutError",
    "Revision",
    "RevisionGraphError",
    "RevisionNotFoundError",
    "RunResult",
    "SQLAlchemyDatabases",
    "SQLAlchemyLiteDatabases",
    "SchemaDriftError",
    "Step",
    "TargetResult",
    "TargetsFailedError",
    "Template",
    "TemplateNotFoundError",
    "UninstallResult",
    "UnknownRevisionError",
    "VerifyFailedError",
    "__version__",
    "alembic_version",
    "catch_errors",
    "log",
    *sorted(_API_FUNCTIONS),
]
