"""API functions that create or change migration scripts: init, revision,
migrate, merge, edit, upgrade_env."""

from __future__ import annotations

import os
import typing as t

from alembic import command as alembic_command
from alembic.util import CommandError

from .. import errors
from ..autogenerate import diagnostics
from ..autogenerate import reflection
from ..autogenerate.assistants import Ask
from ..autogenerate.assistants import Assistant
from ..autogenerate.assistants import parse_column_rename
from ..autogenerate.assistants import parse_default
from ..autogenerate.assistants import parse_table_rename
from ..linting.linter import databases
from ..linting.linter import lint_scripts
from ..report import report
from ..scripts import envfile
from ..scripts.config import build_config
from ..scripts.config import messages_left_out
from ..scripts.envfile import EnvUpgrade
from ..scripts.envfile import TEMPLATES_DIR
from ..state import get_state
from ..state import resolve_directory
from ..state import running

if t.TYPE_CHECKING:
    from alembic.script import Script
from .base import _config
from .base import _not_up_to_date
from .base import _path
from .base import _scripts
from .base import _user_facing
from .base import XArg
from .results import Template

# ``migrate`` reflects the database in batches (same data, fewer queries).
reflection.install()


def _available_templates() -> list[Template]:
    found = []
    for entry in sorted(TEMPLATES_DIR.iterdir()):
        readme = entry / "README"
        if readme.is_file():
            with open(readme, encoding="utf-8") as f:
                found.append(Template(entry.name, f.readline().strip()))
    return found


@_user_facing
def list_templates() -> list[Template]:
    """List the templates ``init`` can use.

    :return: The templates, sorted by name.

    .. versionchanged:: 0.1
        Returns :class:`Template` objects instead of ``(name, description)``
        pairs, and prints nothing.
    """
    return _available_templates()


@_user_facing
def init(
    directory: str | os.PathLike[str] | None = None,
    multidb: bool = False,
    template: str | None = None,
    package: bool = False,
) -> str:
    """Create a new migration directory.

    :param directory: Where to create it; the app's directory by default.
    :param multidb: Use the multiple-database template.
    :param template: Template name, or a path to a template directory.
    :param package: Write ``__init__.py`` files in the new directories.
    :return: The directory created.
    """
    state = get_state()
    directory = resolve_directory(state, directory)
    template_directory = None
    if template is not None and ("/" in template or "\\" in template):
        template_directory, template = os.path.split(template)
    if template is None:
        template = "flask-multidb" if multidb else "flask"
    config = build_config(state, directory, template_directory=template_directory)
    config.config_file_name = os.path.join(directory, "alembic.ini")
    if not os.path.isdir(os.path.join(config.get_template_directory(), template)):
        valid = ", ".join(found.name for found in _available_templates())
        raise errors.TemplateNotFoundError(
            f"No template named {template!r}. Available templates: {valid}."
        )
    if os.path.isdir(directory) and os.listdir(directory):
        raise errors.DirectoryExistsError(
            f"Directory {directory!r} already exists and is not empty."
        )
    # Alembic ends with "Please edit configuration/connection/logging settings
    # in alembic.ini": wrong here, the URL comes from the app's config.
    with messages_left_out("Please edit configuration"):
        alembic_command.init(config, directory, template=template, package=package)
    return directory


@_user_facing
def revision(
    directory: str | os.PathLike[str] | None = None,
    message: str | None = None,
    autogenerate: bool = False,
    sql: bool = False,
    head: str = "head",
    splice: bool = False,
    branch_label: str | None = None,
    version_path: str | None = None,
    rev_id: str | None = None,
    *,
    binds: t.Sequence[str] | None = None,
) -> str | None:
    """Create a new revision file.

    :return: The path of the new file, or ``None`` when autogenerate found no
        change (then no file is written) or with ``sql``.
    """
    return _write_revision(
        directory,
        None,
        message,
        autogenerate=autogenerate,
        sql=sql,
        head=head,
        splice=splice,
        branch_label=branch_label,
        version_path=version_path,
        rev_id=rev_id,
    )


def _write_revision(
    directory: str | os.PathLike[str] | None,
    x_arg: XArg,
    message: str | None,
    autogenerate: bool,
    verbose: bool = False,
    assistant: Assistant | None = None,
    **options: t.Any,
) -> str | None:
    opts = ["autogenerate"] if autogenerate else None
    config = _config(directory, x_arg, opts=opts, needs_db=autogenerate)
    had_revisions = bool(_scripts(config).get_heads())
    if not autogenerate:
        script = alembic_command.revision(config, message, **options)
        return _path(script)
    state = get_state()
    location = config.get_main_option("script_location") or state.directory
    hint = envfile.outdated_hint(location, state.command)
    if hint is not None:
        report(hint)
    with (
        diagnostics.watching() as watcher,
        running(revision_watcher=assistant or Assistant(command=state.command)),
    ):
        try:
            script = alembic_command.revision(
                config, message, autogenerate=True, **options
            )
        except CommandError as e:
            if not str(e).startswith("Target database is not up to date"):
                raise
            raise _not_up_to_date(config, _scripts(config), "migrate") from e
    path = _path(script)
    diagnostics.explain(
        watcher.comparisons, path is not None, had_revisions, verbose, state.command
    )
    _lint_new_revision(script)
    return path


