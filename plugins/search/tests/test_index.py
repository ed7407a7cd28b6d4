"""The search's own tables follow the records: through admission_upserted (in the caller's
transaction), through reindex / the nightly job after bulk loads, and demo roles."""

from __future__ import annotations

import datetime as dt
import time

from sqlalchemy import func, select, text

from bingan.hooks.types import AdmissionIn, DiagnosisIn, OperationIn, PatientIn

from bingan_search.models import SearchNameKey, SearchTerm

UTC = dt.timezone.utc


def _adm(no: str, mrn: str, name: str, dx: str = "急性阑尾炎") -> AdmissionIn:
    return AdmissionIn(
        patient=PatientIn(mrn=mrn, name=name), admission_no=no, visit_no=1,
        admitted_at=dt.datetime(2024, 1, 2, tzinfo=UTC),
        diagnoses=(DiagnosisIn("K35.800", dx, "main"),),
        operations=(OperationIn("47.0100", "腹腔镜下阑尾切除术"),))


def _terms(rt) -> set[tuple[str, str]]:
    with rt.sessions() as s:
        return set(s.execute(select(SearchTerm.kind, SearchTerm.text)).all())


def _keys(rt, name: str) -> set[str]:
    with rt.sessions() as s:
        return set(s.scalars(select(SearchNameKey.key).where(SearchNameKey.name == name)))


def test_upsert_indexes_in_the_callers_transaction(rt):
    """On SQLite a second connection would wait for the caller's write lock (60 s busy
    timeout) and deadlock it; the hook writes through the caller's own session instead."""
    from bingan.core import records

    t0 = time.monotonic()
    with rt.sessions() as s, s.begin():
        records.upsert_admission(s, rt, _adm("ZY202401000001", "00400001", "单伟"))
        # visible inside the caller's transaction, before the commit
        n = s.scalar(select(func.count()).select_from(SearchNameKey)
                     .where(SearchNameKey.name == "单伟"))
        assert n and n >= 6
    assert time.monotonic() - t0 < 10
    assert {"shanwei", "danwei", "sw", "dw"} <= _keys(rt, "单伟")
    assert {("dx", "急性阑尾炎"), ("op", "腹腔镜下阑尾切除术")} <= _terms(rt)


def test_rolled_back_upsert_leaves_no_keys(rt):
    from bingan.core import records

    try:
        with rt.sessions() as s, s.begin():
            records.upsert_admission(s, rt, _adm("ZY202401000002", "00400002", "仇英", "罕见病甲"))
            raise RuntimeError("connector failed later")
    except RuntimeError:
        pass
    assert _keys(rt, "仇英") == set()
    assert ("dx", "罕见病甲") not in _terms(rt)


def test_reindex_backfills_bulk_loaded_rows(rt, cli_actor):
    """Rows written around upsert_admission (bulk loads) are found after reindex."""
    from bingan.core import records
    from bingan_search import service
    from bingan_search.index import nightly_reindex, reindex

    with rt.sessions() as s, s.begin():
        records.upsert_admission(s, rt, _adm("ZY202401000004", "00400004", "曾乐", "胆囊结石"))
        s.execute(text("DELETE FROM search_name_key"))
        s.execute(text("DELETE FROM search_term"))

    def hits(**kw):
        return service.simple(rt, service.SimpleCriteria(**kw), service.Paging(),
                              actor=cli_actor, via="test").total

    assert hits(name="zengle") == 0 and hits(diagnosis="胆囊") == 0
    counts = reindex(rt)
    assert counts == {"names": 1, "dx": 1, "op": 1}
    assert hits(name="zengle") == 1 and hits(name="cl") == 1 and hits(diagnosis="胆囊") == 1
    assert reindex(rt) == {"names": 0, "dx": 0, "op": 0}  # idempotent
    full = reindex(rt, full=True, analyze=True)
    assert full == {"names": 1, "dx": 1, "op": 1}
    with rt.sessions() as s, s.begin():
        s.execute(text("DELETE FROM search_term"))
    assert nightly_reindex(rt) == {"names": 0, "dx": 1, "op": 1}
    from webutil import events

    assert [e.detail for e in events(rt, "search.reindex")][-1].count('"dx": 1')


def test_demo_grants_search_to_demo_roles(rt):
    from bingan.core.models import Role
    from bingan.core.staff import ensure_builtin_roles

    with rt.sessions() as s, s.begin():
        ensure_builtin_roles(s)
    rt.pm.hook.demo_loaded(rt=rt, admissions=[])
    with rt.sessions() as s:
        perms = {r.name: set(r.permissions) for r in s.scalars(select(Role))}
    assert {"search.use", "search.export"} <= perms["records"]
    assert "search.use" in perms["physician"] and "search.export" not in perms["physician"]
    assert "search.use" not in perms["admin"]
    rt.pm.hook.demo_loaded(rt=rt, admissions=[])  # a second time adds nothing
    with rt.sessions() as s:
        again = {r.name: list(r.permissions) for r in s.scalars(select(Role))}
    assert again["records"].count("search.use") == 1
