"""Test a project's migrations from its own test suite, with pytest.

One line in a test module turns on the ready-made checks (the same as
``flask db test``)::

    from flask_migrate_ext.testing import TestMigrations  # noqa: F401

The fixtures (``migrated_database``, ``migration_runner``, ...) come from the
pytest plugin, :mod:`flask_migrate_ext.testing.pytest_plugin`, which pytest
loads by itself. Importing this package imports neither Alembic nor pytest.

.. versionadded:: 0.2
"""

from __future__ import annotations

import typing as t

if t.TYPE_CHECKING:
    from ..api.checks import MigrationChecks

__all__ = ["TestMigrations"]


def _expect(result: MigrationChecks, name: str) -> None:
    """Pass, skip or fail as the check named ``name`` did."""
    import pytest

    check = result[name]
    if check.status == "skipped":
        pytest.skip(check.message)
    if check.status == "failed":
        at = f" at {check.revision}" if check.revision else ""
        pytest.fail(f"{name} failed{at}:\n{check.message}", pytrace=False)


class TestMigrations:
    """The checks of ``flask db test`` as tests; they run once per session
    (the ``migration_checks`` fixture) and each test reports one check."""

    def test_single_head(self, migration_checks: MigrationChecks) -> None:
        """The history has one head."""
        _expect(migration_checks, "single_head")

    def test_upgrade(self, migration_checks: MigrationChecks) -> None:
        """Every revision upgrades from base, one at a time."""
        _expect(migration_checks, "upgrade")

    def test_stairway(self, migration_checks: MigrationChecks) -> None:
        """Every revision's downgrade undoes its upgrade."""
        _expect(migration_checks, "stairway")

    def test_models_match(self, migration_checks: MigrationChecks) -> None:
        """The models match the migrations at the head."""
        _expect(migration_checks, "models_match")

    def test_downgrade_to_base(self, migration_checks: MigrationChecks) -> None:
        """Downgrading to base leaves only the version table."""
        _expect(migration_checks, "downgrade_to_base")
