"""The hooks with only this plugin enabled, on real records (SQLite and PostgreSQL), the CLI
and the settings."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from click.testing import CliRunner

from core import pages, records
from core.cli import Ctx, build_cli
from core.config import ConfigError, validate_settings
from core.runtime import build_runtime, set_current
from hooks.types import AdmissionIn, FulltextHit, PatientIn
from support import make_config

TEXTS = ["住院病案首页 出院诊断：急性阑尾炎（K35.8）",
         "手术记录：腹腔镜阑尾切除术，术中见阑尾充血水肿",
         "出院记录：患者恢复良好，予出院"]


@pytest.fixture
def rt_fulltext(db_url, tmp_path):
    from bingan_fulltext import service

    rt = build_runtime(make_config(tmp_path / "home", db_url, enabled=["fulltext"]))
    yield rt
    service.close_all()
    rt.close()
    set_current(None)


def _record_with_pages(rt, mrn: str, texts: list[str]):
    """A real admission with real pages; returns (AdmissionRef, [(PageRef, text)])."""
    with rt.sessions() as s, s.begin():
        adm, _ = records.upsert_admission(s, rt, AdmissionIn(
            patient=PatientIn(mrn=mrn, name="钱七"), admission_no=f"ZY2026{mrn}",
            visit_no=1, admitted_at=dt.datetime(2026, 3, 1, tzinfo=dt.timezone.utc)))
        rows = [pages.add_page(s, rt, adm, pages.NewPage(image=b"\xff\xd8jpeg" + t.encode(),
                                                          original=b"orig" + t.encode()))
                for t in texts]
        s.flush()
        return records.to_ref(adm), [(pages.page_ref(p), t) for p, t in zip(rows, texts)]


def test_hook_index_record(rt_fulltext):
    from bingan_fulltext import service

    rt = rt_fulltext
    adm, page_texts = _record_with_pages(rt, "00700001", TEXTS)
    rt.pm.hook.index_record(admission=adm, pages=page_texts)
    assert (rt.home / "fulltext" / "whoosh" / "bingan.json").exists()
    ix = service.index_for(rt)
    hits = ix.search("阑尾", 10, 0)
    assert sorted(h.page_id for h in hits) == sorted(p.id for p, _ in page_texts[:2])
    assert all(h.admission_id == adm.id for h in hits)
    # after correction of page 2 the index has the new text only
    corrected = [page_texts[0], (page_texts[1][0], "手术记录：腹腔镜胆囊切除术"), page_texts[2]]
    rt.pm.hook.index_record(admission=adm, pages=corrected)
    assert [h.page_id for h in ix.search("阑尾", 10, 0)] == [page_texts[0][0].id]
    # a page of another admission: refused, nothing changes
    other, other_pages = _record_with_pages(rt, "00700002", ["高血压"])
    with pytest.raises(ValueError, match="belongs to admission"):
        rt.pm.hook.index_record(admission=adm, pages=[(page_texts[0][0], "糖尿病")]
                                + other_pages)
    assert ix.search("糖尿病", 10, 0) == []
    assert ix.stats()["pages"] == 3


def test_hook_search_fulltext(rt_fulltext, tmp_path):
    rt = rt_fulltext
    assert rt.pm.hook.search_fulltext(query="阑尾", limit=10, offset=0) == []  # no index yet
    adm, page_texts = _record_with_pages(rt, "00700003", TEXTS)
    rt.pm.hook.index_record(admission=adm, pages=page_texts)
    hits = rt.pm.hook.search_fulltext(query="阑尾炎 K35.8", limit=10, offset=0)
    assert isinstance(hits, list) and len(hits) == 1  # first result: the list itself
    hit = hits[0]
    assert isinstance(hit, FulltextHit)
    assert (hit.admission_id, hit.page_id) == (adm.id, page_texts[0][0].id)
    assert "«阑尾炎»" in hit.snippet and "«K35.8»" in hit.snippet
    second = rt.pm.hook.search_fulltext(query="阑尾", limit=1, offset=1)
    first = rt.pm.hook.search_fulltext(query="阑尾", limit=1, offset=0)
    assert len(first) == len(second) == 1 and first[0].page_id != second[0].page_id
    with pytest.raises(ValueError, match="limit"):
        rt.pm.hook.search_fulltext(query="阑尾", limit=0, offset=0)
    # with the plugin disabled nobody answers
    off = build_runtime(make_config(tmp_path / "home", f"sqlite:///{tmp_path}/off.db", []))
    try:
        assert off.pm.hook.search_fulltext(query="阑尾", limit=10, offset=0) is None
    finally:
        off.close()
        set_current(rt)


def test_cli_stats_and_optimize(tmp_path):
    from bingan_fulltext import service
    from ft_refs import admission, pages_of

    rt = build_runtime(make_config(tmp_path / "home", f"sqlite:///{tmp_path}/x.db",
                                   enabled=["fulltext"]))
    try:
        group = build_cli(rt)

        def run(*args):
            obj = Ctx()
            obj._rt = rt
            return CliRunner().invoke(group, list(args), obj=obj)

        res = run("fulltext", "optimize")
        assert res.exit_code == 0 and "尚未建立" in res.output
        for i in (1, 2, 3):
            service.index_record(admission(i), pages_of(i, ["阑尾炎", "高血压"]))
        res = run("fulltext", "stats", "--json")
        assert res.exit_code == 0, res.output
        assert json.loads(res.output)["pages"] == 6
        res = run("fulltext", "optimize")
        assert res.exit_code == 0 and "6 页，1 段" in res.output
        res = run("fulltext", "stats")
        assert "已索引页数：6" in res.output and "段数：1" in res.output
    finally:
        service.close_all()
        rt.close()
        set_current(None)


def test_settings_are_validated_and_path_is_configurable(tmp_path):
    from bingan_fulltext import FulltextSettings, service

    with pytest.raises(ConfigError, match=r"\[plugins.fulltext\] snippet_chars"):
        validate_settings("plugins.fulltext", FulltextSettings, {"snippet_chars": 5})
    with pytest.raises(ConfigError, match="colour"):
        validate_settings("plugins.fulltext", FulltextSettings, {"colour": "red"})
    cfg = make_config(tmp_path / "home", f"sqlite:///{tmp_path}/x.db", enabled=["fulltext"])
    cfg.plugin_settings["fulltext"] = {"path": "idx/ft", "snippet_chars": 30}
    rt = build_runtime(cfg)
    try:
        assert service.index_path(rt) == tmp_path / "home" / "idx" / "ft"
        assert service.index_for(rt).snippet_chars == 30
    finally:
        service.close_all()
        rt.close()
        set_current(None)
