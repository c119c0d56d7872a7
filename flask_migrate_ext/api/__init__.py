"""The Python API: Flask-Migrate's functions, returning data and raising typed errors.

Every function needs an app context and has Flask-Migrate 4.1's name,
parameters and parameter order. They return what they found or did, as the
dataclasses of :mod:`.results` (and :class:`~flask_migrate_ext.RunResult`),
and print nothing: ``flask db`` renders the results
(:mod:`flask_migrate_ext.cli.output`), and the package-level names
(``flask_migrate_ext.heads`` ...) print them as Flask-Migrate does. Errors are
:class:`~flask_migrate_ext.errors.MigrateError` subclasses; nothing here
exits the process.

The functions are loaded on first use: ``heads``, ``history`` and
``branches`` answer a straight history without importing Alembic, and
``upgrade`` a database already at the head.
"""

from __future__ import annotations

import importlib
import typing as t

if t.TYPE_CHECKING:
    from .boundary import translate_errors as translate_errors
    from .checks import Check as Check
    from .checks import CHECKS as CHECKS
    from .checks import disposable_database as disposable_database
    from .checks import migrate_disposable as migrate_disposable
    from .checks import MigrationChecks as MigrationChecks
    from .checks import run_migration_checks as run_migration_checks
    from .database import downgrade as downgrade
    from .database import DroppedTable as DroppedTable
    from .database import resolve as resolve
    from .database import stamp as stamp
    from .database import uninstall as uninstall
    from .database import UninstallResult as UninstallResult
    from .drawing import graph as graph
    from .drawing import HistoryGraph as HistoryGraph
    from .inspect import check as check
    from .inspect import current as current
    from .inspect import show as show
    from .lint import lint as lint
    from .lint import LintFinding as LintFinding
    from .lint import LintResult as LintResult
    from .listing import branches as branches
    from .listing import heads as heads
    from .listing import history as history
    from .results import BranchPoint as BranchPoint
    from .results import CheckResult as CheckResult
    from .results import DatabaseState as DatabaseState
    from .results import Revision as Revision
    from .results import Template as Template
    from .scripts import edit as edit
    from .scripts import init as init
    from .scripts import list_templates as list_templates
    from .scripts import merge as merge
    from .scripts import migrate as migrate
    from .scripts import revision as revision
    from .scripts import upgrade_env as upgrade_env
    from .status import Accepted as Accepted
    from .status import DatabaseStatus as DatabaseStatus
    from .status import Finding as Finding
    from .status import RevisionStatus as RevisionStatus
    from .status import status as status
    from .status import StatusResult as StatusResult
    from .status import verify as verify
    from .status import VerifyResult as VerifyResult
    from .upgrading import upgrade as upgrade

#: Where each name lives.
_MODULES = {
    "translate_errors": "boundary",
    **dict.fromkeys(
        [
            "Check",
            "CHECKS",
            "disposable_database",
            "migrate_disposable",
            "MigrationChecks",
            "run_migration_checks",
        ],
        "checks",
    ),
    **dict.fromkeys(
        [
            "downgrade",
            "DroppedTable",
            "resolve",
            "stamp",
            "uninstall",
            "UninstallResult",
        ],
        "database",
    ),
    **dict.fromkeys(["graph", "HistoryGraph"], "drawing"),
    **dict.fromkeys(["check", "current", "show"], "inspect"),
    **dict.fromkeys(
        [
            "Accepted",
            "DatabaseStatus",
            "Finding",
            "RevisionStatus",
            "status",
            "StatusResult",
            "verify",
            "VerifyResult",
        ],
        "status",
    ),
    **dict.fromkeys(["lint", "LintFinding", "LintResult"], "lint"),
    **dict.fromkeys(["branches", "heads", "history"], "listing"),
    "upgrade": "upgrading",
    **dict.fromkeys(
        ["BranchPoint", "CheckResult", "DatabaseState", "Revision", "Template"],
        "results",
    ),
    **dict.fromkeys(
        [
            "edit",
            "init",
            "list_templates",
            "merge",
            "migrate",
            "revision",
            "upgrade_env",
        ],
        "scripts",
    ),
}


def __getattr__(name: str) -> t.Any:
    module_name = _MODULES.get(name)
    if module_name is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module_name}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_MODULES})


__all__ = sorted(_MODULES)
