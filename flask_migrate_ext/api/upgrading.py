"""``upgrade``: answered without Alembic when the database is at the head
already (:mod:`flask_migrate_ext.apply.noop` decides), else the full run of
:func:`.database.upgrade`, imported then. So this module imports Alembic only
when there is something to upgrade, or a doubt."""

from __future__ import annotations

import os
import typing as t

from ..apply.noop import upgraded_already
from .boundary import user_facing

if t.TYPE_CHECKING:
    from ..apply.dataloss import Confirm
    from ..apply.results import RunResult
    from ..progress import Listener
    from .base import XArg


@user_facing
def upgrade(
    directory: str | os.PathLike[str] | None = None,
    revision: str = "head",
    sql: bool = False,
    tag: str | None = None,
    x_arg: XArg = None,
    *,
    lock: bool | None = None,
    lock_timeout: float | None = None,
    binds: t.Sequence[str] | None = None,
    schemas: t.Sequence[str] | None = None,
    confirm_data_loss: Confirm = False,
    jobs: int = 1,
    continue_on_error: bool = False,
    progress: Listener | None = None,
) -> RunResult:
    """Upgrade the database to a later revision.

    :param revision: Target, ``head`` by default; with ``sql`` it may be a
        ``start:end`` range.
    :param lock: Take the migration lock; ``MIGRATE_LOCK`` by default.
    :param lock_timeout: Seconds to wait for the lock; ``MIGRATE_LOCK_TIMEOUT``
        (600) by default.
    :param binds: With several databases, work on these only (``--bind``).
    :param schemas: PostgreSQL tenant schemas to upgrade, each with its own
        version table; ``MIGRATE_SCHEMAS`` by default.
    :param confirm_data_loss: When the run drops tables or columns holding
        rows and ``MIGRATE_DATA_LOSS_GUARD = "confirm"``: go on (``True``),
        refuse (``False``), or ask this callable, given the
        :class:`~flask_migrate_ext.apply.dataloss.DataLoss` list.
    :param progress: Called with each :mod:`~flask_migrate_ext.progress`
        event (which revision of how many, on which database, how long it
        took); by default the run is silent, unless
        :func:`~flask_migrate_ext.progress.listening` installed a listener.
    :param jobs: Run this many targets (tenant schemas; binds, when env.py
        can choose them) at once, each in a worker process with its own
        lock and transactions. ``1`` runs them one after another here.
    :param continue_on_error: After a target fails, go on with the others
        (by default, no new target starts; running ones finish). With
        several databases and an env.py that can choose them, each is a
        target of its own when this or ``jobs`` asks for targets.
    :return: The steps applied, and each target's result (``targets``).
    :raises DataLossRefusedError: Rows would be lost and that was not
        confirmed; nothing ran.
    :raises TargetsFailedError: Some of several targets failed; the error
        holds every target's result.

    .. versionchanged:: 0.1
        ``confirm_data_loss``, ``jobs``, ``continue_on_error``, ``progress``.
        A database already at the head is told so without importing Alembic
        or taking the lock, when the revision cache vouches for every script
        (see "Deploying").
    """
    # Arguments only the full run can check or honour go to it.
    if jobs >= 1 and not binds:
        done = upgraded_already(
            directory, revision, sql=sql, tag=tag, x_arg=x_arg, schemas=schemas
        )
        if done is not None:
            return done
    from .database import upgrade as full_run

    # Already inside the boundary: the undecorated function.
    return t.cast(
        "RunResult",
        full_run.__wrapped__(  # type: ignore[attr-defined]
            directory,
            revision,
            sql,
            tag,
            x_arg,
            lock=lock,
            lock_timeout=lock_timeout,
            binds=binds,
            schemas=schemas,
            confirm_data_loss=confirm_data_loss,
            jobs=jobs,
            continue_on_error=continue_on_error,
            progress=progress,
        ),
    )
