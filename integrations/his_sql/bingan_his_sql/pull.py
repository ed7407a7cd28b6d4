"""Pulling the HIS front-page view: rows newer than the watermark, in batches, each through
``core.intake``.

A pull reads the rows whose (watermark, key) comes after the last row taken, ordered by both
(so rows sharing a watermark are never skipped at a batch boundary), at most ``batch_size``
at a time. Each batch is written in one bingan transaction, each row in a savepoint: a row the
admission rules refuse is recorded as an issue (row key, the view's column, reason, value) and
the rest go in; the watermark then moves past the batch, refused rows included (a row fixed in
the HIS gets a new watermark and comes again; its old issues are cleared when it goes in).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import json
import logging
from typing import Any, Callable

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from bingan.core import audit, intake
from bingan.core.frontpage import HEADERS, column_key, problem_column, row_to_admission
from bingan.core.models import utcnow

from bingan_his_sql.models import HisSqlIssue, HisSqlState
from bingan_his_sql.settings import HisSqlSettings

log = logging.getLogger("bingan.his_sql")
ACTOR = audit.Actor(staff_no="his_sql")
REQUIRED = ("mrn", "visit_no", "name", "admitted_at")


class PullError(RuntimeError):
    """The source cannot be pulled at all (unreachable, view or columns missing)."""


@dataclasses.dataclass(frozen=True)
class Issue:
    row: str       # the row's key value
    column: str    # the view's column (and the front-page column it stands for)
    reason: str
    value: str | None = None


@dataclasses.dataclass
class PullReport:
    source: str
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    issues: list[Issue] = dataclasses.field(default_factory=list)
    refused_rows: int = 0
    watermark: Any = None
    error: str | None = None

    def summary(self) -> str:
        if self.error:
            return f"{self.source}：拉取失败：{self.error}"
        return (f"{self.source}：读取 {self.rows} 行，新增 {self.created}，更新 {self.updated}，"
                f"无变化 {self.unchanged}，有问题 {self.refused_rows} 行；水位 {self.watermark}")


def _encode(v: Any) -> list[Any]:
    if isinstance(v, dt.datetime):
        return ["datetime", v.isoformat()]
    if isinstance(v, dt.date):
        return ["date", v.isoformat()]
    if isinstance(v, bool) or v is None:
        raise PullError(f"水位或主键列的值不能用于排序：{v!r}")
    if isinstance(v, int):
        return ["int", v]
    if isinstance(v, (float, decimal.Decimal)):
        return ["decimal", str(v)]
    return ["str", str(v)]


def _decode(pair: list[Any]) -> Any:
    kind, v = pair
    decoders: dict[str, Callable[[Any], Any]] = {
        "datetime": dt.datetime.fromisoformat, "date": dt.date.fromisoformat, "int": int,
        "decimal": decimal.Decimal, "str": str}
    return decoders[kind](v)


def _engine(url: str, timeout: int) -> sa.Engine:
    args: dict[str, Any] = {}
    if url.startswith(("mysql", "mariadb")):
        args = {"connect_timeout": timeout, "read_timeout": 600}
    elif url.startswith("postgresql"):
        args = {"connect_timeout": timeout}
    return sa.create_engine(url, connect_args=args, pool_pre_ping=True)


def mapping(src, columns: list[str]) -> dict[str, str]:
    """front-page key -> the view's column: the explicit ``columns`` first, then view columns
    named by the national layout (header or 卫统4-1 code)."""
    out: dict[str, str] = {}
    have = {c.lower(): c for c in columns}
    for name, col in src.columns.items():
        if col.lower() not in have:
            raise PullError(f"视图 {src.view} 没有列 {col}（plugins.toml 中 {name} 的映射）")
        out[column_key(name)] = have[col.lower()]
    for col in columns:
        key = column_key(col)
        if key and key not in out:
            out[key] = col
    return out


def pull(rt, name: str, *, actor: audit.Actor = ACTOR) -> PullReport:
    """Pull one source now; returns what happened (and records it)."""
    st = rt.settings(HisSqlSettings)
    src = st.sources.get(name)
    if src is None:
        raise PullError(f"未配置的数据源 {name}（[plugins.his_sql.sources.{name}]）")
    report = PullReport(name)
    engine = _engine(src.url, st.connect_timeout_seconds)
    try:
        _pull(rt, st, name, src, engine, report, actor)
    except (PullError, SQLAlchemyError, OSError) as exc:
        report.error = str(exc).splitlines()[0][:500] if str(exc) else type(exc).__name__
        log.warning("his_sql %s: %s", name, report.error)
    finally:
        engine.dispose()
    with rt.sessions() as s, s.begin():
        state = s.get(HisSqlState, name) or HisSqlState(source=name, rows_total=0)
        s.add(state)
        state.last_run_at, state.last_error = utcnow(), report.error
        audit.record(s, rt, "his_sql.pull", actor=actor,
                     outcome="failed" if report.error else "ok",
                     detail={"source": name, "rows": report.rows, "created": report.created,
                             "updated": report.updated, "unchanged": report.unchanged,
                             "refused": report.refused_rows, "error": report.error})
    return report


def _pull(rt, st, name: str, src, engine: sa.Engine, report: PullReport,
          actor: audit.Actor) -> None:
    schema, _, view = src.view.rpartition(".")
    try:
        columns = [c["name"] for c in sa.inspect(engine).get_columns(view, schema=schema or None)]
    except sa.exc.NoSuchTableError:
        raise PullError(f"HIS 数据库中没有视图或表 {src.view}") from None
    cols = mapping(src, columns)
    lower = {c.lower(): c for c in columns}
    for c in (src.watermark, src.key):
        if c.lower() not in lower:
            raise PullError(f"视图 {src.view} 没有列 {c}")
    needed = list(REQUIRED) + ([] if src.admission_no_template else ["admission_no"])
    missing = [HEADERS[k] for k in needed if k not in cols]
    if missing:
        raise PullError("视图缺少必需的列（或未在 columns 中映射）：" + "、".join(missing))
    wm_col, key_col = lower[src.watermark.lower()], lower[src.key.lower()]
    selected = sorted(set(cols.values()) | {wm_col, key_col})
    tbl = sa.table(view, *[sa.column(c) for c in selected], schema=schema or None)
    wm, key = tbl.c[wm_col], tbl.c[key_col]
    back = {HEADERS[k]: col for k, col in cols.items()}
    while report.rows < st.max_rows_per_run:
        with rt.sessions() as s:
            state = s.get(HisSqlState, name)
            mark = json.loads(state.watermark) if state and state.watermark else None
        q = sa.select(*[tbl.c[c] for c in selected]).order_by(wm, key).limit(
            min(st.batch_size, st.max_rows_per_run - report.rows))
        if mark is not None:
            last_wm, last_key = _decode(mark[0]), _decode(mark[1])
            q = q.where(sa.or_(wm > last_wm, sa.and_(wm == last_wm, key > last_key)))
        with engine.connect() as conn:
            rows = [dict(r) for r in conn.execute(q).mappings()]
        if not rows:
            break
        _write(rt, name, src, rows, cols, back, wm_col, key_col, report, actor)
        report.watermark = rows[-1][wm_col]
        if len(rows) < st.batch_size:
            break


def _write(rt, name, src, rows, cols, back, wm_col, key_col, report, actor) -> None:
    with rt.sessions() as s, s.begin():
        directory = intake.Directory(s)
        for row in rows:
            report.rows += 1
            row_key = str(row[key_col])
            values = {k: row[c] for k, c in cols.items()}
            parsed = row_to_admission(values, tz=rt.tz,
                                      admission_no_template=src.admission_no_template)
            issues: list[Issue] = []

            def col(header: str) -> str:
                his = back.get(header)
                return f"{his}（{header}）" if his and his != header else header

            if parsed.admission is None:
                issues = [Issue(row_key, col(c), r, v) for c, r, v in parsed.problems]
            else:
                source = intake.Source("his_sql", actor, ref=f"{name}:{row_key}",
                                       authority=True)
                try:
                    with s.begin_nested():
                        res = intake.record_admission(s, rt, parsed.admission, source,
                                                      directory=directory)
                except intake.IntakeError as exc:
                    issues = [Issue(row_key, col(problem_column(p.field, parsed.origin)),
                                    p.reason, p.value) for p in exc.problems]
                except IntegrityError as exc:
                    issues = [Issue(row_key, "（整行）", f"数据库拒绝：{exc.orig}"[:300])]
                else:
                    report.created += res.created
                    report.updated += (not res.created) and res.changed
                    report.unchanged += (not res.created) and not res.changed
                    s.execute(sa.delete(HisSqlIssue).where(HisSqlIssue.source == name,
                                                           HisSqlIssue.row_key == row_key))
            if issues:
                report.refused_rows += 1
                report.issues.extend(issues)
                wm_text = json.dumps(_encode(row[wm_col]))
                for i in issues:
                    s.add(HisSqlIssue(source=name, row_key=row_key[:128], watermark=wm_text,
                                      column=i.column[:128], reason=i.reason, value=i.value))
        last = rows[-1]
        state = s.get(HisSqlState, name)
        if state is None:
            state = HisSqlState(source=name, rows_total=0)
            s.add(state)
        state.watermark = json.dumps([_encode(last[wm_col]), _encode(last[key_col])])
        state.last_key = str(last[key_col])[:128]
        state.rows_total = (state.rows_total or 0) + len(rows)


def pull_all(rt) -> list[PullReport]:
    st = rt.settings(HisSqlSettings)
    return [pull(rt, n) for n, src in st.sources.items() if src.enabled]
