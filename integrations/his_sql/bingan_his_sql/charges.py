"""The charge list (收费清单) of one admission from the HIS's charge view (``[plugins.his_sql.
charges]``), for the deathcase plugin's ``charge_list`` hook: the rows whose admission-number
column is the record's 住院号, at most ``max_rows`` (more is an error, not a cut list)."""

from __future__ import annotations

import datetime as dt
import decimal
from typing import Any

import sqlalchemy as sa

from bingan.hooks.types import ChargeItem, ChargeList

from bingan_his_sql.pull import _engine
from bingan_his_sql.settings import HisSqlSettings


def _num(v: Any, what: str) -> float | None:
    if v is None or v == "":
        return None
    if isinstance(v, (int, float, decimal.Decimal)):
        return float(v)
    try:
        return float(str(v).replace(",", ""))
    except ValueError:
        raise ValueError(f"HIS 收费清单的{what}“{str(v)[:20]}”不是数字") from None


def _day(v: Any) -> dt.date | None:
    if isinstance(v, dt.datetime):
        return v.date()
    if isinstance(v, dt.date):
        return v
    if isinstance(v, str) and v.strip():
        try:
            return dt.date.fromisoformat(v.strip()[:10])
        except ValueError:
            return None
    return None


def read_charges(rt, admission_no: str) -> ChargeList | None:
    """The charge lines of ``admission_no``; None when no view is configured or it has none.
    A view that cannot be read raises ValueError with a Chinese message."""
    st = rt.settings(HisSqlSettings)
    src = st.charges
    if src is None or not src.enabled:
        return None
    schema, _, name = src.view.rpartition(".")
    cols: dict[str, sa.ColumnClause[Any]] = {k: sa.column(v) for k, v in src.columns.items()}
    table = sa.table(name, sa.column(src.admission_no), *cols.values(), schema=schema or None)
    q = (sa.select(*(c.label(k) for k, c in cols.items())).select_from(table)
         .where(sa.column(src.admission_no) == admission_no).limit(src.max_rows + 1))
    if "day" in cols:
        q = q.order_by(cols["day"])
    eng = _engine(src.url, st.connect_timeout_seconds)
    try:
        with eng.connect() as c:
            rows = c.execute(q).mappings().all()
    except sa.exc.SQLAlchemyError as exc:
        raise ValueError(f"HIS 收费清单视图无法读取（{exc.__class__.__name__}）") from None
    finally:
        eng.dispose()
    if not rows:
        return None
    if len(rows) > src.max_rows:
        raise ValueError(f"HIS 收费清单超过 {src.max_rows} 行")
    items = []
    for r in rows:
        nm = r.get("name")
        amount = _num(r.get("amount"), "金额")
        if nm is None or str(nm).strip() == "" or amount is None:
            raise ValueError("HIS 收费清单有一行没有项目名称或金额")
        items.append(ChargeItem(
            name=str(nm).strip()[:100], amount=round(amount, 2),
            quantity=_num(r.get("quantity"), "数量"), unit=str(r.get("unit") or "")[:10],
            price=_num(r.get("price"), "单价"), spec=str(r.get("spec") or "")[:40],
            category=str(r.get("category") or "")[:20], code=str(r.get("code") or "")[:40],
            day=_day(r.get("day"))))
    return ChargeList(tuple(items), source="HIS 收费视图")
