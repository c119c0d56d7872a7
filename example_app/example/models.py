"""Models of the example app. Edit them, then run ``flask db migrate``."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import relationship

from . import db


class Department(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(80), unique=True)
    employees: Mapped[list[Employee]] = relationship(back_populates="department")


class Employee(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    full_name: Mapped[str] = mapped_column(sa.String(100))
    username: Mapped[str] = mapped_column(sa.String(50), unique=True)
    email: Mapped[str | None] = mapped_column(sa.String(120))
    department_id: Mapped[int] = mapped_column(sa.ForeignKey("department.id"))
    department: Mapped[Department] = relationship(back_populates="employees")
