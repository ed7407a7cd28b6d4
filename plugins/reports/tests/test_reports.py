"""The report registry and its page: every registered report is listed by area to those who
may run it, filtered, charted, exported to Excel with typed cells and a totals row; bad
parameters are a clear 400; each role's dashboard comes from the same registry."""

from __future__ import annotations

import datetime as dt
import io
import random

import openpyxl
import pytest

from bingan.core import audit
from bingan.core.staff import ensure_builtin_roles
from bingan.hooks.types import ReportChart, ReportColumn, ReportParams, ReportSpec

from bingan_reports import registry
from webutil import login, make_staff, web_client

CN = dt.timezone(dt.timedelta(hours=8))


def test_hook_register_reports(rt):
    reports = registry.all_reports(rt)
    # every plugin that owns figures registers its own (all installed plugins are enabled)
    for key in ("core.audit", "capture.production", "qc.pass_rate", "reading.activity",
                "reading.mine", "copying.copies", "recovery.rate", "deathcase.progress"):
        assert key in reports, key
    for spec in reports.values():
        keys = [c.key for c in spec.columns]
        assert len(keys) == len(set(keys)), spec.key
        if spec.chart:
            assert {spec.chart.x, *spec.chart.series, *spec.chart.right} <= set(keys), spec.key
    # and each one answers over an empty database
    with rt.sessions() as s:
        for spec in reports.values():
            p = ReportParams(dt.date(2026, 11, 1), dt.date(2026, 11, 30), rt.tz,
                             group=spec.groups[0] if spec.groups else "", staff=None)
            if spec.permission is None:
                continue  # "mine" reports need the asking staff member
            rows = spec.query(s, rt, p)
            assert all(set(r) >= {c.key for c in spec.columns} for r in rows), spec.key


def _spec(rows):
    return ReportSpec(
        key="t.x", area="生产", title="测试", query=lambda s, rt, p: rows, permission=None,
        columns=(ReportColumn("period", "日期", "period", total="none"),
                 ReportColumn("n", "数量"), ReportColumn("ok", "合格"),
                 ReportColumn("rate", "合格率", "percent", total="ratio", ratio=("ok", "n")),
                 ReportColumn("fee", "金额", "money"), ReportColumn("who", "备注", "text",
                                                                   total="none")),
        chart=ReportChart("bar", "period", ("n",), ("rate",)))


def test_totals_and_workbook_types():
    p = ReportParams(dt.date(2026, 11, 1), dt.date(2026, 11, 30), CN, group="week")
    assert p.buckets()[0] == dt.date(2026, 10, 26) and p.buckets()[-1] == dt.date(2026, 11, 30)
    assert len(p.buckets()) == 6 and p.bucket_label(dt.date(2026, 11, 30)) == "2026年第49周"
    rows = [{"period": dt.date(2026, 11, 2), "n": 3, "ok": 2, "rate": 66.7, "fee": 1.5,
             "who": "=HYPERLINK(1)"},
            {"period": dt.date(2026, 11, 9), "n": 1, "ok": 1, "rate": 100.0, "fee": 2.25,
             "who": None}]
    spec = _spec(rows)
    res = registry.run(None, None, spec, p)
    assert res.total == {"period": "合计", "n": 4, "ok": 3, "rate": 75.0, "fee": 3.75}
    wb = openpyxl.load_workbook(io.BytesIO(registry.workbook(res, "示例医院", "全院")))
    ws = wb.active
    assert ws["A1"].value == "示例医院 测试"
    assert [c.value for c in ws[4]] == ["日期", "数量", "合格", "合格率（%）", "金额", "备注"]
    r1 = [c for c in ws[5]]
    assert isinstance(r1[0].value, dt.datetime) and r1[0].value.date() == dt.date(2026, 11, 2)
    assert r1[0].number_format == "yyyy-mm-dd"
    assert [type(c.value) for c in r1[1:5]] == [int, int, float, float]
    assert r1[5].value == "=HYPERLINK(1)" and r1[5].data_type == "s"  # text, not a formula
    tot = [c.value for c in ws[7]]
    assert tot[:5] == ["合计", 4, 3, 75.0, 3.75] and ws["A7"].font.b
    # months are dates too, shown as months
    pm = ReportParams(dt.date(2026, 1, 1), dt.date(2026, 3, 31), CN, group="month")
    res = registry.run(None, None, _spec([{"period": dt.date(2026, 2, 1), "n": 1, "ok": 0,
                                           "rate": 0.0, "fee": 0, "who": ""}]), pm)
    ws = openpyxl.load_workbook(io.BytesIO(registry.workbook(res, "院", "全院"))).active
    assert ws["A5"].number_format == "yyyy-mm" and ws["A5"].value == dt.datetime(2026, 2, 1)
    assert ws["D7"].value is None or ws["D7"].value == 0  # 0 of 1: a rate of 0


