"""The HIS pull against real database servers on this machine: MariaDB (127.0.0.1:3306, root)
and PostgreSQL, each holding a sample HIS schema the test creates (a front-page table and the
view bingan reads, with some columns named by the national layout and some the HIS's own way),
into bingan on SQLite and on PostgreSQL.

Twelve rows, two of them bad: ten go in, the two are reported (row, column, reason); the
watermark makes the next pull read nothing; a row fixed in the HIS (new update time) and a new
row come with the pull after, and the fixed row's issues are cleared.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy import func, select

from bingan.core.models import Admission, AuditEvent, Patient, Signer
from bingan.core.staff import add_department, add_staff, ensure_builtin_roles
from bingan_his_sql.settings import HisSqlSettings

MARIADB_ADMIN = os.environ.get("BINGAN_TEST_MARIADB", "mysql+pymysql://root@127.0.0.1:3306/")
T0 = dt.datetime(2026, 5, 1, 8, 0, 0)

SCHEMA = """
CREATE TABLE his_zy_frontpage (
  zyh VARCHAR(20) NOT NULL PRIMARY KEY,
  bah VARCHAR(20) NOT NULL,
  zycs INTEGER NOT NULL,
  pat_name VARCHAR(40) NOT NULL,
  xb VARCHAR(2),
  csrq DATE,
  rysj TIMESTAMP NOT NULL,
  cysj TIMESTAMP NULL,
  rykb VARCHAR(10),
  cykb VARCHAR(10),
  lyfs VARCHAR(2),
  jbdm VARCHAR(20),
  zyzd VARCHAR(80),
  dr_attending VARCHAR(20),
  update_time TIMESTAMP NOT NULL
)"""
VIEW = """
CREATE VIEW v_bingan_frontpage AS
SELECT zyh AS "ZYH", bah AS "BAH", zycs AS "ZYCS", pat_name AS "PAT_NAME", xb AS "XB",
       csrq AS "CSRQ", rysj AS "RYSJ", cysj AS "CYSJ", rykb AS "RYKB", cykb AS "CYKB",
       lyfs AS "LYFS", jbdm AS "JBDM", zyzd AS "ZYZD", dr_attending AS "DR_ATTENDING",
       update_time AS "UPDATE_TIME"
