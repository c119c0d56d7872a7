"""Every ``MIGRATE_*`` key of the Flask config: typed, with defaults, validated.

:meth:`Settings.from_config` is the one place that reads them. ``init_app``
puts the defaults into ``app.config`` (``setdefault``, as Flask extensions
do), and each command reads the settings once, when it starts, so a wrong
value fails before anything is touched. The configuration page of the docs
is generated from :data:`SETTINGS`.
"""

from __future__ import annotations

import os
import typing as t

from .errors import SettingsError

LockSetting = t.Literal[True, False, "table", "session"]
TransactionMode = t.Literal["per-revision", "all"]
GuardMode = t.Literal["off", "warn", "error"]
DataLossGuard = t.Literal["warn", "confirm", "off"]

#: The ledger table's name unless ``MIGRATE_LOG_TABLE`` says otherwise.
DEFAULT_LOG_TABLE = "flask_migrate_ext_log"
#: The lock table of ``MIGRATE_LOCK = "table"``.
LOCK_TABLE = "flask_migrate_ext_lock"


# NamedTuples, not dataclasses: this module loads with the app, and a
# dataclass costs about half a millisecond to define.
class Setting(t.NamedTuple):
    """One ``MIGRATE_*`` key: its default, how to read it, and its docs."""

    key: str
    field: str
    default: t.Any
    parse: t.Callable[[str, t.Any], t.Any]
    doc: str
    #: The default as the docs show it, when ``repr`` is not right.
    shown_default: str | None = None


def _choice(*allowed: t.Any) -> t.Callable[[str, t.Any], t.Any]:
    def parse(key: str, value: t.Any) -> t.Any:
        # ``1 == True`` in Python: compare types too, or MIGRATE_LOCK = 1 passes.
        if not any(value == a and type(value) is type(a) for a in allowed):
            listed = ", ".join(map(repr, allowed[:-1])) + f" or {allowed[-1]!r}"
            raise SettingsError(f"{key} must be {listed}, not {value!r}.")
        return value

    return parse


