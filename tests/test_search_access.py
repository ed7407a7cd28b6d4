"""The reading access matrix over every search and export path (issue 9, C1).

The matrix hospital of the reading plugin (every role x every relation to record E1, see
plugins/reading/tests/reading_world.py) gets page text in the full-text index. Then, for each
staff member, on each full-text backend and each database:

- full text (web page, JSON API, CLI) lists exactly the records the viewer lets that person
  open (the same ``decide``), and a refused record's pages never show, nor take a place in a
  page of hits or in ``has_more`` (paging one hit at a time walks the permitted pages only);
- the structured searches (simple, combined, batch; web, JSON API, CLI) and their exports show
  front-page index fields only: no page text, whatever the person may read.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "plugins" / "reading" / "tests"))

from bingan.core import permissions
from bingan.core.models import Admission, Page, Role
from bingan.core.plugins import installed_plugins
from bingan.core.records import to_ref
from bingan.core.staff import get_staff, staff_ref
from bingan.hooks.types import PageRef
from reading_world import (
    ADMIN_SECRET,
    E1,
    E2,
    E3,
    MRN1,
    RELATIONS,
    ROLES,
    build_world,
    expected_view,
    staff_no,
)
from support import build_test_runtime
from webutil import csrf_token, login, login_admin, post_form, web_client

SECRET = "隐私病情甲乙"  # in every page's text, never in a front-page field
RECORDS = (E1, E2, E3)


def _runtime(db_url: str, home: Path, backend: str):
    other = {"fulltext": "tantivy", "tantivy": "fulltext"}[backend]
    return build_test_runtime(home, db_url, sorted(set(installed_plugins()) - {other}))


def _index(rt) -> dict[str, int]:
    """Page text for every page of the world's records; pages per record."""
    from sqlalchemy import select

    counts, todo = {}, []
    with rt.sessions() as s:  # read first: the hook's implementations write themselves
        for adm_no in RECORDS:
            adm = s.scalar(select(Admission).where(Admission.admission_no == adm_no))
            pages = s.scalars(select(Page).where(Page.admission_id == adm.id)
                              .order_by(Page.seq)).all()
            refs = [(PageRef(id=p.id, admission_id=adm.id, seq=p.seq, page_type=p.page_type,
                             image_sha256=None, original_sha256=None),
                     f"血压 130/80 mmHg {SECRET} 住院号 {adm_no} 第{p.seq}页") for p in pages]
            todo.append((to_ref(adm), refs))
            counts[adm_no] = len(pages)
    for ref, refs in todo:
        rt.pm.hook.index_record(rt=rt, admission=ref, pages=refs)
    return counts


def _grant_search(rt) -> None:
    with rt.sessions() as s, s.begin():
        for role in s.query(Role).filter(Role.name.in_(ROLES)):
            role.permissions = sorted(set(role.permissions or []) | {"search.use",
                                                                     "search.export"})


def _sign_in(c, role: str, no: str) -> None:
    c.cookies.clear()
    if role == "admin":
        login_admin(c, no, ADMIN_SECRET)
    else:
        assert login(c, no).status_code in (302, 303)


def _decided(rt, no: str) -> set[str]:
    from sqlalchemy import select

    with rt.sessions() as s:
        user = staff_ref(get_staff(s, no))
        out = set()
        for adm_no in RECORDS:
            adm = s.scalar(select(Admission).where(Admission.admission_no == adm_no))
            if permissions.decide(s, rt, user, adm, "view", record=False).allowed:
                out.add(adm_no)
        return out


def _xlsx_text(body: bytes) -> str:
    import openpyxl

    wb = openpyxl.load_workbook(io.BytesIO(body), read_only=True)
    return "\n".join(str(v) for ws in wb.worksheets for row in ws.iter_rows(values_only=True)
                     for v in row if v is not None)


def _cli(rt, *args):
    from bingan.core.cli import Ctx, build_cli

    obj = Ctx()
    obj._rt = rt
    return CliRunner().invoke(build_cli(rt), list(args), obj=obj)


