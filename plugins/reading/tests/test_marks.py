"""The full-text phrase marked on the page image: the marks API answers the boxes of the hit
from the page's OCR lines (the page index's find_text), under the viewer's access decision."""

from __future__ import annotations

import json

from sqlalchemy import select

from reading_world import E1, E2, staff_no
from webutil import events, login, web_client
from bingan.core.models import Admission, Page

SIGNER = staff_no("physician", "signer")
STRANGER = staff_no("physician", "none")
# E1's pages are 620 x 877 px (reading_world); two OCR lines, the phrase wraps between them
LINES = [["出院记录 患者急性阑", 62, 100, 558, 140, 0.93], ["尾炎术后出院", 62, 150, 310, 190, 0.9]]


def _ocr_first_page(rt) -> tuple[int, int]:
    from bingan_pageindex.models import PageText

    with rt.sessions() as s, s.begin():
        first, second = s.scalars(
            select(Page).join(Admission, Admission.id == Page.admission_id)
            .where(Admission.admission_no == E1).order_by(Page.seq).limit(2)).all()
        s.add(PageText(page_id=first.id, admission_id=first.admission_id,
                       image_sha256=first.image_sha256, text="出院记录 患者急性阑\n尾炎术后出院",
                       blocks=LINES, engine="test-lines"))
        return first.id, second.id


def _url(page_id: int, q: str, adm: str = E1) -> str:
    return f"/api/reading/records/{adm}/pages/{page_id}/marks?q={q}"


def test_marks_of_a_wrapped_phrase_for_a_reader_and_none_for_others(world):
    rt = world.rt
    first, second = _ocr_first_page(rt)
    with web_client(rt) as doc, web_client(rt) as other:
        assert login(doc, SIGNER).status_code in (302, 303)
        r = doc.get(_url(first, "急性阑尾炎"))
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["indexed"] is True
        # 急 starts after 13 of the line's 19 half-width cells: 62 + 496 * 13 / 19 = 401.4
        assert body["boxes"] == [[round(401 / 620, 5), round(100 / 877, 5),
                                  round(558 / 620, 5), round(140 / 877, 5)],
                                 [round(62 / 620, 5), round(150 / 877, 5),
                                  round(145 / 620, 5), round(190 / 877, 5)]]
        # two parts, each marked wherever it is; a phrase that is not there: none
        assert len(doc.get(_url(first, "出院 术后")).json()["boxes"]) == 3
        assert doc.get(_url(first, "肺炎")).json() == {
            "page_id": first, "query": "肺炎", "boxes": [], "indexed": True}
        # a page OCR has not read yet: nothing to mark, and it says so
        assert doc.get(_url(second, "出院")).json()["indexed"] is False
        # bad input: a clear answer
        assert doc.get(_url(first, "  ")).status_code == 400
        assert doc.get(_url(first, "出" * 300)).status_code == 400
        assert doc.get(_url(first, "出院", adm=E2)).status_code == 404

        assert login(other, STRANGER).status_code in (302, 303)
        denied = other.get(_url(first, "急性阑尾炎"))
        assert denied.status_code == 403 and "boxes" not in denied.json()
    ev = events(rt, "record.page_view", staff_no=STRANGER)
    assert ev and ev[-1].outcome == "denied" and json.loads(ev[-1].detail)["marks"] == "急性阑尾炎"
    ok = events(rt, "record.page_view", staff_no=SIGNER)
    assert ok[0].outcome == "ok" and json.loads(ok[0].detail)["page"] == first


def test_hook_find_text(world):
    """The page index answers from the lines OCR read on that very image; None where it read
    none (another image of the page, or not yet)."""
    import dataclasses

    from bingan.core.pages import page_ref

    rt = world.rt
    first, second = _ocr_first_page(rt)
    with rt.sessions() as s:
        ref1, ref2 = page_ref(s.get(Page, first)), page_ref(s.get(Page, second))
    assert rt.pm.hook.find_text(page=ref1, query="术后", rt=rt) == [(144, 150, 228, 190)]
    assert rt.pm.hook.find_text(page=ref1, query="肺炎", rt=rt) == []
    assert rt.pm.hook.find_text(page=ref2, query="术后", rt=rt) is None
    other_image = dataclasses.replace(ref1, image_sha256=ref2.image_sha256)
    assert rt.pm.hook.find_text(page=other_image, query="术后", rt=rt) is None
