"""Odd input to every copying route is a clear 4xx (or a page that says what is wrong), never
a server error: huge numbers, unknown requests, malformed dates and forms."""

from __future__ import annotations

import pytest

from copy_world import A1, PASSWORD, id_card_jpeg
from webutil import csrf_token, login, web_client

HUGE = "99999999999999999999"


@pytest.mark.parametrize("url", [
    f"/copying/requests/FY1/documents/{HUGE}", "/copying/requests/" + "X" * 300,
    f"/copying/requests/{HUGE}/copy.pdf", "/copying/new?adm=" + "Z" * 500,
    "/copying/new?q=" + "%00" * 10, "/copying/stats?start=2026-13-01", "/copying/stats.xlsx?end=x",
    "/api/copying/stats?start=1900-01-01&end=2026-01-01", "/copying?status=<b>",
    "/copying/queue?status=" + "x" * 100,
])
def test_odd_urls(world, url):
    with web_client(world.rt) as c:
        login(c, "REC1", PASSWORD)
        r = c.get(url)
        assert r.status_code < 500, (url, r.status_code, r.text[:300])


@pytest.mark.parametrize("field,value", [
    ("page", HUGE), ("page", "-1"), ("page", "abc"), ("copies", HUGE), ("adm", HUGE),
    ("applicant_type", "x" * 3000), ("site", "x" * 100),
])
def test_odd_forms(world, field, value):
    with web_client(world.rt) as c:
        login(c, "REC1", PASSWORD)
        data = {"_csrf_token": csrf_token(c), "applicant_type": "patient",
                "applicant_name": "王小明", "purpose": "insurance", "copies": "1",
                "consent": "1", "adm": [A1], "page": [str(world.page_ids(A1)[0])],
                "src_patient_id": "upload"}
        data[field] = value
        r = c.post("/copying/requests", data=data,
                   files=[("doc_patient_id", ("c.jpg", id_card_jpeg(), "image/jpeg"))],
                   follow_redirects=False)
        assert 400 <= r.status_code < 500, (field, value, r.status_code, r.text[:300])
        for url in ("/copying/requests/X/print", "/copying/requests/X/decide"):
            r = c.post(url, data={"_csrf_token": csrf_token(c), "printer": value,
                                  "verdict": value})
            assert r.status_code < 500, (url, r.status_code)