@pytest.mark.parametrize("backend", ["fulltext", "tantivy"])
def test_fulltext_shows_only_what_the_viewer_allows(db_url, tmp_path, backend):
    rt = _runtime(db_url, tmp_path / "home", backend)
    try:
        world = build_world(rt)
        _grant_search(rt)
        pages = _index(rt)
        seen_allowed = seen_refused = 0
        with web_client(rt) as c:
            for role in ROLES:
                for rel in RELATIONS:
                    no = staff_no(role, rel)
                    want = _decided(rt, no)
                    # the written-out policy agrees with decide on E1 and E2
                    assert (E1 in want) == expected_view(role, rel, E1), (role, rel)
                    assert (E2 in want) == expected_view(role, rel, E2), (role, rel)
                    seen_allowed += len(want)
                    seen_refused += len(RECORDS) - len(want)
                    _sign_in(c, role, no)
                    # the viewer: one page image of each record
                    for adm_no in RECORDS:
                        r = c.get(f"/records/{adm_no}/pages/{world.page_ids[adm_no][0]}.jpg")
                        assert (r.status_code == 200) == (adm_no in want), (no, adm_no)
                    h = {"x-csrftoken": csrf_token(c)}
                    # JSON API, one page of everything
                    r = c.post("/api/search/fulltext", json={"query": "mmHg", "page_size": 50},
                               headers=h)
                    assert r.status_code == 200, r.text
                    body = r.json()
                    assert body["enabled"] and not body["has_more"]
                    got = [x["admission_no"] for x in body["hits"]]
                    assert set(got) == want, (no, got, want)
                    assert len(got) == sum(pages[a] for a in want)
                    for x in body["hits"]:
                        assert x["admission_no"] in x["snippet"]
                    # paging two hits at a time: permitted pages only, no empty page, has_more
                    # false exactly at the last permitted hit
                    walked, page_no = [], 1
                    while True:
                        r = c.post("/api/search/fulltext",
                                   json={"query": SECRET, "page_size": 2, "page": page_no},
                                   headers=h).json()
                        walked += [x["admission_no"] for x in r["hits"]]
                        if not r["has_more"]:
                            break
                        assert len(r["hits"]) == 2
                        page_no += 1
                    assert sorted(walked) == sorted(got), (no, walked)
                    # the web page
                    html = c.get("/search/fulltext", params={"q": "mmHg"}).text
                    for adm_no in RECORDS:
                        assert (adm_no in html) == (adm_no in want), (no, adm_no)
                    # the CLI, for this staff member
                    if rel in ("signer", "none"):
                        res = _cli(rt, "search", "fulltext", "mmHg", "--as", no, "--json")
                        assert res.exit_code == 0, res.output
                        assert {x["admission_no"]
                                for x in json.loads(res.output)["hits"]} == want
        assert seen_allowed and seen_refused
        # the CLI needs a staff member; an unknown one is refused
        res = _cli(rt, "search", "fulltext", "mmHg", "--json")
        assert res.exit_code == 2 and "--as" in res.output
        res = _cli(rt, "search", "fulltext", "mmHg", "--as", "NOBODY")
        assert res.exit_code == 1 and "不存在" in res.output
    finally:
        rt.close()


def test_hook_access_scope(db_url, tmp_path):
    """access_scope, combined by permissions.readable (the filter searches put into their
    query), allows exactly the admissions decide allows, for every staff member of the
    matrix and every admission."""
    from sqlalchemy import select

    rt = _runtime(db_url, tmp_path / "home", "fulltext")
    try:
        build_world(rt)
        with rt.sessions() as s:
            adms = s.scalars(select(Admission)).all()
            assert len(adms) == 4
            for role in ROLES:
                for rel in RELATIONS:
                    user = staff_ref(get_staff(s, staff_no(role, rel)))
                    flt = permissions.readable(s, rt, user, "view")
                    assert flt is not None
                    for adm in adms:
                        d = permissions.decide(s, rt, user, adm, "view", record=False)
                        assert flt.allows(adm.id) == d.allowed, (user.staff_no, adm.admission_no)
    finally:
        rt.close()


def test_structured_searches_and_exports_show_index_fields_only(db_url, tmp_path):
    rt = _runtime(db_url, tmp_path / "home", "fulltext")
    try:
        build_world(rt)
        _grant_search(rt)
        _index(rt)
        tree = {"type": "cond", "field": "mrn", "op": "eq", "value": MRN1}
        with web_client(rt) as c:
            for role in ROLES:
                for rel in ("signer", "none"):
                    _sign_in(c, role, staff_no(role, rel))
                    h = {"x-csrftoken": csrf_token(c)}
                    outputs = [
                        c.post("/api/search/simple", json={"mrn": MRN1}, headers=h),
                        c.post("/api/search/combined", json={"query": tree}, headers=h),
                        c.post("/api/search/batch", json={"numbers": [E1, E2]}, headers=h),
                        c.get("/search/simple", params={"mrn": MRN1}),
                        post_form(c, "/search/export", {"kind": "simple", "format": "csv",
                                                        "criteria": json.dumps({"mrn": MRN1})}),
                        post_form(c, "/search/export", {"kind": "batch", "format": "csv",
                                                        "numbers": f"{E1} {E2}"}),
                        post_form(c, "/search/export", {"kind": "combined", "format": "csv",
                                                        "criteria": json.dumps(tree)}),
                        c.get("/search/combined", params={"q": json.dumps(tree)}),
                        post_form(c, "/search/batch", {"text": f"{E1}\n{E2}"}),
                    ]
                    for r in outputs:
                        assert r.status_code == 200, r.text
                        text = r.content.decode("utf-8-sig")
                        assert E1 in text, r.url
                        assert SECRET not in text and "mmHg" not in text
                    rows = list(csv.reader(io.StringIO(outputs[4].content.decode("utf-8-sig"))))
                    assert rows[0][:3] == ["病案号", "姓名", "性别"] and len(rows) == 4
                    # the Excel exports: every cell of every sheet
                    for form in ({"kind": "simple", "criteria": json.dumps({"mrn": MRN1})},
                                 {"kind": "combined", "criteria": json.dumps(tree)},
                                 {"kind": "batch", "numbers": f"{E1} {E2}"}):
                        r = post_form(c, "/search/export", {**form, "format": "xlsx"})
                        assert r.status_code == 200, r.text
                        cells = _xlsx_text(r.content)
                        assert E1 in cells and SECRET not in cells and "mmHg" not in cells
        for args in (["simple", "--mrn", MRN1], ["combined", str(tmp_path / "q.json")],
                     ["batch", str(tmp_path / "n.txt")]):
            (tmp_path / "q.json").write_text(json.dumps(tree))
            (tmp_path / "n.txt").write_text(f"{E1}\n{E2}\n")
            res = _cli(rt, "search", *args, "--json")
            assert res.exit_code == 0, (args, res.output)
            assert SECRET not in res.output and "mmHg" not in res.output and E1 in res.output
    finally:
        rt.close()
