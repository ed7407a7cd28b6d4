"""The charge list (收费清单) from the HIS charge view (deathcase's ``charge_list`` hook): a
HIS database (a SQLite file here; any SQLAlchemy URL in production) with a view of charge
lines, read for one admission; decimals and dates as the HIS types them; no rows is no
answer; a broken view or an over-long list is a clear error."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from bingan.core import records
from bingan.hooks.types import AdmissionIn, PatientIn

from bingan_his_sql.settings import ChargeSource, HisSqlSettings

CN = dt.timezone(dt.timedelta(hours=8))
COLUMNS = {"name": "XMMC", "amount": "JE", "quantity": "SL", "unit": "DW", "price": "DJ",
           "day": "FYRQ", "category": "FYLB"}


def _his(tmp_path) -> str:
    url = f"sqlite:///{tmp_path / 'his.sqlite3'}"
    eng = sa.create_engine(url)
    with eng.begin() as c:
        c.execute(sa.text("CREATE TABLE zy_fymx (zyh TEXT, xmmc TEXT, je NUMERIC(12, 2), "
                          "sl NUMERIC(10, 2), dw TEXT, dj NUMERIC(12, 4), fyrq DATE, fylb TEXT)"))
        c.execute(sa.text('CREATE VIEW v_charges AS SELECT zyh AS "ZYH", xmmc AS "XMMC", '
                          'je AS "JE", sl AS "SL", dw AS "DW", dj AS "DJ", fyrq AS "FYRQ", '
                          'fylb AS "FYLB" FROM zy_fymx'))
        rows = [("ZY202611000001", "床位费", "90.00", 2, "天", "45.0000", "2026-11-03", "床位"),
                ("ZY202611000001", "注射用头孢曲松钠", "109.50", 3, "支", "36.5000", "2026-11-02",
                 "西药"),
                ("ZY202611000002", "血常规", "25.00", 1, "次", "25.0000", "2026-11-02", "检验")]
        for r in rows:
            c.execute(sa.text("INSERT INTO zy_fymx VALUES (:a, :b, :c, :d, :e, :f, :g, :h)"),
                      dict(zip("abcdefgh", r)))
    eng.dispose()
    return url


def _ref(rt, no: str):
    with rt.sessions() as s, s.begin():
        adm, _ = records.upsert_admission(s, rt, AdmissionIn(
            patient=PatientIn(mrn="00300001", name="郑某", sex="M"), admission_no=no,
            visit_no=int(no[-1]), admitted_at=dt.datetime(2026, 11, 1, tzinfo=CN),
            discharged_at=dt.datetime(2026, 11, 4, tzinfo=CN), discharge_way="5"))
        return records.to_ref(adm)


def _ask(rt, ref):
    with rt.sessions() as s:
        return rt.pm.hook.charge_list(session=s, admission=ref, rt=rt)


def test_charge_list_from_the_his_view(rt, tmp_path):
    st = rt.settings(HisSqlSettings)
    ref = _ref(rt, "ZY202611000001")
    assert _ask(rt, ref) is None  # not connected: no answer, deathcase asks for an upload
    st.charges = ChargeSource(url=_his(tmp_path), view="v_charges", admission_no="ZYH",
                              columns=COLUMNS)
    got = _ask(rt, ref)
    assert [i.name for i in got.items] == ["注射用头孢曲松钠", "床位费"]  # by day
    first = got.items[0]
    assert (first.amount, first.quantity, first.unit, first.price, first.category) == (
        109.5, 3.0, "支", 36.5, "西药")
    assert first.day == dt.date(2026, 11, 2) and got.total == 199.5
    assert _ask(rt, _ref(rt, "ZY202611000003")) is None  # the HIS has no lines for it
    st.charges = ChargeSource(url=st.charges.url, view="v_charges", admission_no="ZYH",
                              columns=COLUMNS, max_rows=1)
    with pytest.raises(ValueError, match="超过 1 行"):
        _ask(rt, ref)
    st.charges = ChargeSource(url=st.charges.url, view="v_nosuch", admission_no="ZYH",
                              columns=COLUMNS)
    with pytest.raises(ValueError, match="无法读取"):
        _ask(rt, ref)


def test_charge_source_settings_are_checked():
    for bad in ({"columns": {"name": "X"}}, {"columns": {**COLUMNS, "nosuch": "Y"}},
                {"view": "a.b.c"}, {"admission_no": "ZYH; drop"}, {"url": "nourl"}):
        kw = {"url": "sqlite:///x", "view": "v", "admission_no": "ZYH", "columns": COLUMNS,
              **bad}
        with pytest.raises(ValueError):
            ChargeSource(**kw)
