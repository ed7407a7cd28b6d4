"""The ways a search is read (set or per-row probe, which index leads the count, custom plans on
PostgreSQL) are choices for speed: each must return exactly the brute-force rows in the
documented order. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest

from search_testdata import matches, ordered

from bingan_search import results, service
from bingan_search.query import Cond, Ctx, Group, Not, compile_node, driver
from bingan_search.settings import SearchSettings


def run(rt, actor, node, *, page=1, page_size=5, sort=None, desc=None):
    return service.combined(rt, node, service.Paging(page, page_size, sort, desc), actor=actor,
                            via="test")


@pytest.fixture
def small_limit(rt):
    st = rt.settings(SearchSettings)
    old = st.count_limit
    st.count_limit = 12
    yield 12
    st.count_limit = old


def _pages(rt, actor, tree, sort="discharged_at", desc=True):
    """Every page of a result (5 rows each, at most count_limit rows)."""
    got, p = [], 1
    while True:
        res = run(rt, actor, tree, page=p, sort=sort, desc=desc)
        got += [h.admission_no for h in res.hits]
        if p >= res.pages:
            return res, got
        p += 1


@pytest.mark.parametrize("ratio", [1e-9, 1e9])
def test_set_or_probe_give_the_same_pages(rt, recs, cli_actor, small_limit, monkeypatch, ratio):
    """A large result of one semi-join is read in sort order against its set (ratio tiny:
    threshold 0 ... every set is "large", probes) or by probes (ratio huge: sets)."""
    monkeypatch.setitem(results.PROBE_COST_RATIO, rt.engine.dialect.name, ratio)
    trees = [Cond("diagnosis_code", "prefix", "K"), Cond("sex", "eq", "F"),
             Cond("patient_name", "prefix", "王"), Cond("name_pinyin", "prefix", "z"),
             Cond("diagnosis_name", "contains", "阑尾"),
             Cond("signer_any", "in", ["D0001", "D0002"])]
    st = rt.settings(SearchSettings)
    for tree in trees:
        matching = [r for r in recs if matches(r, tree)]
        assert len(matching) >= 4, tree
        st.count_limit = len(matching) // 2  # capped: read in sort order
        for sort, desc in (("discharged_at", True), ("discharged_at", False),
                           ("admission_no", True)):
            got = []
            for p in (1, 2):
                res = run(rt, cli_actor, tree, page=p, page_size=2, sort=sort, desc=desc)
                assert res.total_capped and res.total == st.count_limit
                got += [h.admission_no for h in res.hits]
            assert got == [r.admission_no for r in ordered(matching, sort, desc)][:4], \
                (tree, sort, desc, ratio)


def test_probe_threshold_grows_with_the_data_and_the_page(rt, recs):
    with rt.sessions() as s:
        n = results.admissions_estimate(s)
        assert n == max(r.id for r in recs)
        small, deep = results.probe_threshold(s, 50), results.probe_threshold(s, 500)
    assert 0 < small < deep


def test_broad_condition_next_to_an_indexed_one_is_probed(rt, recs, cli_actor, small_limit):
    """A sex (broad) next to an age range: the count is led by the admission index and the
    sex is probed per row (no driver); counts and pages still match brute force, capped or
    not."""
    broad_led = Group("and", [Cond("age_years", "between", [20, 70]), Cond("sex", "eq", "F"),
                              Cond("payment_method", "in", ["1", "2", "3"])])
    assert driver(Ctx(dt.timezone.utc), broad_led) is None
    narrow = Group("and", [Cond("age_years", "between", [20, 70]),
                           Cond("signer_attending", "eq", "D0001")])
    assert driver(Ctx(dt.timezone.utc), narrow) is not None  # a narrow condition still drives
    st = rt.settings(SearchSettings)
    seen = set()
    for tree in (broad_led, narrow, Group("and", [Cond("age_years", "ge", 30),
                                                  Not(Cond("sex", "eq", "M"))])):
        matching = [r for r in recs if matches(r, tree)]
        for limit in (6, 1000):
            st.count_limit = limit
            for sort, desc in (("discharged_at", True), ("age", False), ("name", True)):
                res, got = _pages(rt, cli_actor, tree, sort, desc)
                want = [r.admission_no for r in ordered(matching, sort, desc)]
                assert res.total == min(len(want), limit)
                assert res.total_capped == (len(want) > limit)
                assert got == want[:res.pages * 5], (tree, sort, desc, limit)
                seen.add(res.total_capped)
    assert seen == {True, False}


def test_short_integer_ranges_compile_to_a_list(rt, recs, cli_actor):
    from sqlalchemy.dialects import sqlite

    def sql(node):
        return str(compile_node(Ctx(dt.timezone.utc), node).compile(dialect=sqlite.dialect()))

    assert " IN " in sql(Cond("age_years", "between", [60, 70]))
    assert " IN " not in sql(Cond("age_years", "between", [0, 120]))
    assert " IN " not in sql(Cond("total_cost", "between", [1, 3]))  # not whole numbers
    for lo, hi in ((60, 70), (0, 120), (35, 35)):
        tree = Cond("age_years", "between", [lo, hi])
        res = run(rt, cli_actor, tree, page_size=500)
        assert {h.admission_no for h in res.hits} == \
            {r.admission_no for r in recs if matches(r, tree)}


def test_postgresql_probes_are_fenced_and_plans_custom(rt, recs, cli_actor):
    """On PostgreSQL a fenced probe carries OFFSET 0 (no hashed SubPlan), and a search plans
    its statements for their values (plan_cache_mode in its transaction)."""
    from sqlalchemy import text
    from sqlalchemy.dialects import postgresql

    tree = Group("and", [Cond("age_years", "ge", 1), Cond("sex", "eq", "F")])
    from bingan_search.query import is_broad, probe_broad

    fenced = compile_node(Ctx(dt.timezone.utc, "postgresql", fence=is_broad), tree, correlated=probe_broad(tree))
    plain = compile_node(Ctx(dt.timezone.utc, "postgresql"), tree, correlated=probe_broad(tree))
    assert "OFFSET" in str(fenced.compile(dialect=postgresql.dialect()))
    assert "OFFSET" not in str(plain.compile(dialect=postgresql.dialect()))
    if rt.engine.dialect.name != "postgresql":
        return
    with rt.sessions() as s, s.begin():
        results.run_page(s, tree, page=1, page_size=5, sort="discharged_at", desc=True,
                         count_limit=100, tz=rt.tz)
        assert s.execute(text("SHOW plan_cache_mode")).scalar() == "force_custom_plan"
    with rt.sessions() as s, s.begin():  # SET LOCAL: only the search's own transaction
        assert s.execute(text("SHOW plan_cache_mode")).scalar() == "auto"


def test_anchored_results_are_collected_once_in_the_documented_order(rt, recs, cli_actor):
    """A date range or department with no driving semi-join: the count collects ids and sort
    keys in one read and sorts them itself (empty values last, ties by id); every sort must
    give the brute-force order, within the limit and beyond it."""
    from sqlalchemy import event

    trees = [Group("and", [Cond("discharged_at", "between", ["2023-01-01", "2024-12-31"]),
                           Not(Cond("discharge_way", "eq", "1"))]),
             Group("and", [Cond("admit_department", "in", ["1001", "1002"]),
                           Cond("sex", "eq", "F")]),
             Group("and", [Cond("admitted_at", "ge", "2023-01-01"),
                           Group("or", [Cond("diagnosis_code", "prefix", "K35"),
                                        Cond("los_days", "gt", 10)])])]
    assert all(results.indexed_anchor(t) for t in trees)
    st = rt.settings(SearchSettings)
    old = st.count_limit
    statements: list[str] = []

    def grab(conn, cursor, statement, *args):
        if statement.lstrip().upper().startswith("SELECT") and "FROM admission" in statement:
            statements.append(statement)

    event.listen(rt.engine, "before_cursor_execute", grab)
    try:
        for tree in trees:
            matching = [r for r in recs if matches(r, tree)]
            assert len(matching) > 6, tree
            for limit in (6, 1000):
                st.count_limit = limit
                for sort in sorted(results.COLLECT_SORTS) + ["name"]:
                    for desc in (True, False):
                        statements.clear()
                        res, got = _pages(rt, cli_actor, tree, sort, desc)
                        want = [r.admission_no for r in ordered(matching, sort, desc)]
                        assert res.total == min(len(want), limit)
                        assert got == want[:res.pages * 5], (tree, sort, desc, limit)
                        if limit == 1000 and sort != "name":
                            # one read of admissions per page (plus the rows shown, whose
                            # page count is a subquery of theirs): no separate count
                            assert not any(x.lstrip().startswith("SELECT count(")
                                           for x in statements), statements
    finally:
        event.remove(rt.engine, "before_cursor_execute", grab)
        st.count_limit = old
