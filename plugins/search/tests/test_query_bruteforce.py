"""Search correctness against brute force: every field and operator, the simple form, random
combined trees with NOT/OR, sorting and pagination. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from search_testdata import CN, cn_date, matches, ordered

from bingan_search import service
from bingan_search.query import FIELDS, Cond, Group, Not, QueryError
from bingan_search.results import SORTS
from bingan_search.settings import SearchSettings


def run(rt, actor, node, *, page=1, page_size=500, sort=None, desc=None):
    return service.combined(rt, node, service.Paging(page, page_size, sort, desc), actor=actor,
                            via="test")


def found(rt, actor, node) -> set[str]:
    """The admissions a tree selects: compiled and run in one session without the audit
    write (the service path, audited, is covered by the other tests)."""
    from bingan_search.query import validate
    from bingan_search.results import run_page

    validate(node)
    with rt.sessions() as s:
        res = run_page(s, node, page=1, page_size=500, sort="discharged_at", desc=True,
                       count_limit=10000, tz=rt.tz)
    assert not res.total_capped
    nos = {h.admission_no for h in res.hits}
    assert res.total == len(nos)
    return nos


def expected(recs, node) -> set[str]:
    return {r.admission_no for r in recs if matches(r, node)}


def _sample_values(recs, name: str, rng: random.Random) -> list:
    """Values of a field taken from the data (plus one that matches nothing)."""
    vals: list = []
    for r in recs:
        if name in ("mrn", "patient_name", "sex", "admission_no", "ward", "discharge_way",
                    "payment_method", "admit_department", "discharge_department"):
            vals.append({"patient_name": r.name}.get(name, getattr(r, name, None)))
        elif name in ("visit_no", "age_years", "los_days", "total_cost"):
            vals.append(getattr(r, name))
        elif "diagnosis" in name:
            vals += [d[1] if name.endswith("code") else d[2] for d in r.diagnoses]
        elif name.startswith("operation") or name in ("surgeon_no", "anaesthesia"):
            key = {"operation_code": "code", "operation_name": "name",
                   "operation_level": "level", "operation_date": "date"}.get(name, name)
            vals += [o[key] for o in r.operations]
        elif name.startswith("signer_"):
            vals += list(r.signers.values())
    vals = [v for v in vals if v is not None]
    rng.shuffle(vals)
    return vals[:2]


def _conds(recs, rng: random.Random) -> list[Cond]:
    """Conditions for every field and operator, with values from the data."""
    out: list[Cond] = []
    for name, spec in FIELDS.items():
        vals = _sample_values(recs, name, rng)
        for op in spec.ops:
            if op in ("is_null", "not_null"):
                out.append(Cond(name, op))
                continue
            if name == "name_pinyin":
                for v in ("zhang", "z", "dan", "shan", "zengl", "cl", "ouyang", "ZS", "lv"):
                    out.append(Cond(name, op, v))
                continue
            if spec.kind == "date":
                for r in rng.sample(recs, 3):
                    d = cn_date(r.admitted_at) if name != "operation_date" else \
                        (r.operations[0]["date"] if r.operations else cn_date(r.admitted_at))
                    if name == "birth_date":
                        d = r.birth_date or d
                    if op == "between":
                        out.append(Cond(name, op, [str(d), str(d + rng.choice(
                            [__import__("datetime").timedelta(days=k) for k in (0, 3, 40)]))]))
                    else:
                        out.append(Cond(name, op, str(d)))
                continue
            if spec.kind == "bool":
                out += [Cond(name, op, True), Cond(name, op, False)]
                continue
            for v in vals + (["NOPE-0"] if spec.kind in ("text", "code", "staff") else []):
                if op == "in":
                    unknown = [] if isinstance(spec.choices, dict) else ["NOPE-1"]
                    out.append(Cond(name, op, [str(x) for x in vals[:2]] + unknown))
                    break
                if op == "between":
                    lo, hi = sorted([v, vals[-1]])
                    out.append(Cond(name, op, [lo, hi]))
                    continue
                if op == "prefix" and spec.kind == "code":
                    out.append(Cond(name, op, str(v)[:3].lower()))  # lower case is normalized
                    continue
                if op == "prefix":
                    out.append(Cond(name, op, str(v)[:1]))
                    continue
                if op == "contains" and spec.kind in ("dxname", "opname", "text"):
                    out.append(Cond(name, op, str(v)[1:3] or str(v)))
                    continue
                out.append(Cond(name, op, v if spec.kind in ("int", "number") else str(v)))
    return out


def test_every_field_and_operator_matches_brute_force(rt, recs, cli_actor):
    rng = random.Random(5)
    conds = _conds(recs, rng)
    assert {c.field for c in conds} == set(FIELDS)  # nothing left out
    nonempty = 0
    negated = set()
    for c in conds:
        want = expected(recs, c)
        assert found(rt, cli_actor, c) == want, c
        nonempty += bool(want)
        if (c.field, c.op) not in negated:  # NOT is the complement (two-valued logic)
            negated.add((c.field, c.op))
            assert found(rt, cli_actor, Not(c)) == {r.admission_no for r in recs} - want, c
    assert nonempty > len(conds) * 0.6  # the values really select something


def _like_wildcards_are_literal(rt, recs, cli_actor):
    both = {r.admission_no for r in recs if any("_100%" in d[2] for d in r.diagnoses)}
    assert both  # the data has a name with % and _
    assert found(rt, cli_actor, Cond("diagnosis_name", "contains", "_100%")) == both
    assert found(rt, cli_actor, Cond("diagnosis_name", "contains", "跌倒%")) == set()
    assert found(rt, cli_actor, Cond("patient_name", "prefix", "%")) == set()


def _random_tree(rng: random.Random, pool: list[Cond], depth: int = 0):
    r = rng.random()
    if depth >= 3 or r < 0.4:
        return rng.choice(pool)
    if r < 0.55:
        return Not(_random_tree(rng, pool, depth + 1))
    items = [_random_tree(rng, pool, depth + 1) for _ in range(rng.randint(2, 3))]
    return Group(rng.choice(["and", "or"]), items)


def test_random_combined_trees_match_brute_force(rt, recs, cli_actor):
    rng = random.Random(17)
    pool = _conds(recs, rng)
    checked = set()
    for _ in range(60):
        tree = _random_tree(rng, pool)
        want = expected(recs, tree)
        assert found(rt, cli_actor, tree) == want, tree
        checked.add(len(want) > 0)
    assert checked == {True, False}


def test_sort_and_pages_follow_the_documented_order(rt, recs, cli_actor):
    tree = Group("or", [Cond("sex", "eq", "F"), Cond("discharge_way", "is_null")])
    matching = [r for r in recs if matches(r, tree)]
    for sort, desc in ((s, d) for s in SORTS for d in (False, True)):
        order = [r.admission_no for r in ordered(matching, sort, desc)]
        size = 7
        pages = -(-len(order) // size)
        got: list[str] = []
        for p in range(1, pages + 1):
            res = run(rt, cli_actor, tree, page=p, page_size=size, sort=sort, desc=desc)
            assert (res.total, res.pages, res.sort, res.desc) == (len(order), pages, sort, desc)
            got += [h.admission_no for h in res.hits]
        assert got == order, (sort, desc)


def test_large_results_read_in_index_order_give_the_same_pages(rt, recs, cli_actor):
    """Beyond count_limit a page is read by walking the sort index (coalesce-hidden
    condition) or by the date range that bounds it; every way must return exactly the rows
    of the documented order."""
    from bingan_search.results import choose_mode

    assert {choose_mode(True, "discharged_at", set()), choose_mode(False, "mrn", set()),
            choose_mode(True, "admitted_at", {"admitted_at"}),
            choose_mode(True, "discharged_at", {"admitted_at"})} == {"ordered", "fenced",
                                                                    "natural"}

    st = rt.settings(SearchSettings)
    old = st.count_limit
    st.count_limit = 12
    trees = [Group("or", [Cond("sex", "eq", "F"), Cond("discharge_way", "is_null")]),
             Cond("diagnosis_code", "prefix", "K"), Group("or", [Cond("name_pinyin", "prefix", "z"),
                                   Cond("name_pinyin", "prefix", "l")]),
             Not(Cond("signer_attending", "eq", "D0001")),
             # bounded by a date: natural when sorted by that date, collected otherwise
             Group("and", [Cond("admitted_at", "ge", "2023-01-01"),
                           Cond("visit_no", "le", 2)]),
             Group("and", [Cond("discharged_at", "between", ["2023-01-01", "2025-12-31"]),
                           Not(Cond("sex", "eq", "M"))])]
    try:
        for tree in trees:
            matching = [r for r in recs if matches(r, tree)]
            assert len(matching) > 12
            combos = [(s, True) for s in SORTS] + [("discharged_at", False), ("name", False)]
            for sort, desc in combos:
                order = [r.admission_no for r in ordered(matching, sort, desc)]
                got = []
                for p in (1, 2, 3):
                    res = run(rt, cli_actor, tree, page=p, page_size=5, sort=sort, desc=desc)
                    assert res.total_capped and res.total == 12 and res.pages == 3
                    got += [h.admission_no for h in res.hits]
                assert got == order[:15], (tree, sort, desc)
    finally:
        st.count_limit = old


def test_count_is_capped_and_pages_beyond_refused(rt, recs, cli_actor):

    st = rt.settings(SearchSettings)
    old = st.count_limit
    st.count_limit = 10
    try:
        tree = Cond("visit_no", "ge", 1)
        res = run(rt, cli_actor, tree, page_size=4)
        assert res.total == 10 and res.total_capped and res.pages == 3
        with pytest.raises(QueryError, match="超出范围"):
            run(rt, cli_actor, tree, page=4, page_size=4)
    finally:
        st.count_limit = old


def test_simple_form_dates_and_wildcards_match_brute_force(rt, recs, cli_actor):
    rng = random.Random(3)
    r0 = rng.choice([r for r in recs if r.discharged_at])
    d = cn_date(r0.discharged_at)
    cases = [
        (dict(name="单"), Cond("patient_name", "prefix", "单")),
        (dict(name="dan"), Cond("name_pinyin", "prefix", "dan")),
        (dict(mrn=r0.mrn), Cond("mrn", "eq", r0.mrn)),
        (dict(admission_no=r0.admission_no), Cond("admission_no", "eq", r0.admission_no)),
        (dict(discharged_from=str(d), discharged_to=str(d)),
         Cond("discharged_at", "between", [str(d), str(d)])),
        (dict(admitted_from="2023-03-01"), Cond("admitted_at", "ge", "2023-03-01")),
        (dict(admitted_to="2023-03-01"), Cond("admitted_at", "le", "2023-03-01")),
        (dict(icd="k35"), Cond("diagnosis_code", "prefix", "K35")),
        (dict(icd="K35", main_only=True), Cond("main_diagnosis_code", "prefix", "K35")),
        (dict(icd="i10.X00"), Cond("diagnosis_code", "prefix", "I10.x00")),
        (dict(diagnosis="阑尾"), Cond("diagnosis_name", "contains", "阑尾")),
        (dict(diagnosis="肺炎", main_only=True), Cond("main_diagnosis_name", "contains", "肺炎")),
        (dict(name="z", icd="K", discharged_from="2023-01-01", discharged_to="2023-12-31"),
         Group("and", [Cond("name_pinyin", "prefix", "z"), Cond("diagnosis_code", "prefix", "K"),
                       Cond("discharged_at", "between", ["2023-01-01", "2023-12-31"])])),
    ]
    for form, tree in cases:
        res = service.simple(rt, service.SimpleCriteria(**form), service.Paging(1, 500),
                             actor=cli_actor, via="test")
        want = expected(recs, tree)
        assert {h.admission_no for h in res.hits} == want, form
        assert res.total == len(want)
    assert any(expected(recs, t) for _, t in cases)
    _like_wildcards_are_literal(rt, recs, cli_actor)
    _date_edges_use_china_dates(rt, recs, cli_actor)


def _date_edges_use_china_dates(rt, recs, cli_actor):
    """A stay admitted at 16:00 UTC is admitted the next day in China."""
    import datetime as dt

    late = [r for r in recs if r.admitted_at.hour in (16, 23)]
    assert late
    r = late[0]
    china_day = r.admitted_at.astimezone(CN).date()
    assert china_day != r.admitted_at.date()
    res = found(rt, cli_actor, Cond("admitted_at", "eq", str(china_day)))
    assert r.admission_no in res
    res = found(rt, cli_actor, Cond("admitted_at", "eq", str(r.admitted_at.date())))
    assert r.admission_no not in res
    assert found(rt, cli_actor, Cond("admitted_at", "le", str(china_day - dt.timedelta(days=1)))
                 ).isdisjoint({r.admission_no})


BAD = [
    (Cond("nope", "eq", "1"), "不能按字段"),
    (Cond("mrn", "contains", "1"), "不支持运算"),
    (Cond("age_years", "gt", "abc"), "应为数字"),
    (Cond("admitted_at", "eq", "2023/01/01"), "日期格式"),
    (Cond("admitted_at", "between", ["2023-02-01", "2023-01-01"]), "早于"),
    (Cond("discharge_way", "eq", "7"), "没有代码"),
    (Cond("name_pinyin", "prefix", "张"), "拼音"),
    (Cond("mrn", "eq", "  "), "不能为空"),
    (Cond("visit_no", "between", [3]), "两个值"),
    (Group("and", []), "至少填写一个"),
]


def test_bad_queries_are_refused_and_audited(rt, cli_actor):
    from sqlalchemy import select

    from bingan.core.models import AuditEvent

    for node, message in BAD:
        with pytest.raises(QueryError, match=message):
            run(rt, cli_actor, node)
        with rt.sessions() as s:
            ev = s.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc())).first()
        assert (ev.action, ev.outcome, ev.staff_no) == ("search.combined", "failed", "T001")
        assert message in ev.detail


def test_deep_and_large_trees_are_refused(rt, cli_actor):
    node = Cond("visit_no", "eq", 1)
    for _ in range(10):
        node = Not(node)
    with pytest.raises(QueryError, match="嵌套过深"):
        run(rt, cli_actor, node)
    with pytest.raises(QueryError, match="条件过多"):
        run(rt, cli_actor, Group("or", [Cond("visit_no", "eq", i) for i in range(51)]))


def test_counts_drive_from_the_condition_and_count_each_admission_once(rt, recs, cli_actor):
    """The count streams from a semi-join (query.driver); an admission with two matching
    diagnoses, or a patient with several stays, is counted right."""
    from bingan_search.query import Ctx, driver

    twice = [r for r in recs if sum(d[1].startswith("K3") for d in r.diagnoses) >= 2]
    assert twice  # the data has admissions with two matching diagnoses
    for tree in (Cond("diagnosis_code", "prefix", "K3"),
                 Group("and", [Cond("diagnosis_code", "prefix", "K3"),
                               Cond("sex", "eq", "F")]),
                 Group("and", [Cond("name_pinyin", "prefix", "z"), Cond("visit_no", "ge", 2)]),
                 Cond("signer_any", "in", ["D0001", "D0002"])):
        assert driver(Ctx(dt.timezone.utc), tree) is not None
        res = run(rt, cli_actor, tree, page_size=500)
        assert res.total == len(expected(recs, tree)) == len(res.hits)
    no_drive = Group("and", [Cond("admission_no", "eq", recs[0].admission_no),
                             Cond("diagnosis_code", "prefix", "K")])
    assert driver(Ctx(dt.timezone.utc), no_drive) is None
    assert run(rt, cli_actor, no_drive).total == len(expected(recs, no_drive))


def test_count_falls_back_when_one_admission_matches_many_times(rt, cli_actor):
    """The bounded count reads 3 x (limit + 1) diagnosis rows; when they are all one
    admission's, the exact count still comes out."""
    import datetime as dt

    from bingan.core import records
    from bingan.hooks.types import AdmissionIn, DiagnosisIn, PatientIn

    with rt.sessions() as s, s.begin():
        for n, codes in ((1, 12), (2, 1)):
            records.upsert_admission(s, rt, AdmissionIn(
                patient=PatientIn(mrn=f"0070000{n}", name="测试"), admission_no=f"ZY20240000070{n}",
                visit_no=1, admitted_at=dt.datetime(2024, 1, n, tzinfo=dt.timezone.utc),
                diagnoses=tuple(DiagnosisIn(f"K35.{i:02d}", f"阑尾炎{i}", "main" if i == 0
                                            else "other") for i in range(codes))))
    st = rt.settings(SearchSettings)
    old = st.count_limit
    st.count_limit = 2  # reads at most 9 rows, all of the first admission
    try:
        res = run(rt, cli_actor, Cond("diagnosis_code", "prefix", "K35"))
        assert (res.total, res.total_capped) == (2, False)
        assert {h.admission_no for h in res.hits} == {"ZY202400000701", "ZY202400000702"}
    finally:
        st.count_limit = old


def test_or_of_sets_and_sets_under_or_compile_as_designed(rt, recs, cli_actor):
    """An OR of diagnosis/operation conditions is one UNION set; with a date range to lead,
    sets under OR/NOT become EXISTS probes. Both give the brute-force answer."""
    from sqlalchemy.dialects import sqlite

    from bingan_search.query import Ctx, compile_node, default_probe

    any_of = Group("or", [Cond("diagnosis_code", "prefix", "K35"),
                          Cond("operation_code", "prefix", "81")])
    anchored = Group("and", [Cond("admitted_at", "ge", "2023-01-01"), any_of,
                             Not(Cond("signer_any", "eq", "D0003"))])
    for tree, marker in ((any_of, "UNION ALL"), (anchored, "EXISTS")):
        sql = str(compile_node(Ctx(dt.timezone.utc), tree, correlated=default_probe(tree))
                  .compile(dialect=sqlite.dialect()))
        assert marker in sql, sql
        res = run(rt, cli_actor, tree, page_size=500)
        assert {h.admission_no for h in res.hits} == expected(recs, tree)
