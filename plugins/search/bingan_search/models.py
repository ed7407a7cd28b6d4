"""Tables of the search plugin (prefixed ``search_``).

- ``search_name_key``: every pinyin key of every patient name in use (full pinyin, initials,
  surname in full + given-name initials), for each reading of its heteronym characters, with
  the reading's rank (0: the common reading). Keyed by the
  name, not the patient: the keys are a function of the name, so a rename needs no clean-up
  and 3 million admissions share a few tens of thousands of names.
- ``search_term``: the distinct diagnosis and operation names in use, so "name contains"
  scans this small table instead of millions of diagnosis rows.
- ``search_saved_query``: combined queries saved by a staff member, optionally shared.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, Index, Integer, SmallInteger, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from bingan.core.models import Base, UTCDateTime, utcnow


class SearchNameKey(Base):
    """One pinyin key of one patient name (``zhangsan``, ``zs``, ``zhangs`` ...)."""

    __tablename__ = "search_name_key"
    __table_args__ = (
        Index("search_ix_name_key_key", "key", "name",
              postgresql_ops={"key": "text_pattern_ops"}),
    )

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(256), primary_key=True)
    # how unusual the reading spelled by this key is (``names.key_ranks``; 0: the common
    # one): results found by a common reading are listed first (search_0004)
    rank: Mapped[int] = mapped_column(SmallInteger, default=0, server_default="0")


class SearchTerm(Base):
    """A distinct diagnosis (``dx``) or operation (``op``) name found on front pages."""

    __tablename__ = "search_term"

    kind: Mapped[str] = mapped_column(String(8), primary_key=True)
    text: Mapped[str] = mapped_column(String(128), primary_key=True)


class SavedQuery(Base):
    """A combined query a staff member saved under a name; ``shared`` shows it to everyone."""

    __tablename__ = "search_saved_query"
    __table_args__ = (
        UniqueConstraint("staff_no", "name", name="uq_search_saved_query_owner_name"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    staff_no: Mapped[str] = mapped_column(String(32), index=True)
    name: Mapped[str] = mapped_column(String(64))
    query_json: Mapped[str] = mapped_column(Text)
    shared: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
