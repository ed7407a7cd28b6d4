"""The JSON API (in /schema) and ``bingan search ... --json`` give the same searches as the
pages, audited the same way (both backends)."""

from __future__ import annotations

import json

import openpyxl
from click.testing import CliRunner

from webutil import csrf_token, events, login, make_staff, web_client

from search_testdata import matches

from bingan_search.query import Cond, Group, Not


def _client_setup(rt):
    from bingan.core.models import Role
    from bingan.core.staff import ensure_builtin_roles

    with rt.sessions() as s, s.begin():
        ensure_builtin_roles(s)
        s.add(Role(name="searcher", label="检索员", permissions=["search.use"]))
    make_staff(rt, "S001", ["searcher"])


def test_json_api_for_every_search(rt, recs):
    _client_setup(rt)
    with web_client(rt) as c:
        login(c, "S001")
        h = {"x-csrftoken": csrf_token(c)}
        r = c.post("/api/search/simple", json={"icd": "K35", "page_size": 5, "sort": "mrn",
                                               "desc": False}, headers=h)
        assert r.status_code == 200, r.text
        body = r.json()
        want = [x for x in recs if any(d[1].startswith("K35") for d in x.diagnoses)]
        assert body["total"] == len(want) and len(body["hits"]) == min(5, len(want))
        assert [x["mrn"] for x in body["hits"]] == sorted(x["mrn"] for x in body["hits"])
        assert body["description"].startswith("诊断编码")
        assert set(body["hits"][0]) >= {"admission_no", "mrn", "name", "sex", "age_years",
                                        "visit_no", "admitted_at", "discharged_at",
                                        "department", "main_diagnosis", "discharge_way_label"}

        tree = Group("and", [Cond("sex", "eq", "F"), Not(Cond("discharge_way", "eq", "1"))])
        import msgspec

        r = c.post("/api/search/combined", json={"query": msgspec.to_builtins(tree),
                                                 "page_size": 500}, headers=h)
        assert r.status_code == 200, r.text
        assert {x["admission_no"] for x in r.json()["hits"]} == {
            x.admission_no for x in recs if matches(x, tree)}
        r = c.post("/api/search/combined", json={"query": {"type": "cond", "field": "x",
                                                           "op": "eq", "value": 1}}, headers=h)
        assert r.status_code == 400 and "不能按字段" in r.json()["detail"]
        r = c.post("/api/search/combined", json={"query": {"type": "bogus"}}, headers=h)
        assert r.status_code == 400

        # saved queries through the API, then used by id
        r = c.post("/api/search/saved", json={"name": "女性非医嘱离院",
                                              "query": msgspec.to_builtins(tree)}, headers=h)
        assert r.status_code == 201, r.text
        sid = r.json()["id"]
        assert [x["name"] for x in c.get("/api/search/saved").json()] == ["女性非医嘱离院"]
        r = c.post("/api/search/combined", json={"saved_id": sid, "page_size": 500}, headers=h)
        assert r.json()["total"] == sum(matches(x, tree) for x in recs)
        assert c.delete(f"/api/search/saved/{sid}", headers=h).status_code == 204
        assert c.get("/api/search/saved").json() == []

        r = c.post("/api/search/batch", json={"numbers": [recs[0].admission_no, "ZY1"],
                                              "kind": "admission_no"}, headers=h)
        assert r.status_code == 200
        assert r.json()["not_found"] == ["ZY1"]
        assert r.json()["hits"][0]["hit"]["admission_no"] == recs[0].admission_no
        r = c.post("/api/search/batch", json={"numbers": []}, headers=h)
        assert r.status_code == 400 and "没有找到任何号码" in r.json()["detail"]

        r = c.post("/api/search/fulltext", json={"query": "阑尾炎"}, headers=h)
        assert r.status_code == 200 and set(r.json()) >= {"enabled", "hits", "has_more"}

        fields = c.get("/api/search/fields").json()
        by_name = {f["name"]: f for f in fields}
        assert by_name["discharge_way"]["choices"]["5"] == "死亡"
        assert by_name["discharge_department"]["choices"]["1005"] == "普通外科"
        assert {o["op"] for o in by_name["diagnosis_code"]["ops"]} >= {"prefix", "eq", "in"}
        assert "discharged_at" in c.get("/api/search/sorts").json()
        assert c.post("/api/search/simple", json={"name": "张"}).status_code == 403  # no CSRF

        schema = c.get("/schema/openapi.json").json()
        for path in ("/api/search/simple", "/api/search/combined", "/api/search/batch",
                     "/api/search/fulltext", "/api/search/fields"):
            assert path in schema["paths"], path
    actions = [e.action for e in events(rt) if e.action.startswith("search.")]
    assert actions.count("search.simple") == 1 and "search.batch" in actions
    assert "search.fulltext" in actions and actions.count("search.combined") >= 3