def _seconds(key: str, value: t.Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        seconds = -1.0
    else:
        try:
            seconds = float(value)
        except ValueError:
            seconds = -1.0
    if not seconds > 0:
        raise SettingsError(
            f"{key} must be a number of seconds above 0, not {value!r}."
        )
    return seconds


def _optional_seconds(key: str, value: t.Any) -> float | None:
    return None if value is None else _seconds(key, value)


def _seconds_or_off(key: str, value: t.Any) -> float | None:
    """Seconds, or ``None``/``False``/``0`` for no limit."""
    if (
        value is None
        or value is False
        or (
            isinstance(value, (int, float))
            and not isinstance(value, bool)
            and value == 0
        )
    ):
        return None
    if value is True:
        raise SettingsError(
            f"{key} must be a number of seconds, or None, False or 0 for no"
            f" limit, not {value!r}."
        )
    return _seconds(key, value)


def _count(key: str, value: t.Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise SettingsError(f"{key} must be a whole number, 0 or more, not {value!r}.")
    return value


def _flag(key: str, value: t.Any) -> bool:
    if not isinstance(value, bool):
        raise SettingsError(f"{key} must be True or False, not {value!r}.")
    return value


def _table_name(key: str, value: t.Any) -> str | None:
    if value is None or value is False:
        return None
    if not isinstance(value, str) or not value.strip():
        raise SettingsError(f"{key} must be a table name or None, not {value!r}.")
    return value


def _path(key: str, value: t.Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, (str, os.PathLike)):
        raise SettingsError(f"{key} must be a path, not {value!r}.")
    return os.fspath(value)


def _names(key: str, value: t.Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, t.Iterable):
        raise SettingsError(
            f"{key} must be a list of names, not {value!r}"
            + (f" (write [{value!r}])." if isinstance(value, str) else ".")
        )
    names = tuple(value)
    if not all(isinstance(name, str) for name in names):
        raise SettingsError(f"{key} must be a list of names, not {value!r}.")
    return names


#: ``MIGRATE_SCHEMAS`` as given: names, or a function returning them.
SchemaNames: t.TypeAlias = "tuple[str, ...] | t.Callable[[], t.Iterable[str]]"


def _names_or_function(key: str, value: t.Any) -> SchemaNames:
    """A list of names, or a function called with no arguments (in the app
    context, when a command needs them) that returns one."""
    if callable(value) and not isinstance(value, type):
        return t.cast("t.Callable[[], t.Iterable[str]]", value)
    try:
        return _names(key, value)
    except SettingsError:
        raise SettingsError(
            f"{key} must be a list of names or a function returning them,"
            f" not {value!r}"
            + (f" (write [{value!r}])." if isinstance(value, str) else ".")
        ) from None


def schema_names(key: str, value: t.Any) -> tuple[str, ...]:
    """What a ``MIGRATE_SCHEMAS`` function returned, checked."""
    if isinstance(value, str) or not isinstance(value, t.Iterable):
        raise SettingsError(
            f"{key}'s function must return a list of schema names, not {value!r}."
        )
    names = tuple(value)
    wrong = [name for name in names if not isinstance(name, str)]
    if wrong:
        raise SettingsError(
            f"{key}'s function must return schema names (strings), not {wrong[0]!r}."
        )
    return names


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "MIGRATE_LOCK",
        "lock",
        True,
        _choice(True, False, "table", "session"),
        "Take the migration lock for `upgrade`, `downgrade`, `stamp`, `resolve`"
        " and `uninstall`. `True` uses session locks, or the lock table on a"
        " PostgreSQL database found behind a transaction pooler (PgBouncer in"
        ' transaction mode); `"table"` always uses the lock table, `"session"`'
        " always session locks; `False` turns locking off. See"
        " [](deploying.md).",
    ),
    Setting(
        "MIGRATE_LOCK_TIMEOUT",
        "lock_timeout",
        600,
        _seconds,
        "Seconds to wait for another process's migration lock before exiting"
        " with code 5. `--lock-timeout` overrides it.",
    ),
    Setting(
        "MIGRATE_TRANSACTION_MODE",
        "transaction_mode",
        None,
        _choice(None, "per-revision", "all"),
        '`"per-revision"` commits each revision on its own; `"all"` runs all'
        " the revisions of a command in one transaction (all or nothing, where"
        " the database has transactional DDL). Unset, a `transaction_per_migration`"
        " given to `Migrate` or passed by env.py decides, and each revision"
        " commits on its own when neither does.",
        shown_default='unset (`"per-revision"`)',
    ),
    Setting(
        "MIGRATE_LOG_TABLE",
        "log_table",
        DEFAULT_LOG_TABLE,
        _table_name,
        "The ledger table recording every revision run; `None` records nothing"
        " (and then partial failures are not detected). `flask db uninstall`"
        " drops it.",
    ),
    Setting(
        "MIGRATE_DB_LOCK_TIMEOUT",
        "db_lock_timeout",
        5,
        _seconds_or_off,
        "Seconds a revision's statement may wait for a table lock on the server"
        " (PostgreSQL `lock_timeout`, MySQL/MariaDB `lock_wait_timeout` and"
        " `innodb_lock_wait_timeout`, whole seconds), so a migration queued"
        " behind a long transaction does not stall every query on that table."
        " Then the revision is tried again (`MIGRATE_DB_LOCK_RETRIES`). `None`,"
        " `False` or `0` turn the limit off (the server's own settings apply).",
    ),
    Setting(
        "MIGRATE_DB_LOCK_RETRIES",
        "db_lock_retries",
        3,
        _count,
        "How many times a revision that hit `MIGRATE_DB_LOCK_TIMEOUT` is tried"
        " again, after 1, 2, 4... seconds (give or take a quarter), when the"
        " failure left nothing behind: always on PostgreSQL; on MySQL/MariaDB"
        " when no statement of the revision had committed. `0` fails at once."
        " The failure names the sessions holding the table.",
    ),
    Setting(
        "MIGRATE_STATEMENT_TIMEOUT",
        "statement_timeout",
        None,
        _optional_seconds,
        "Seconds a revision's statement may run (PostgreSQL `statement_timeout`,"
        " MariaDB `max_statement_time`).",
    ),
    Setting(
        "MIGRATE_DIRECTORY",
        "directory",
        None,
        _path,
        "The migration directory, relative to the app's root path (so `flask db`"
        " works from any folder). Precedence: `-d/--directory` or"
        " `FLASK_DB_DIRECTORY`, then `MIGRATE_DIRECTORY`, then"
        " `Migrate(directory=...)` (relative to the working directory, as in"
        " Flask-Migrate).",
    ),
    Setting(
        "MIGRATE_EXCLUDE_BINDS",
        "exclude_binds",
        (),
        _names,
        "Binds never migrated (read-only replicas, databases owned by another"
        " app): no command connects to them and autogenerate ignores their"
        " models.",
    ),
    Setting(
        "MIGRATE_SCHEMAS",
        "schemas",
        (),
        _names_or_function,
        "PostgreSQL tenant schemas: `upgrade`, `downgrade`, `current`, `check`"
        " and `uninstall` run once per schema, each with its own version table"
        " and ledger (same as `--schema`, which wins). A list of names, or a"
        " function taking no arguments that returns them, called in the app"
        " context when a command needs them (a query of the tenants table)."
        " See [](deploying.md#many-targets).",
    ),
    Setting(
        "MIGRATE_REVISION_CACHE",
        "revision_cache",
        True,
        _flag,
        "Keep what each revision file declares (id, parents, labels, docstring)"
        " in `<migrations>/.flask_migrate_ext/`, so commands build the revision"
        " graph without executing unchanged files. Any added, removed, renamed"
        " or edited file is re-read; `False` executes every file on every"
        " command, as Flask-Migrate does. See [](benchmarks.md).",
    ),
    Setting(
        "MIGRATE_GUARD",
        "guard",
        "off",
        _choice("off", "warn", "error"),
        "Check for pending migrations when the app first connects to each"
        ' migrated database, never per request: `"warn"` logs one warning'
        ' naming them, `"error"` makes connecting raise'
        " `PendingMigrationsError` until `flask db upgrade` has run. Off while"
        " `flask db` commands run. See [](deploying.md#pending-migrations).",
    ),
    Setting(
        "MIGRATE_DATA_LOSS_GUARD",
        "data_loss_guard",
        "warn",
        _choice("warn", "confirm", "off"),
        "Before a run drops tables or columns that hold rows: a downgrade lists"
        " them and needs `--yes` (exit 11 without a terminal to confirm on); an"
        ' upgrade lists them and goes on (`"warn"`) or needs `--yes` like a'
        ' downgrade (`"confirm"`). `"off"` checks nothing. See'
        " [](deploying.md).",
    ),
)

