"""Pinyin keys of names (pure) and pinyin search through the database (both backends)."""

from __future__ import annotations

import datetime as dt

import pytest

from bingan.hooks.types import AdmissionIn, PatientIn

from bingan_search.names import has_han, name_keys, normalize_key, prefix_upper_bound
from bingan_search.query import normalize_code


@pytest.mark.parametrize("name, must, must_not", [
    ("单伟", {"shanwei", "danwei", "sw", "dw", "shanw"}, {"zhangwei", "chanwei"}),
    ("曾乐", {"zengle", "cengle", "zl", "cl"}, set()),
    ("解小明", {"xiexiaoming", "jiexiaoming", "xxm", "jxm", "xiexm"}, set()),
    ("区志强", {"ouzhiqiang", "quzhiqiang", "ozq", "qzq"}, set()),
    ("查良镛", {"zhaliangyong", "chaliangyong", "zly", "cly"}, set()),
    ("仇英", {"qiuying", "chouying", "qy", "cy"}, set()),
    ("盖聂", {"genie", "gainie"}, set()),
    ("龚明", {"gongming", "gm"}, set()),  # not in the dictionary: pypinyin's readings
    ("朴槿惠", {"piaojinhui", "pujinhui", "pjh"}, set()),
    ("乐嘉", {"yuejia", "lejia", "yj", "lj"}, set()),
    ("欧阳修", {"ouyangxiu", "oyx", "ouyangx"}, set()),
    ("尉迟恭", {"yuchigong", "ycg"}, set()),
    ("吕布", {"lvbu", "lb"}, set()),
    ("张三", {"zhangsan", "zs", "zhangs"}, {"shan"}),
    ("JOHN SMITH", {"johnsmith", "js"}, set()),
    # given names have heteronyms too: every reading of every character is a key
    ("陈长林", {"chenchanglin", "ccl", "chencl", "chenzhanglin", "czl"}, set()),
    ("李朝阳", {"lichaoyang", "lcy", "lizhaoyang", "lzy"}, set()),
    ("张行", {"zhangxing", "zhanghang", "zx", "zh"}, set()),
])
def test_name_keys(name, must, must_not):
    keys = name_keys(name)
    assert must <= keys, sorted(keys)
    assert not (must_not & keys)
    assert all(k.isascii() and k.isalpha() and k.islower() for k in keys)


def test_common_reading_ranks_first():
    from bingan_search.names import MAX_READINGS, key_ranks, reading_rank

    ranks = key_ranks("陈长林")
    assert ranks["chenzhanglin"] == 0  # pypinyin's reading in context
    assert ranks["chenchanglin"] == 1
    assert reading_rank("陈长林", "czl") == 0
    assert reading_rank("陈长林", "ccl") == 1
    assert reading_rank("陈长林", "wxy") == 99
    assert reading_rank("单伟", "shanw") == 0 == reading_rank("单伟", "danw")  # both usual
    # many heteronyms: bounded, the readings with fewest unusual characters kept
    long = "乐长重行朝"
    assert len({k for k, r in key_ranks(long).items()}) <= 3 * MAX_READINGS + 2
    assert min(key_ranks(long).values()) == 0


def test_key_helpers():
    assert normalize_key("Zhang San") == "zhangsan"
    assert normalize_key("lü") == "lv"
    assert has_han("张a") and not has_han("zhang")
    assert prefix_upper_bound("zs") == "zt"
    assert prefix_upper_bound("张") == "弡"
    assert normalize_code(" k35.8 ") == "K35.8"
    assert normalize_code("i10.X00X002") == "I10.x00x002"
    assert normalize_code("43.7X00") == "43.7x00"
    assert normalize_code("x59") == "X59"
    assert name_keys("") == frozenset()


def _adm(mrn: str, name: str, no: str) -> AdmissionIn:
    return AdmissionIn(patient=PatientIn(mrn=mrn, name=name), admission_no=no, visit_no=1,
                       admitted_at=dt.datetime(2024, 5, 1, tzinfo=dt.timezone.utc))


def test_pinyin_search_finds_every_reading_of_heteronym_surnames(rt, cli_actor):
    from bingan.core import records
    from bingan_search import service

    people = [("00200001", "单伟", "ZY202400000001"), ("00200002", "曾乐", "ZY202400000002"),
              ("00200003", "张伟", "ZY202400000003"), ("00200004", "解放", "ZY202400000004"),
              ("00200005", "欧阳明", "ZY202400000005"), ("00200006", "查明", "ZY202400000006")]
    with rt.sessions() as s, s.begin():
        for mrn, name, no in people:
            records.upsert_admission(s, rt, _adm(mrn, name, no))

    def names(q: str) -> set[str]:
        res = service.simple(rt, service.SimpleCriteria(name=q), service.Paging(),
                             actor=cli_actor, via="test")
        return {h.name for h in res.hits}

    assert names("shan") == {"单伟"}
    assert names("dan") == {"单伟"}
    assert names("shanwei") == {"单伟"}
    assert names("sw") == {"单伟"}
    assert names("dw") == {"单伟"}
    assert names("zw") == {"张伟"}
    assert names("zhang") == {"张伟"}
    assert names("zeng") == {"曾乐"}
    assert names("ceng") == {"曾乐"}
    assert names("zl") == {"曾乐"}
    assert names("xie") == {"解放"}
    assert names("jie") == {"解放"}
    assert names("ouyang") == {"欧阳明"}
    assert names("oym") == {"欧阳明"}
    assert names("zha") == {"查明", "张伟"}  # zha-ming, zha-ngwei
    assert names("cha") == {"查明"}
    assert names("z") == {"张伟", "曾乐", "查明"}
    assert names("Shan Wei") == {"单伟"}  # case and spaces do not matter
    assert names("单") == {"单伟"}  # Chinese: name prefix
    assert names("张伟") == {"张伟"}
    assert names("qq") == set()