def _lint_new_revision(script: Script | None | list[Script | None]) -> None:
    """Report the lint's findings on the script ``migrate`` just wrote.

    The written file is linted, through the same recorder as ``flask db
    lint``, rather than the ``upgrade_ops`` autogenerate produced: the file
    is what will run (env.py's ``process_revision_directives`` may have
    edited the operations), findings get the file's line numbers, and a
    finding here is exactly what ``lint`` will say in CI. The findings are
    reported, never raised: the user reviews the new script. As data:
    ``lint(revisions=[path])``.
    """
    scripts = script if isinstance(script, list) else [script]
    written = [s for s in scripts if s is not None]
    if not written:
        return
    try:
        result = lint_scripts(written, databases())
    except Exception as e:  # a lint bug must not fail migrate
        report(f"  Lint skipped: {type(e).__name__}: {e}")
        return
    for finding in result.findings:
        report(f"  {finding.line_text()}")


@_user_facing
def migrate(
    directory: str | os.PathLike[str] | None = None,
    message: str | None = None,
    sql: bool = False,
    head: str = "head",
    splice: bool = False,
    branch_label: str | None = None,
    version_path: str | None = None,
    rev_id: str | None = None,
    x_arg: XArg = None,
    *,
    binds: t.Sequence[str] | None = None,
    verbose: bool = False,
    renames: t.Sequence[str] = (),
    table_renames: t.Sequence[str] = (),
    defaults: t.Mapping[str, str] | t.Sequence[str] | None = None,
    ask: Ask | None = None,
) -> str | None:
    """Autogenerate a new revision file (``revision --autogenerate``).

    When nothing is found, the reason is reported (no models imported, tables
    made by ``db.create_all()``), as is a revision that adds or drops
    unnamed constraints.

    A column dropped and one of compatible type added to the same table (or
    a table dropped and one with the same columns created) may be a rename:
    named in ``renames``/``table_renames``, or confirmed by ``ask``, it is
    written as ``alter_column(..., new_column_name=...)``/``rename_table``
    instead of drop + add; otherwise it is reported. A NOT NULL column
    without a default added to an existing table, given a value in
    ``defaults`` or by ``ask``, is added nullable, filled, then set NOT NULL.
    See the "Autogenerate" docs.

    :param verbose: Report the comparison table by table.
    :param renames: Column renames, ``"table.old:new"``.
    :param table_renames: Table renames, ``"old:new"``.
    :param defaults: SQL values for new NOT NULL columns, by
        ``"table.column"`` (or ``"table.column=VALUE"`` strings).
    :param ask: Asked about every other candidate: a
        :class:`~flask_migrate_ext.autogenerate.assistants.ColumnRename` or
        ``TableRename`` (answer ``True`` to rename), or a ``NotNullColumn``
        (answer the SQL value, or ``None``).
    :return: The path of the new file, or ``None`` when the models match the
        database (then no file is written).
    :raises RewriteRequestError: A rename or default matching no change.

    .. versionchanged:: 0.1
        ``renames``, ``table_renames``, ``defaults`` and ``ask``.
    """
    if defaults is not None and not isinstance(defaults, t.Mapping):
        defaults = dict(parse_default(text) for text in defaults)
    assistant = Assistant(
        column_renames=[parse_column_rename(text) for text in renames],
        table_renames=[parse_table_rename(text) for text in table_renames],
        defaults={name: value for name, value in (defaults or {}).items()},
        ask=ask,
        command=get_state().command,
    )
    return _write_revision(
        directory,
        x_arg,
        message,
        autogenerate=True,
        verbose=verbose,
        assistant=assistant,
        sql=sql,
        head=head,
        splice=splice,
        branch_label=branch_label,
        version_path=version_path,
        rev_id=rev_id,
    )


@_user_facing
def edit(
    directory: str | os.PathLike[str] | None = None, revision: str = "current"
) -> None:
    """Open a revision file in ``$EDITOR``."""
    config = _config(directory, needs_db=revision == "current")
    _scripts(config)
    alembic_command.edit(config, revision)


@_user_facing
def merge(
    directory: str | os.PathLike[str] | None = None,
    revisions: str | t.Sequence[str] = "",
    message: str | None = None,
    branch_label: str | None = None,
    rev_id: str | None = None,
) -> str | None:
    """Create a revision that merges several revisions.

    With no ``revisions``, all current heads are merged (Flask-Migrate would
    create an unrelated second base revision instead).

    :return: The path of the new file.
    """
    config = _config(directory, needs_db=False)
    if not revisions:
        heads = _scripts(config).get_heads()
        if len(heads) < 2:
            raise errors.CommandFailedError(
                "Nothing to merge: there is only one head. Name the revisions"
                " to merge, e.g. 'flask db merge heads'."
            )
        revisions = "heads"
    script = alembic_command.merge(
        config,
        list(revisions) if not isinstance(revisions, str) else revisions,
        message=message,
        branch_label=branch_label,
        rev_id=rev_id,
    )
    return _path(script)


@_user_facing
def upgrade_env(
    directory: str | os.PathLike[str] | None = None,
    force: bool = False,
    check: bool = False,
    template: str | None = None,
) -> EnvUpgrade:
    """Bring the migration folder's ``env.py`` up to the current template.

    An ``env.py`` written by Flask-Migrate or by an earlier version of this
    package, and never edited, is replaced. One with local edits is left
    alone (status ``"refused"``) unless ``force`` is given; then it is kept
    as ``env.py.orig`` first.

    :param force: Replace an ``env.py`` with local edits.
    :param check: Only compare: write nothing.
    :param template: The template to upgrade to; by default the one the file
        came from (or looks like: multiple databases, async).
    :return: The status, the diff from the old file to the new one, and the
        paths involved.
    """
    config = _config(directory, needs_db=False)
    location = config.get_main_option("script_location") or get_state().directory
    return envfile.upgrade_env_file(
        location, force=force, check=check, template=template
    )