_BY_KEY = {setting.key: setting for setting in SETTINGS}


class Settings(t.NamedTuple):
    """The app's ``MIGRATE_*`` settings, read and checked once per command."""

    lock: LockSetting = True
    lock_timeout: float = 600.0
    transaction_mode: TransactionMode | None = None
    log_table: str | None = DEFAULT_LOG_TABLE
    db_lock_timeout: float | None = 5.0
    db_lock_retries: int = 3
    statement_timeout: float | None = None
    directory: str | None = None
    exclude_binds: tuple[str, ...] = ()
    schemas: SchemaNames = ()
    revision_cache: bool = True
    guard: GuardMode = "off"
    data_loss_guard: DataLossGuard = "warn"

    @classmethod
    def from_config(cls, config: t.Mapping[str, t.Any]) -> Settings:
        """Read every ``MIGRATE_*`` key of ``config``.

        :raises SettingsError: A value of the wrong type or out of range,
            naming the key and what it accepts.
        """
        values = {
            setting.field: setting.parse(
                setting.key, config.get(setting.key, setting.default)
            )
            for setting in SETTINGS
        }
        return cls(**values)

    @property
    def per_revision(self) -> bool | None:
        """The transaction mode as a flag; ``None`` when env.py decides."""
        if self.transaction_mode is None:
            return None
        return self.transaction_mode == "per-revision"


def guard_mode(config: t.Mapping[str, t.Any]) -> GuardMode:
    """``MIGRATE_GUARD`` alone, read when ``init_app`` runs.

    :raises SettingsError: Not one of ``"off"``, ``"warn"``, ``"error"``.
    """
    setting = _BY_KEY["MIGRATE_GUARD"]
    return t.cast(
        GuardMode, setting.parse(setting.key, config.get(setting.key, setting.default))
    )


def set_defaults(config: t.MutableMapping[str, t.Any]) -> None:
    """Put every key's default into ``config`` where the app set none."""
    for setting in SETTINGS:
        config.setdefault(setting.key, setting.default)


def misspelled_keys(config: t.Mapping[str, t.Any]) -> list[tuple[str, str]]:
    """``MIGRATE_*`` keys that look like a typo of a known one:
    ``(given, meant)`` pairs."""
    import difflib  # only when a command starts, not with the app

    found = []
    for key in config:
        if key.startswith("MIGRATE_") and key not in _BY_KEY:
            close = difflib.get_close_matches(key, _BY_KEY, n=1, cutoff=0.85)
            if close:
                found.append((key, close[0]))
    return found


def markdown_table() -> str:
    """The docs' table of settings (``docs/configuration.md`` includes it)."""
    rows = ["| key | default | meaning |", "| --- | --- | --- |"]
    for setting in SETTINGS:
        default = setting.shown_default
        if default is None:
            value = setting.default
            default = "none" if value is None else f"`{value!r}`".replace("'", '"')
            if value == ():
                default = "`()`"
        rows.append(f"| `{setting.key}` | {default} | {setting.doc} |")
    return "\n".join(rows)