def test_pinyin_search_finds_given_name_heteronyms_common_reading_first(rt, cli_actor):
    from bingan.core import records
    from bingan_search import service

    people = [("00400001", "陈长林", "ZY202400000021"), ("00400002", "陈畅霖", "ZY202400000022"),
              ("00400003", "陈朝阳", "ZY202400000023")]
    with rt.sessions() as s, s.begin():
        for mrn, name, no in people:
            records.upsert_admission(s, rt, _adm(mrn, name, no))

    def names(q: str) -> list[str]:
        res = service.simple(rt, service.SimpleCriteria(name=q), service.Paging(),
                             actor=cli_actor, via="test")
        return [h.name for h in res.hits]

    assert set(names("ccl")) == {"陈长林", "陈畅霖"}
    assert names("chenchanglin") == ["陈畅霖", "陈长林"]  # 畅霖 is read so by everyone
    assert names("czl") == ["陈长林"]
    assert names("chenzhanglin") == ["陈长林"]
    assert names("chenchaoyang") == ["陈朝阳"]
    assert names("chenzhaoyang") == ["陈朝阳"]


def test_common_reading_first_on_every_page(rt, cli_actor):
    """More results than a page: names found by their common reading fill the first pages,
    in the chosen order, and the names only a rarer reading finds follow on the next ones;
    page 2 continues page 1 (nothing twice, nothing missed), for any sort and page size, up
    to a capped count, and the export lists them in the same order."""
    from bingan.core import records
    from bingan_search import service
    from bingan_search.results import iter_all
    from bingan_search.service import simple_query
    from bingan_search.settings import SearchSettings

    base = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    with rt.sessions() as s, s.begin():
        for i in range(12):  # ccl: 陈春来 by its common reading, 陈长林 by a rarer one only
            common = AdmissionIn(patient=PatientIn(mrn=f"0051{i:04d}", name="陈春来"),
                                 admission_no=f"ZY2024005{i:03d}", visit_no=1,
                                 admitted_at=base + dt.timedelta(days=i),
                                 discharged_at=base + dt.timedelta(days=i + 3))
            rare = AdmissionIn(patient=PatientIn(mrn=f"0052{i:04d}", name="陈长林"),
                               admission_no=f"ZY2024006{i:03d}", visit_no=1,
                               admitted_at=base + dt.timedelta(days=100 + i),
                               discharged_at=base + dt.timedelta(days=103 + i))
            records.upsert_admission(s, rt, common)
            records.upsert_admission(s, rt, rare)

    def pages(q: str, size: int, **kw) -> list[list[tuple[str, str]]]:
        out, page = [], 1
        while True:
            res = service.simple(rt, service.SimpleCriteria(name=q),
                                 service.Paging(page=page, page_size=size, **kw),
                                 actor=cli_actor, via="test")
            out.append([(h.name, h.admission_no) for h in res.hits])
            if page >= res.pages:
                return out
            page += 1

    rare_first_by_date = [f"ZY2024006{i:03d}" for i in reversed(range(12))]
    common_by_date = [f"ZY2024005{i:03d}" for i in reversed(range(12))]
    for size in (5, 10, 7):
        got = pages("ccl", size)
        flat = [no for page in got for no in (n for _, n in page)]
        assert flat == common_by_date + rare_first_by_date, (size, got)
        assert all(len(p) == size for p in got[:-1])
    # another sort: each tier in that order (admission number ascending)
    flat = [n for page in pages("chenc", 10, sort="admission_no", desc=False) for _, n in page]
    assert flat == sorted(common_by_date) + sorted(rare_first_by_date)
    # found by their common reading alone: no tiers to speak of
    assert [n for page in pages("chenzhanglin", 5) for _, n in page] == rare_first_by_date
    # a capped count: the common tier first, then the next (a capped count is "at least":
    # its last page is filled as without tiers)
    rt.settings(SearchSettings).count_limit = 15
    res = service.simple(rt, service.SimpleCriteria(name="ccl"),
                         service.Paging(page=2, page_size=10), actor=cli_actor, via="test")
    assert (res.total, res.total_capped, res.pages) == (15, True, 2)
    assert [h.admission_no for h in res.hits] == common_by_date[10:] + rare_first_by_date[:8]
    # the export: the same order as the pages
    with rt.sessions() as s:
        hits = list(iter_all(s, simple_query(service.SimpleCriteria(name="ccl")),
                             sort="discharged_at", desc=True, max_rows=100, tz=rt.tz))
        assert [h.admission_no for h in hits] == common_by_date + rare_first_by_date
        hits = list(iter_all(s, simple_query(service.SimpleCriteria(name="ccl")),
                             sort="discharged_at", desc=True, max_rows=14, tz=rt.tz))
        assert [h.admission_no for h in hits] == common_by_date + rare_first_by_date[:2]


def test_renamed_patient_is_found_by_the_new_name(rt, cli_actor):
    from bingan.core import records
    from bingan_search import service

    with rt.sessions() as s, s.begin():
        records.upsert_admission(s, rt, _adm("00300001", "王芳", "ZY202400000011"))
    with rt.sessions() as s, s.begin():
        records.upsert_admission(s, rt, _adm("00300001", "仇芳", "ZY202400000011"))

    def nos(q):
        return [h.admission_no for h in service.simple(
            rt, service.SimpleCriteria(name=q), service.Paging(), actor=cli_actor,
            via="test").hits]

    assert nos("qiuf") == ["ZY202400000011"]
    assert nos("chouf") == ["ZY202400000011"]
    assert nos("wf") == []
