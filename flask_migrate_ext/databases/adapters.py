"""Databases for apps that do not use Flask-SQLAlchemy, passed as ``Migrate(app, db)``.

The env.py templates read a small duck-typed interface from ``db``: ``engine``,
``engines`` (keyed by bind name, ``None`` for the default database),
``metadata``, ``metadatas`` and ``bind_names()``. Flask-SQLAlchemy provides it;
the classes here provide it for Flask-SQLAlchemy-Lite and for plain SQLAlchemy,
so ``Migrate``'s own keyword arguments (which go to Alembic's
``context.configure``) never need a new name.

Nothing here imports Alembic.
"""

from __future__ import annotations

import asyncio
import typing as t
import weakref

import sqlalchemy as sa
from flask import current_app
from flask import Flask

from ..errors import DatabaseNotConfiguredError

if t.TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    AnyEngine = sa.Engine | AsyncEngine

#: An engine (sync or async), or a URL to create one from.
EngineOrURL = t.Union[sa.Engine, "AsyncEngine", str, sa.URL]  # noqa: UP007
#: A :class:`~sqlalchemy.MetaData`, or a declarative base (anything with a
#: ``metadata`` attribute holding one).
MetadataLike = t.Any


def _as_metadata(value: MetadataLike, where: str) -> sa.MetaData:
    if isinstance(value, sa.MetaData):
        return value
    metadata = getattr(value, "metadata", None)
    if isinstance(metadata, sa.MetaData):
        return metadata  # a declarative base class
    raise TypeError(
        f"{where} must be a sqlalchemy.MetaData or a declarative base, not"
        f" {type(value).__name__}."
    )


def _check_bind_name(name: object) -> str:
    if not isinstance(name, str) or not name:
        raise TypeError(f"Bind names must be non-empty strings, not {name!r}.")
    return name


def is_async_engine(engine: object) -> bool:
    """Whether ``engine`` is a :class:`sqlalchemy.ext.asyncio.AsyncEngine`."""
    return isinstance(getattr(engine, "sync_engine", None), sa.Engine)


class _Databases:
    """What env.py reads from a database object (Flask-SQLAlchemy's shape):
    ``metadata``/``metadatas``, ``engine``/``engines``, ``bind_names()``,
    ``get_engine(bind)``. Subclasses fill ``_metadatas`` and say how to get
    an engine for a known database."""

    _metadatas: dict[str | None, sa.MetaData]

    def __repr__(self) -> str:
        return f"<{type(self).__name__} binds={self.bind_names()!r}>"

    def bind_names(self) -> list[str]:
        """Names of the databases other than the default one."""
        return [name for name in self._metadatas if name is not None]

    @property
    def metadata(self) -> sa.MetaData:
        """The default database's metadata."""
        return self._metadatas[None]

    @property
    def metadatas(self) -> dict[str | None, sa.MetaData]:
        """Metadata of every database; the default one under ``None``."""
        return dict(self._metadatas)

    @property
    def engine(self) -> AnyEngine:
        """The default database's engine, for the current app."""
        return self.get_engine()

    @property
    def engines(self) -> dict[str | None, AnyEngine]:
        """Every database's engine, for the current app; the default under ``None``."""
        return {name: self.get_engine(name) for name in self._metadatas}

    def get_engine(self, bind: str | None = None) -> AnyEngine:
        """The current app's engine for database ``bind`` (``None``: the default)."""
        if bind == "":
            bind = None
        if bind not in self._metadatas:
            raise DatabaseNotConfiguredError(_not_configured(bind, self.bind_names()))
        return self._engine(bind)

    def _engine(self, bind: str | None) -> AnyEngine:
        raise NotImplementedError


