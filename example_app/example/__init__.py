"""A small staff directory, set up the way most Flask apps are: an app factory,
extensions created at module level and bound in ``create_app``."""

from __future__ import annotations

import os
from pathlib import Path

import click
import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase

from flask_migrate_ext import Migrate

HERE = Path(__file__).resolve().parent


class Base(DeclarativeBase):
    # Named constraints: autogenerate and batch mode can only alter or drop a
    # constraint they can name, and each backend invents different names.
    metadata = sa.MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


db = SQLAlchemy(model_class=Base)
migrate = Migrate()


class Config:
    # The migrations live beside the package, whatever the working directory.
    MIGRATIONS = os.fspath(HERE.parent / "migrations")
    SQLALCHEMY_DATABASE_URI = os.environ.get(
        "EXAMPLE_DATABASE_URL", f"sqlite:///{HERE.parent / 'instance' / 'example.db'}"
    )


def create_app(config: type[Config] = Config) -> Flask:
    app = Flask(__name__)
    app.config.from_object(config)
    db.init_app(app)
    migrate.init_app(app, db, directory=app.config["MIGRATIONS"])

    from . import models  # noqa: F401  (registers the models' tables)

    @app.get("/departments")
    def departments() -> list[dict[str, object]]:
        rows = db.session.scalars(db.select(models.Department)).all()
        return [
            {"name": d.name, "employees": [e.full_name for e in d.employees]}
            for d in rows
        ]

    @app.cli.command("staff")
    def staff_command() -> None:
        """List every employee, by department."""
        query = (
            db.select(models.Employee)
            .join(models.Department)
            .order_by(models.Department.name, models.Employee.id)
        )
        for e in db.session.scalars(query):
            email = f" <{e.email}>" if e.email else ""
            click.echo(f"{e.department.name}: {e.full_name}{email}, user {e.username}")

    return app
