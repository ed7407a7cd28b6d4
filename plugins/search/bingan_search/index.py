"""Keeping the search's own tables current: pinyin keys of names, diagnosis/operation terms.

``admission_upserted`` gives the caller's session, inside its transaction (after a flush,
before the commit): the keys and terms are written there, so they commit or roll back with the
admission. ``reindex`` backfills everything that bulk loads wrote around ``upsert_admission``; a
nightly job runs it too.
"""

from __future__ import annotations

from typing import Callable, Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from bingan.core.models import Diagnosis, Operation, Patient
from bingan_search.models import SearchNameKey, SearchTerm
from bingan_search.names import RANK_MAX, key_ranks
from bingan.hooks.types import Runtime

CHUNK = 500


def _insert_ignore(session: Session, table, rows: list[dict]) -> None:
    if not rows:
        return
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    session.execute(insert(table).on_conflict_do_nothing(), rows)


def _chunks(items: list, n: int = CHUNK) -> Iterable[list]:
    for i in range(0, len(items), n):
        yield items[i:i + n]


def ensure_names(session: Session, names: Iterable[str]) -> int:
    """Store the pinyin keys of every name not indexed yet; returns how many names were new."""
    wanted = sorted({n for n in names if n is not None})
    new = 0
    for part in _chunks(wanted):
        have = set(session.scalars(select(SearchNameKey.name).distinct()
                                   .where(SearchNameKey.name.in_(part))))
        rows = []
        for n in part:
            if n not in have:
                new += 1
                # a name without any key still gets a row, so it counts as indexed
                ranks = key_ranks(n) or {"": 0}
                rows.extend({"name": n, "key": k, "rank": min(r, RANK_MAX)}
                            for k, r in sorted(ranks.items()))
        _insert_ignore(session, SearchNameKey.__table__, rows)
    return new


def ensure_terms(session: Session, kind: str, texts: Iterable[str]) -> int:
    """Store diagnosis (``dx``) or operation (``op``) names not known yet; returns the count."""
    wanted = sorted({t for t in texts if t is not None})
    new = 0
    for part in _chunks(wanted):
        have = set(session.scalars(select(SearchTerm.text).where(SearchTerm.kind == kind,
                                                                 SearchTerm.text.in_(part))))
        rows = [{"kind": kind, "text": t} for t in part if t not in have]
        new += len(rows)
        _insert_ignore(session, SearchTerm.__table__, rows)
    return new


def index_admission(session: Session, admission_id: int, patient_name: str) -> None:
    """Index the name and the diagnosis/operation names of one admission (same transaction)."""
    ensure_names(session, [patient_name])
    ensure_terms(session, "dx", session.scalars(
        select(Diagnosis.name).where(Diagnosis.admission_id == admission_id)))
    ensure_terms(session, "op", session.scalars(
        select(Operation.name).where(Operation.admission_id == admission_id)))


def on_admission_upserted(session: Session, admission_id: int, patient_name: str) -> None:
    """The ``admission_upserted`` hook: index in the caller's transaction."""
    index_admission(session, admission_id, patient_name)


def _missing(session: Session, column, kind: str | None, batch: int) -> list[str]:
    if kind is None:
        known = select(SearchNameKey.name).where(SearchNameKey.name == column)
    else:
        known = select(SearchTerm.text).where(SearchTerm.kind == kind, SearchTerm.text == column)
    q = select(column).distinct().where(~known.exists()).limit(batch)
    return list(session.scalars(q))


def reindex(rt, *, full: bool = False, analyze: bool = False,
            progress: Callable[[str, int], None] | None = None) -> dict[str, int]:
    """Add keys and terms for every name in use that has none (``full``: rebuild all first).

    Works in batches, each its own transaction, so a long run does not hold the write lock.
    ``analyze`` refreshes the planner statistics afterwards (recommended after bulk loads).
    """
    counts = {"names": 0, "dx": 0, "op": 0}
    if full:
        with rt.sessions() as s, s.begin():
            s.execute(SearchNameKey.__table__.delete())
            s.execute(SearchTerm.__table__.delete())
    for label, column, kind in (("names", Patient.name, None), ("dx", Diagnosis.name, "dx"),
                                ("op", Operation.name, "op")):
        while True:
            with rt.sessions() as s, s.begin():
                todo = _missing(s, column, kind, 5000)
                if not todo:
                    break
                n = ensure_names(s, todo) if kind is None else ensure_terms(s, kind, todo)
                counts[label] += n
            if n == 0:  # nothing could be added: do not loop forever
                break
            if progress:
                progress(label, counts[label])
    if analyze:
        with rt.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
    return counts


def nightly_reindex(rt: Runtime) -> dict[str, int]:
    """Scheduled job: catch up with rows written around ``upsert_admission`` (bulk loads)."""
    from bingan.core import audit

    counts = reindex(rt)
    if any(counts.values()):
        with rt.sessions() as s, s.begin():
            audit.record(s, rt, "search.reindex", actor=audit.Actor(staff_no="system"),
                         detail={**counts, "job": True})
    return counts
