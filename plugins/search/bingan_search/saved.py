"""Saved combined queries: each staff member's own, plus those shared with everyone."""

from __future__ import annotations

import datetime as dt

import msgspec
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from bingan_search.models import SavedQuery
from bingan_search.query import Node, QueryError, decode, describe, encode, validate


class SavedOut(msgspec.Struct):
    id: int
    name: str
    owner: str
    shared: bool
    mine: bool
    description: str
    query: Node
    updated_at: dt.datetime


def to_out(row: SavedQuery, staff_no: str) -> SavedOut:
    node = decode(row.query_json)
    return SavedOut(id=row.id, name=row.name, owner=row.staff_no, shared=row.shared,
                    mine=row.staff_no == staff_no, description=describe(node), query=node,
                    updated_at=row.updated_at)


def visible(session: Session, staff_no: str) -> list[SavedQuery]:
    """Own queries first, then shared ones of others, by name."""
    rows = session.scalars(select(SavedQuery).where(
        or_(SavedQuery.staff_no == staff_no, SavedQuery.shared.is_(True)))).all()
    return sorted(rows, key=lambda r: (r.staff_no != staff_no, r.name, r.id))


def get(session: Session, query_id: int, staff_no: str) -> SavedQuery:
    row = session.get(SavedQuery, query_id)
    if row is None or (row.staff_no != staff_no and not row.shared):
        raise QueryError(f"没有编号为 {query_id} 的已存查询")
    return row


def save(session: Session, staff_no: str, name: str, node: Node, shared: bool) -> SavedQuery:
    """Create or replace the caller's query of that name."""
    name = name.strip()
    if not name:
        raise QueryError("请为查询起一个名称")
    if len(name) > 64:
        raise QueryError("查询名称最长 64 个字")
    validate(node)
    row = session.scalar(select(SavedQuery).where(SavedQuery.staff_no == staff_no,
                                                  SavedQuery.name == name))
    if row is None:
        row = SavedQuery(staff_no=staff_no, name=name)
        session.add(row)
    row.query_json, row.shared = encode(node), shared
    session.flush()
    return row


def delete(session: Session, query_id: int, staff_no: str) -> SavedQuery:
    row = session.get(SavedQuery, query_id)
    if row is None or row.staff_no != staff_no:
        raise QueryError("只能删除自己保存的查询")
    session.delete(row)
    session.flush()
    return row