def test_parameters_are_checked():
    spec = _spec([])
    with pytest.raises(registry.ReportError, match="早于"):
        registry.parse_params(spec, CN, None, start="2026-12-01", end="2026-11-01")
    with pytest.raises(registry.ReportError, match="年-月-日"):
        registry.parse_params(spec, CN, None, start="2026/13/01")
    with pytest.raises(registry.ReportError, match="不能超过"):
        registry.parse_params(spec, CN, None, start="2020-01-01", end="2026-01-01")
    with pytest.raises(registry.ReportError, match="分组"):
        registry.parse_params(spec, CN, None, group="department")
    p = registry.parse_params(spec, CN, None, today=dt.date(2026, 12, 7))
    assert (p.start, p.end, p.group) == (dt.date(2026, 11, 8), dt.date(2026, 12, 7), "day")


def _events(rt):
    """Audit events over two weeks by three people; returns what was written."""
    rng = random.Random(17)
    kinds = [("record.view", "ok", "view"), ("record.view", "denied", "denied"),
             ("record.view", "failed", None), ("access.view", "allow", None),
             ("access.export", "deny", "denied"), ("audit.export", "ok", "export"),
             ("audit.search", "ok", None)]
    out = []
    with rt.sessions() as s, s.begin():
        for _ in range(90):
            who = rng.choice(["AUD1", "PHY1", "PHY2"])
            action, outcome, kind = rng.choice(kinds)
            ts = dt.datetime(2026, 11, 1, tzinfo=CN) + dt.timedelta(minutes=rng.randint(0, 20160))
            audit.record(s, rt, action, actor=audit.Actor(staff_no=who), outcome=outcome, ts=ts)
            out.append((who, ts, kind))
    return out