def _cli(rt, *args, input=None):
    from bingan.core.cli import Ctx, build_cli

    obj = Ctx()
    obj._rt = rt
    return CliRunner().invoke(build_cli(rt), list(args), obj=obj, input=input)


def test_cli_json_output_and_audit(rt, recs, tmp_path):
    _client_setup(rt)  # full text runs for a staff member (--as)
    for sub in ("", "simple", "combined", "batch", "fulltext", "reindex"):
        res = _cli(rt, "search", *([sub] if sub else []), "--help")
        assert res.exit_code == 0 and "Usage" in res.output, sub
    res = _cli(rt, "search", "simple", "--icd", "k35", "--page-size", "3", "--sort", "mrn",
               "--asc", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    want = sorted((x.mrn, x.id) for x in recs if any(d[1].startswith("K35")
                                                      for d in x.diagnoses))
    assert out["total"] == len(want) and [h["mrn"] for h in out["hits"]] == [w[0] for w in
                                                                             want[:3]]
    text = _cli(rt, "search", "simple", "--name", "dan")
    assert text.exit_code == 0 and "单伟" in text.output

    tree = {"type": "group", "op": "or", "items": [
        {"type": "cond", "field": "operation_code", "op": "prefix", "value": "47"},
        {"type": "not", "item": {"type": "cond", "field": "age_years", "op": "ge",
                                 "value": 18}}]}
    qfile = tmp_path / "q.json"
    qfile.write_text(json.dumps(tree), encoding="utf-8")
    res = _cli(rt, "search", "combined", str(qfile), "--page-size", "500", "--json")
    assert res.exit_code == 0, res.output
    from bingan_search.query import decode

    node = decode(json.dumps(tree))
    assert {h["admission_no"] for h in json.loads(res.output)["hits"]} == {
        x.admission_no for x in recs if matches(x, node)}
    res = _cli(rt, "search", "combined", "-", "--json", input=json.dumps(tree))
    assert res.exit_code == 0
    bad = _cli(rt, "search", "combined", "-", input="{not json")
    assert bad.exit_code == 1 and "JSON" in bad.output

    wb = openpyxl.Workbook()
    wb.active.append(["住院号"])
    wb.active.append([recs[3].admission_no])
    wb.active.append(["ZY209900000001"])
    xlsx = tmp_path / "numbers.xlsx"
    wb.save(xlsx)
    res = _cli(rt, "search", "batch", str(xlsx), "--kind", "admission_no", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["not_found"] == ["ZY209900000001"]
    assert [h["hit"]["admission_no"] for h in out["hits"]] == [recs[3].admission_no]
    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(xlsx.read_bytes()[:200])
    res = _cli(rt, "search", "batch", str(broken))
    assert res.exit_code == 1 and "无法读取 Excel" in res.output

    res = _cli(rt, "search", "fulltext", "阑尾炎", "--as", "S001", "--json")
    assert res.exit_code == 0 and "enabled" in json.loads(res.output)
    assert _cli(rt, "search", "simple").exit_code == 2  # no criteria: usage error

    res = _cli(rt, "search", "reindex")
    assert res.exit_code == 0 and "新增姓名 0 个" in res.output

    evs = [e for e in events(rt) if e.action.startswith("search.")]
    assert all(e.staff_no.startswith("cli:") and e.client_ip == "127.0.0.1" and e.computer_name
               for e in evs)
    assert [e.outcome for e in evs if e.action == "search.batch"] == ["ok", "failed"]
    assert '"via": "cli"' in evs[0].detail
