"""Tables of the warehouse plugin: warehouses (name, building, floor), shelves (row, column,
level, capacity in boxes), boxes (box number = its barcode, capacity in records), the record
in each box (one box per record), every physical movement (for the monthly statistics) and
borrowing of paper records."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Date, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from bingan.core.models import Base, UTCDateTime, utcnow


class Warehouse(Base):
    """A store room (库房): its number, name, building and floor."""

    __tablename__ = "warehouse_warehouse"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    name: Mapped[str] = mapped_column(String(64))
    building: Mapped[str] = mapped_column(String(64), default="")
    floor: Mapped[str] = mapped_column(String(16), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Shelf(Base):
    """One level of one shelf column in a row: code ``<warehouse>-<row>-<column>-<level>``
    (its barcode)."""

    __tablename__ = "warehouse_shelf"
    __table_args__ = (UniqueConstraint("warehouse_id", "row", "col", "level"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    warehouse_id: Mapped[int] = mapped_column(ForeignKey("warehouse_warehouse.id"), index=True)
    row: Mapped[int] = mapped_column(Integer)
    col: Mapped[int] = mapped_column(Integer)
    level: Mapped[int] = mapped_column(Integer)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    capacity: Mapped[int] = mapped_column(Integer)  # boxes
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Box(Base):
    """A record box: its number is its barcode; on a shelf or not yet shelved."""

    __tablename__ = "warehouse_box"

    id: Mapped[int] = mapped_column(primary_key=True)
    box_no: Mapped[str] = mapped_column(String(32), unique=True)
    shelf_id: Mapped[int | None] = mapped_column(ForeignKey("warehouse_shelf.id"), index=True)
    capacity: Mapped[int] = mapped_column(Integer)  # records
    note: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class BoxedRecord(Base):
    """The paper record of one admission in a box, at a position."""

    __tablename__ = "warehouse_boxed"
    __table_args__ = (Index("ix_warehouse_boxed_box", "box_id", "position"),)

    admission_id: Mapped[int] = mapped_column(ForeignKey("admission.id"), primary_key=True)
    box_id: Mapped[int] = mapped_column(ForeignKey("warehouse_box.id"))
    position: Mapped[int] = mapped_column(Integer)
    boxed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    boxed_by: Mapped[str | None] = mapped_column(String(32))


class Movement(Base):
    """A physical movement: a record boxed / unboxed / lent / returned, a box shelved or
    moved. Append-only; the monthly statistics count these."""

    __tablename__ = "warehouse_movement"
    __table_args__ = (Index("ix_warehouse_movement_at", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    admission_id: Mapped[int | None] = mapped_column(ForeignKey("admission.id"), index=True)
    box_id: Mapped[int | None] = mapped_column(ForeignKey("warehouse_box.id"))
    from_shelf_id: Mapped[int | None] = mapped_column(ForeignKey("warehouse_shelf.id"))
    to_shelf_id: Mapped[int | None] = mapped_column(ForeignKey("warehouse_shelf.id"))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    staff_no: Mapped[str | None] = mapped_column(String(32))
    note: Mapped[str] = mapped_column(String(200), default="")


class Loan(Base):
    """Borrowing the paper record: requested by a staff member (or registered by the record
    room), lent, returned; due back on a date, reminded when overdue."""

    __tablename__ = "warehouse_loan"
    __table_args__ = (Index("ix_warehouse_loan_status", "status", "due_back"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    admission_id: Mapped[int] = mapped_column(ForeignKey("admission.id"), index=True)
    status: Mapped[str] = mapped_column(String(16))  # requested lent returned rejected cancelled
    borrower_no: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(String(200))
    due_back: Mapped[dt.date] = mapped_column(Date)
    requested_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    lent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    lent_by: Mapped[str | None] = mapped_column(String(32))
    returned_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    returned_to: Mapped[str | None] = mapped_column(String(32))
    answer: Mapped[str] = mapped_column(String(200), default="")
    reminded_on: Mapped[dt.date | None] = mapped_column(Date)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