class SQLAlchemyDatabases(_Databases):
    """The databases of an app that uses SQLAlchemy without an extension.

    Pass it as the database to :class:`~flask_migrate_ext.Migrate`::

        migrate = Migrate(app, SQLAlchemyDatabases("sqlite:///app.db", Base))

    :param engine: The default database: an engine, or a URL to create one
        from. Async engines and URLs with an async driver
        (``sqlite+aiosqlite://``, ``postgresql+psycopg_async://``) are used
        with the ``aioflask`` templates.
    :param metadata: The default database's tables: a ``MetaData`` or a
        declarative base class.
    :param binds: More databases: ``{name: (engine_or_url, metadata)}``,
        migrated with the ``flask-multidb`` and ``aioflask-multidb``
        templates.
    :param engine_options: Keyword arguments for ``create_engine`` (or
        ``create_async_engine``) when a URL is given.

    Engines made from URLs are created on first use, once per app, and are
    the caller's to dispose of (:meth:`dispose`).

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        engine: EngineOrURL,
        metadata: MetadataLike,
        *,
        binds: t.Mapping[str, tuple[EngineOrURL, MetadataLike]] | None = None,
        engine_options: t.Mapping[str, t.Any] | None = None,
    ) -> None:
        self._sources: dict[str | None, EngineOrURL] = {None: engine}
        self._metadatas: dict[str | None, sa.MetaData] = {
            None: _as_metadata(metadata, "metadata")
        }
        for name, pair in (binds or {}).items():
            name = _check_bind_name(name)
            if not isinstance(pair, tuple) or len(pair) != 2:
                raise TypeError(
                    f"binds[{name!r}] must be an (engine_or_url, metadata) pair."
                )
            self._sources[name] = pair[0]
            self._metadatas[name] = _as_metadata(pair[1], f"binds[{name!r}][1]")
        self.engine_options = dict(engine_options or {})
        self._created: weakref.WeakKeyDictionary[Flask, dict[str | None, AnyEngine]]
        self._created = weakref.WeakKeyDictionary()

    def _engine(self, bind: str | None) -> AnyEngine:
        source = self._sources[bind]
        if not isinstance(source, (str, sa.URL)):
            return source
        app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
        created = self._created.setdefault(app, {})
        if bind not in created:
            created[bind] = _create_engine(source, self.engine_options)
        return created[bind]

    def dispose(self) -> None:
        """Close the connections of the engines created for the current app."""
        app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
        for engine in self._created.pop(app, {}).values():
            dispose_engine(engine)


def _create_engine(url: str | sa.URL, options: t.Mapping[str, t.Any]) -> AnyEngine:
    url = sa.make_url(url)
    if getattr(url.get_dialect(), "is_async", False):
        from sqlalchemy.ext.asyncio import create_async_engine

        return create_async_engine(url, **options)
    return sa.create_engine(url, **options)


def dispose_engine(engine: AnyEngine) -> None:
    """Dispose of a sync or async engine from synchronous code."""
    if is_async_engine(engine):
        asyncio.run(t.cast("AsyncEngine", engine).dispose())
    else:
        t.cast(sa.Engine, engine).dispose()


class SQLAlchemyLiteDatabases(_Databases):
    """The databases of a Flask-SQLAlchemy-Lite app, with the tables to migrate.

    Flask-SQLAlchemy-Lite manages engines but leaves the models to the app, so
    the metadata is given here::

        db = SQLAlchemy(app)  # flask_sqlalchemy_lite
        migrate = Migrate(app, SQLAlchemyLiteDatabases(db, Base))

    :param db: The ``flask_sqlalchemy_lite.SQLAlchemy`` extension.
    :param metadata: Tables of the ``"default"`` engine: a ``MetaData`` or a
        declarative base class.
    :param binds: More databases, ``{engine_name: metadata}``; each name is a
        key of ``SQLALCHEMY_ENGINES`` (or ``SQLALCHEMY_ASYNC_ENGINES``).
    :param use_async: Use the extension's async engines
        (``SQLALCHEMY_ASYNC_ENGINES``), with the ``aioflask`` templates.

    .. versionadded:: 0.1
    """

    #: Flask-SQLAlchemy-Lite's name for the default engine.
    default_name = "default"

    def __init__(
        self,
        db: t.Any,
        metadata: MetadataLike,
        *,
        binds: t.Mapping[str, MetadataLike] | None = None,
        use_async: bool = False,
    ) -> None:
        self.db = db
        self.use_async = use_async
        self._metadatas: dict[str | None, sa.MetaData] = {
            None: _as_metadata(metadata, "metadata")
        }
        for name, value in (binds or {}).items():
            name = _check_bind_name(name)
            if name == self.default_name:
                raise TypeError(
                    f"{name!r} is the default engine: pass its metadata as"
                    " 'metadata', not in 'binds'."
                )
            self._metadatas[name] = _as_metadata(value, f"binds[{name!r}]")

    def _engine(self, bind: str | None) -> AnyEngine:
        name = self.default_name if bind is None else bind
        engines = self.db.async_engines if self.use_async else self.db.engines
        if name not in engines:
            key = "SQLALCHEMY_ASYNC_ENGINES" if self.use_async else "SQLALCHEMY_ENGINES"
            configured = ", ".join(repr(n) for n in engines) or "none"
            raise DatabaseNotConfiguredError(
                f"Database not configured: Flask-SQLAlchemy-Lite has no engine"
                f" {name!r} in {key} (configured: {configured})."
            )
        return t.cast("AnyEngine", engines[name])


def _not_configured(bind: str | None, bind_names: list[str]) -> str:
    known = ", ".join(repr(n) for n in bind_names) or "none"
    return f"Database not configured: no bind {bind!r} (binds: {known})."