FROM his_zy_frontpage"""


def _row(i: int, **over):
    adm = T0 + dt.timedelta(days=i)
    row = {"zyh": f"ZY2026050{i:05d}", "bah": f"{200000 + i:08d}", "zycs": 1,
           "pat_name": f"病人{i}", "xb": "1" if i % 2 else "2", "csrq": dt.date(1970, 1, 1 + i),
           "rysj": adm, "cysj": adm + dt.timedelta(days=5), "rykb": "1001", "cykb": "1001",
           "lyfs": "1", "jbdm": "I20.000", "zyzd": "不稳定型心绞痛", "dr_attending": "D0001",
           # rows 0-5 share one update time: ties across the batch boundary (batch of 5)
           "update_time": T0 + dt.timedelta(hours=0 if i < 6 else i)}
    row.update(over)
    return row


ROWS = [_row(i) for i in range(10)] + [
    _row(10, jbdm="XYZ"),              # not an ICD-10 code
    _row(11, cykb="9999"),             # not a department of the hospital
]


@pytest.fixture(params=["mariadb", "postgresql"])
def his(request):
    """A HIS database with the sample schema on a real server; yields its URL."""
    name = f"his_{uuid.uuid4().hex[:10]}"
    if request.param == "mariadb":
        admin = sa.create_engine(MARIADB_ADMIN, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as c:
                c.exec_driver_sql(f"CREATE DATABASE {name} CHARACTER SET utf8mb4")
        except sa.exc.OperationalError as exc:
            admin.dispose()
            if os.environ.get("CI"):
                pytest.fail(f"MariaDB is not reachable at {MARIADB_ADMIN}: {exc}")
            pytest.skip("MariaDB not reachable")
        url = f"{MARIADB_ADMIN.rstrip('/')}/{name}?charset=utf8mb4"
        eng = sa.create_engine(url)
        with eng.begin() as c:
            c.exec_driver_sql("SET SESSION sql_mode = CONCAT(@@sql_mode, ',ANSI_QUOTES')")
            c.exec_driver_sql(SCHEMA.replace("TIMESTAMP", "DATETIME"))
            c.exec_driver_sql(VIEW)
        eng.dispose()
        yield url
        with admin.connect() as c:
            c.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
        admin.dispose()
    else:
        from fixtures_db import _pg_reachable, _pg_url, create_pg_database, drop_pg_database
        from fixtures_db import require_pg

        require_pg("postgres" if _pg_reachable() else None)
        db = create_pg_database("his")
        url = _pg_url(db)
        eng = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
        with eng.begin() as c:
            c.exec_driver_sql(SCHEMA)
            c.exec_driver_sql(VIEW)
        eng.dispose()
        yield url.replace("postgresql://", "postgresql+psycopg://")
        drop_pg_database(db)


def _his_write(url: str, rows: list[dict], update: bool = False) -> None:
    eng = sa.create_engine(url)
    t = sa.table("his_zy_frontpage", *[sa.column(k) for k in ROWS[0]])
    with eng.begin() as c:
        for r in rows:
            if update:
                c.execute(sa.update(t).where(t.c.zyh == r["zyh"]).values(**r))
            else:
                c.execute(sa.insert(t).values(**r))
    eng.dispose()


@pytest.fixture
def hrt(db_url, tmp_path, his):
    from bingan.core.runtime import build_runtime, set_current
    from support import make_config

    cfg = make_config(tmp_path / "home", db_url)
    cfg.plugin_settings["his_sql"] = {"batch_size": 5, "sources": {"main": {
        "url": his, "view": "v_bingan_frontpage", "watermark": "UPDATE_TIME", "key": "ZYH",
        "columns": {"姓名": "PAT_NAME", "主治医师": "DR_ATTENDING"}}}}
    rt = build_runtime(cfg)
    with rt.sessions() as s, s.begin():
        ensure_builtin_roles(s, rt)
        add_department(s, "1001", "心血管内科")
        add_staff(s, "D0001", "陈志远", None, "1001", ["physician"])
    yield rt, his
    rt.close()
    set_current(None)


def _count(rt) -> int:
    with rt.sessions() as s:
        return s.scalar(select(func.count()).select_from(Admission))


def test_incremental_pull_reports_bad_rows_and_takes_the_rest(hrt):
    from bingan_his_sql.models import HisSqlIssue, HisSqlState
    from bingan_his_sql.pull import pull

    rt, url = hrt
    _his_write(url, ROWS)
    rep = pull(rt, "main")
    assert rep.error is None, rep.error
    assert (rep.rows, rep.created, rep.refused_rows) == (12, 10, 2)
    assert _count(rt) == 10
    by_row = {i.row: i for i in rep.issues}
    assert set(by_row) == {"ZY202605000010", "ZY202605000011"}
    bad_icd, bad_dept = by_row["ZY202605000010"], by_row["ZY202605000011"]
    assert bad_icd.column == "JBDM（主要诊断编码）" and bad_icd.value == "XYZ"
    assert "ICD" in bad_icd.reason
    assert bad_dept.column == "CYKB（出院科别）" and "科室" in bad_dept.reason
    with rt.sessions() as s:
        adm = s.scalar(select(Admission).where(Admission.admission_no == "ZY202605000003"))
        assert adm.patient.name == "病人3" and adm.discharge_department == "1001"
        assert adm.admitted_at == dt.datetime(2026, 5, 4, 0, 0, tzinfo=dt.timezone.utc)
        assert [(sg.role, sg.staff_no) for sg in s.scalars(
            select(Signer).where(Signer.admission_id == adm.id))] == [("attending", "D0001")]
        assert s.scalar(select(func.count()).select_from(HisSqlIssue)) == 2
        state = s.get(HisSqlState, "main")
        assert (state.last_key, state.rows_total, state.last_error) == ("ZY202605000011", 12, None)
        upserts = s.scalars(select(AuditEvent.detail).where(
            AuditEvent.action == "admission.upsert")).all()
        assert len(upserts) == 10 and all('"his_sql"' in d for d in upserts)

    # nothing new: nothing read
    rep = pull(rt, "main")
    assert (rep.rows, rep.error) == (0, None)

    # the HIS fixes row 10 (its update time moves on) and adds one
    _his_write(url, [{"zyh": "ZY202605000010", "jbdm": "I21.000", "zyzd": "急性心肌梗死",
                      "update_time": T0 + dt.timedelta(days=30)}], update=True)
    _his_write(url, [_row(12, update_time=T0 + dt.timedelta(days=30))])
    rep = pull(rt, "main")
    assert (rep.rows, rep.created, rep.refused_rows) == (2, 2, 0)
    assert _count(rt) == 12
    with rt.sessions() as s:
        left = s.scalars(select(HisSqlIssue.row_key)).all()
        assert left == ["ZY202605000011"]
        assert s.scalar(select(func.count()).select_from(Patient)) == 12


def test_unusable_source_is_reported_not_half_pulled(hrt):
    from bingan_his_sql.pull import pull

    rt, url = hrt
    _his_write(url, ROWS[:3])
    st = rt.settings(HisSqlSettings)
    src = st.sources["main"]
    src.view = "no_such_view"
    rep = pull(rt, "main")
    assert "no_such_view" in rep.error and rep.rows == 0
    src.view, src.url = "v_bingan_frontpage", "postgresql+psycopg://nobody@127.0.0.1:1/x"
    rep = pull(rt, "main")
    assert rep.error and rep.rows == 0
    assert _count(rt) == 0
    with rt.sessions() as s:
        outcomes = s.scalars(select(AuditEvent.outcome).where(
            AuditEvent.action == "his_sql.pull")).all()
        assert outcomes == ["failed", "failed"]


def test_settings_are_checked():
    from bingan.core.config import ConfigError, validate_settings

    base = {"url": "mysql+pymysql://ro@his/db", "view": "v", "watermark": "w", "key": "k"}
    with pytest.raises(ConfigError, match="front-page column"):
        validate_settings("plugins.his_sql", HisSqlSettings,
                          {"sources": {"main": {**base, "columns": {"不存在的列": "x"}}}})
    with pytest.raises(ConfigError, match="view"):
        validate_settings("plugins.his_sql", HisSqlSettings,
                          {"sources": {"main": {**base, "view": "a; drop table x"}}})
    with pytest.raises(ConfigError, match="column"):
        validate_settings("plugins.his_sql", HisSqlSettings,
                          {"sources": {"main": {**base, "watermark": "w) or (1=1"}}})
