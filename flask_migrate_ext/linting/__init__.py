"""Lint for migration scripts: the operations a revision runs, judged by rules.

:mod:`.recorder` runs a script's ``upgrade()`` against a recording
:class:`~alembic.operations.Operations` (no database), :mod:`.rules` judges
the recorded operations, :mod:`.findings` holds what they found.
"""