def test_audit_report_matches_a_brute_force_count_and_exports(rt):
    make_staff(rt, "AUD1", ["auditor"], name="审计员甲", department="9001")
    make_staff(rt, "PHY1", ["physician"], name="医师甲", department="1001")
    make_staff(rt, "PHY2", ["physician"], name="医师乙", department="2001")
    events = _events(rt)
    with web_client(rt) as c:
        assert login(c, "AUD1").status_code in (302, 303)
        r = c.get("/api/reports/core.audit", params={
            "start": "2026-11-01", "end": "2026-11-14", "group": "staff"})
        assert r.status_code == 200, r.text
        got = {row["period"]: row for row in r.json()["rows"]}
        for who, name in (("PHY1", "医师甲"), ("PHY2", "医师乙"), ("AUD1", "审计员甲")):
            mine = [k for w, t, k in events if w == who and t.date() <= dt.date(2026, 11, 14)]
            row = got[f"{name}（{who}）"]
            for k in ("denied", "export", "view"):
                assert row[k] == mine.count(k), (who, k)
            assert row["events"] == len(mine)
        # by day, one department (PHY1's)
        r = c.get("/api/reports/core.audit", params={
            "start": "2026-11-03", "end": "2026-11-05", "group": "day", "department": "1001"})
        rows = r.json()["rows"]
        assert [x["period"] for x in rows] == ["2026-11-03", "2026-11-04", "2026-11-05"]
        for x in rows:
            day = dt.date.fromisoformat(x["period"])
            assert x["denied"] == sum(1 for w, t, k in events
                                      if w == "PHY1" and t.date() == day and k == "denied")
        assert r.json()["chart"]["categories"] == ["2026-11-03", "2026-11-04", "2026-11-05"]
        # the page and the workbook show the same figures
        page = c.get("/reports/view/core.audit", params={"start": "2026-11-01",
                                                         "end": "2026-11-14", "group": "day"})
        assert page.status_code == 200 and 'id="rp-chart"' in page.text
        x = c.get("/reports/view/core.audit/xlsx", params={"start": "2026-11-01",
                                                           "end": "2026-11-14", "group": "day"})
        assert x.status_code == 200
        assert "filename*=UTF-8''" in x.headers["content-disposition"]
        ws = openpyxl.load_workbook(io.BytesIO(x.content)).active
        data = list(ws.iter_rows(min_row=5, values_only=True))
        assert len(data) == 14 + 1
        assert all(isinstance(r[0], dt.datetime) for r in data[:-1])
        assert data[-1][0] == "合计"
        assert data[-1][1] == sum(1 for _, t, k in events if k == "denied"
                                  and t.date() <= dt.date(2026, 11, 14))
        assert all(isinstance(v, int) for r in data for v in r[1:])
        # bad input: a clear 400, no file
        bad = c.get("/reports/view/core.audit/xlsx", params={"start": "2026-11-30",
                                                             "end": "2026-11-01"})
        assert bad.status_code == 400 and "早于" in bad.text
        assert c.get("/reports/view/core.audit", params={"start": "x"}).status_code == 400
        assert c.get("/reports/view/nosuch").status_code == 404
    with rt.sessions() as s:
        from sqlalchemy import select

        from bingan.core.models import AuditEvent

        ev = s.scalars(select(AuditEvent).where(AuditEvent.action == "reports.export")).all()
        assert len(ev) == 1 and ev[0].staff_no == "AUD1"


def test_who_sees_what_and_dashboards(rt):
    with rt.sessions() as s, s.begin():
        ensure_builtin_roles(s, rt)  # with the capabilities plugins give the built-in roles
    make_staff(rt, "AUD1", ["auditor"], department="9001")
    make_staff(rt, "PHY1", ["physician"], department="1001")
    make_staff(rt, "REC1", ["records"], department="9001")
    make_staff(rt, "QC1", ["qc"], department="9001")
    with web_client(rt) as c:
        login(c, "PHY1")
        assert c.get("/reports").status_code == 403
        assert c.get("/reports/view/core.audit").status_code == 403
        assert c.get("/api/reports/core.audit").status_code == 403
        d = c.get("/reports/dashboard")
        assert d.status_code == 200 and "我的检索与查阅" in d.text and "访问与导出审计" not in d.text
        assert c.get("/reports/view/reading.mine").status_code == 200
    with web_client(rt) as c:
        login(c, "REC1")
        idx = c.get("/reports")
        assert idx.status_code == 200
        for title in ("数字化产量与计划", "出院病历归档率与超期", "病历复印统计", "检索与查阅统计"):
            assert title in idx.text
        assert "访问与导出审计" not in idx.text
        d = c.get("/reports/dashboard").text
        assert "数字化产量与计划" in d and "出院病历归档率与超期" in d
    with web_client(rt) as c:
        login(c, "QC1")
        d = c.get("/reports/dashboard").text
        assert "质控合格率" in d and "病历复印统计" not in d
    with web_client(rt) as c:
        login(c, "AUD1")
        d = c.get("/reports/dashboard").text
        assert "访问与导出审计" in d and "数字化产量与计划" not in d
