"""The query model: a tree of conditions over front-page fields, validated and compiled to SQL.

A query is a ``Cond`` (field, op, value), a ``Group`` (``and``/``or`` over items) or a ``Not``.
Fields come from a whitelist (``FIELDS``); each knows its type, its operators and how to turn
itself into a SQLAlchemy condition on the ``admission`` table alone. Patients, diagnoses,
operations and signers become ``admission.patient_id IN (SELECT id FROM patient ...)`` /
``admission.id IN (SELECT admission_id ...)`` semi-joins over indexed columns (migration
search_0001), which the database either walks (few matches) or probes row by row while it
reads admissions in sort order (many matches, see results.py).

Semantics are two-valued: a comparison with an empty (NULL) field is false, ``ne`` is ``NOT eq``
and ``NOT`` is plain negation, so "not died" includes stays whose discharge way is not filled in.
The tests check every field against a brute-force filter written from this paragraph.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field as dc_field
from typing import Any, Callable, Literal, Union

import msgspec
from sqlalchemy import and_, false, func, not_, or_, select, true, union_all
from sqlalchemy.sql.elements import ColumnElement

from bingan.core import identifiers
from bingan.core.models import Admission, Diagnosis, Operation, Patient, Signer
from bingan.core.records import DISCHARGE_WAYS, PAYMENT_METHODS, SEXES, SIGNER_ROLES
from bingan_search.models import SearchNameKey, SearchTerm
from bingan_search.names import has_han, normalize_key, prefix_upper_bound

# Table columns, not ORM attributes: the statements stay Core statements, which SQLAlchemy
# executes with a fraction of the ORM's per-query overhead (it shows at 50 ms budgets).
ADM = Admission.__table__
A = ADM.c
P = Patient.__table__.c
D = Diagnosis.__table__.c
O = Operation.__table__.c
S = Signer.__table__.c
K = SearchNameKey.__table__.c
T = SearchTerm.__table__.c

MAX_DEPTH = 8
MAX_CONDITIONS = 50
MAX_IN_VALUES = 1000
SMALL_INT_RANGE = 32  # ``between`` over fewer whole numbers compiles to IN (see _compare)


class Cond(msgspec.Struct, tag="cond", forbid_unknown_fields=True):
    """One condition: ``field`` (see FIELDS) ``op`` ``value``."""

    field: str
    op: str
    value: str | int | float | bool | list[str | int | float] | None = None


class Group(msgspec.Struct, tag="group", forbid_unknown_fields=True):
    """All (``and``) or any (``or``) of the items."""

    op: Literal["and", "or"] = "and"
    items: list[Node] = msgspec.field(default_factory=list)


class Not(msgspec.Struct, tag="not", forbid_unknown_fields=True):
    """The negation of one item."""

    item: Node


Node = Union[Cond, Group, Not]


class QueryError(ValueError):
    """A query names an unknown field or operator, or a value of the wrong kind (message in
    Chinese, shown to the user)."""


OP_LABELS: dict[str, str] = {
    "eq": "等于", "ne": "不等于", "prefix": "开头是", "contains": "包含", "in": "属于其一",
    "gt": "大于", "ge": "大于等于", "lt": "小于", "le": "小于等于", "between": "介于",
    "is_null": "为空", "not_null": "不为空",
}
NO_VALUE_OPS = {"is_null", "not_null"}

OPERATION_LEVELS: dict[str, str] = {"1": "一级", "2": "二级", "3": "三级", "4": "四级"}


# ---------------------------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------------------------


def normalize_code(code: str) -> str:
    """ICD codes as stored: first letter upper case, the placeholder ``x`` lower case (national
    clinical editions write ``I10.x00x002``, ``43.7x00``), other letters upper case."""
    code = code.strip()
    if not code:
        return code
    rest = "".join("x" if c in "xX" else c.upper() for c in code[1:])
    return code[0].upper() + rest


def parse_day(value: Any, label: str) -> dt.date:
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip()[:10])
        except ValueError:
            pass
    raise QueryError(f"{label}：日期格式应为 YYYY-MM-DD，收到 {value!r}")


def day_start(day: dt.date, tz: dt.tzinfo) -> dt.datetime:
    """Midnight of a hospital date (``tz``), as an aware UTC time."""
    return dt.datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(dt.timezone.utc)


def split_values(value: Any) -> list[str]:
    """A list value, or a string of values separated by commas, spaces or Chinese commas."""
    if isinstance(value, list):
        items = [str(v).strip() for v in value]
    elif isinstance(value, str):
        items = re.split(r"[\s,，、;；]+", value)
    else:
        items = [str(value)]
    return [v for v in items if v]


# ---------------------------------------------------------------------------------------------
# Compilation helpers
# ---------------------------------------------------------------------------------------------


@dataclass
class Ctx:
    """What compilation needs to know: the hospital's time zone (a typed date means its
    day), the SQL dialect (prefix matches differ), which correlated semi-joins must stay
    per-row probes (``fence``, see _compile_cond), and the reading tier of a pinyin name."""

    tz: dt.tzinfo
    dialect: str = "sqlite"
    fence: Callable[[Cond], bool] | None = None
    # the reading tier of pinyin name conditions (``ranked_tiers``): 0 only names found by
    # their common reading, 1 only names found by nothing but a rarer one; None: every name
    name_tier: int | None = None


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def prefix_match(ctx: Ctx, col, prefix: str) -> ColumnElement[bool]:
    """``col`` starts with ``prefix``, in a form the dialect answers from a B-tree index:
    a range on SQLite (binary collation), ``LIKE 'p%'`` on PostgreSQL (``text_pattern_ops``)."""
    if ctx.dialect == "postgresql":
        return col.like(_escape_like(prefix) + "%")
    return and_(col >= prefix, col < prefix_upper_bound(prefix))


def contains_match(col, text: str) -> ColumnElement[bool]:
    return col.like("%" + _escape_like(text) + "%", escape="\\")


def _guard(col, expr) -> ColumnElement[bool]:
    """Two-valued logic: a comparison with NULL is false, never unknown."""
    return and_(col.is_not(None), expr)


# ---------------------------------------------------------------------------------------------
# Field specs
# ---------------------------------------------------------------------------------------------

TEXT_OPS = ("eq", "ne", "prefix", "contains", "in", "is_null", "not_null")
CODE_OPS = ("prefix", "eq", "ne", "in")
NUM_OPS = ("eq", "ne", "gt", "ge", "lt", "le", "between", "is_null", "not_null")
DATE_OPS = ("between", "eq", "ge", "le", "is_null", "not_null")
ENUM_OPS = ("eq", "ne", "in", "is_null", "not_null")
ID_OPS = ("eq", "ne", "in")
ID_FIELDS = {"mrn", "admission_no"}


@dataclass(frozen=True)
class FieldSpec:
    """A searchable front-page field."""

    name: str
    label: str
    group: str
    kind: str  # text code name pinyin int number date enum bool staff
    ops: tuple[str, ...]
    column: str = ""  # the column the condition applies to (of ``table``)
    table: Any = None  # admission (plain), or patient / diagnosis / operation / signer
    extra: Callable[[Any], ColumnElement[bool]] | None = None  # e.g. kind = 'main', role
    choices: dict[str, str] | str | None = None  # static {code: label} or "departments"
    compile_fn: Callable[..., ColumnElement[bool]] | None = dc_field(default=None)
    hint: str = ""

    @property
    def semi_join(self) -> bool:
        """Conditions on another table than admission become semi-joins."""
        return self.table is not None and self.table is not ADM


def _scalar(spec: FieldSpec, op: str, value: Any) -> Any:
    label = spec.label
    if spec.kind in ("int", "number"):
        try:
            n = float(value) if spec.kind == "number" else int(str(value).strip())
        except (TypeError, ValueError):
            raise QueryError(f"{label}：应为数字，收到 {value!r}") from None
        return n
    if spec.kind == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("1", "true", "是", "yes", "y"):
            return True
        if text in ("0", "false", "否", "no", "n"):
            return False
        raise QueryError(f"{label}：应为 是/否，收到 {value!r}")
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        raise QueryError(f"{label}：应为文字，收到 {value!r}")
    text = str(value).strip()
    if not text:
        raise QueryError(f"{label}：值不能为空")
    if spec.kind == "code":
        text = normalize_code(text)
    if spec.kind == "staff" or spec.name in ID_FIELDS:
        text = identifiers.clean(text)  # zy2024020025, d0001, full-width digits, as typed
    if spec.kind == "enum" and isinstance(spec.choices, dict) and text not in spec.choices:
        raise QueryError(f"{label}：没有代码 {text}（可选：{'、'.join(spec.choices)}）")
    if spec.kind == "pinyin":
        key = normalize_key(text)
        if not key:
            raise QueryError(f"{label}：请输入拼音字母，如 zhangsan 或 zs")
        return key
    return text


def _values(spec: FieldSpec, op: str, value: Any) -> Any:
    """Validate and normalize the value of one condition."""
    if op in NO_VALUE_OPS:
        return None
    if value is None:
        raise QueryError(f"{spec.label}：请填写值")
    if spec.kind == "date":
        if op == "between":
            items = split_values(value) if not isinstance(value, list) else value
            if len(items) != 2:
                raise QueryError(f"{spec.label}：介于需要两个日期（起、止）")
            a, b = parse_day(items[0], spec.label), parse_day(items[1], spec.label)
            if b < a:
                raise QueryError(f"{spec.label}：结束日期早于开始日期")
            return (a, b)
        return parse_day(value, spec.label)
    if op == "in":
        items = split_values(value)
        if not items:
            raise QueryError(f"{spec.label}：请至少填写一个值")
        if len(items) > MAX_IN_VALUES:
            raise QueryError(f"{spec.label}：最多 {MAX_IN_VALUES} 个值")
        return [_scalar(spec, "eq", v) for v in items]
    if op == "between":
        items = value if isinstance(value, list) else split_values(value)
        if len(items) != 2:
            raise QueryError(f"{spec.label}：介于需要两个值（下限、上限）")
        lo, hi = _scalar(spec, op, items[0]), _scalar(spec, op, items[1])
        if hi < lo:
            raise QueryError(f"{spec.label}：上限小于下限")
        return (lo, hi)
    if isinstance(value, list):
        raise QueryError(f"{spec.label}：{OP_LABELS[op]}只接受一个值")
    return _scalar(spec, op, value)


def _compare(ctx: Ctx, spec: FieldSpec, col, op: str, v: Any) -> ColumnElement[bool]:
    """The positive (NULL-is-false) form of ``col op v``; ``ne`` is handled by the caller."""
    if op == "is_null":
        return col.is_(None)
    if op == "not_null":
        return col.is_not(None)
    if spec.kind == "date":
        is_datetime = spec.name not in ("operation_date", "birth_date")

        def lo(d: dt.date):
            return day_start(d, ctx.tz) if is_datetime else d

        def hi(d: dt.date):  # exclusive upper bound: the next day
            return (day_start(d + dt.timedelta(days=1), ctx.tz) if is_datetime
                    else d + dt.timedelta(days=1))

        if op == "between":
            return _guard(col, and_(col >= lo(v[0]), col < hi(v[1])))
        if op == "eq":
            return _guard(col, and_(col >= lo(v), col < hi(v)))
        if op == "ge":
            return _guard(col, col >= lo(v))
        if op == "le":
            return _guard(col, col < hi(v))
    if spec.name == "mrn" and op in ("eq", "in"):
        # an MRN typed without its leading zeros: every zero-padded width too
        values = [v] if op == "eq" else v
        wanted = list(dict.fromkeys(c for x in values for c in identifiers.mrn_candidates(x)))
        return _guard(col, col == wanted[0] if len(wanted) == 1 else col.in_(wanted))
    if op == "eq":
        return _guard(col, col == v)
    if op == "in":
        return _guard(col, col.in_(v))
    if op == "prefix":
        return _guard(col, prefix_match(ctx, col, v))
    if op == "contains":
        return _guard(col, contains_match(col, v))
    if op == "between":
        if spec.kind == "int" and v[1] - v[0] < SMALL_INT_RANGE:
            # a short range of whole numbers (an age group) as a list of values: an index
            # led by the column then seeks each value and keeps using the next column (age
            # 60-70 with a length of stay over 20 reads only those entries)
            return _guard(col, col.in_(list(range(int(v[0]), int(v[1]) + 1))))
        return _guard(col, and_(col >= v[0], col <= v[1]))
    ops = {"gt": col.__gt__, "ge": col.__ge__, "lt": col.__lt__, "le": col.__le__}
    if op in ops:
        return _guard(col, ops[op](v))
    raise QueryError(f"{spec.label}：不支持的运算 {op}")


def _term_match(ctx: Ctx, kind: str, col, op: str, v: Any) -> ColumnElement[bool]:
    """Name conditions on diagnoses/operations: ``contains`` goes through the small term table
    (distinct names), then hits the (name, ...) index with equality."""
    if op == "contains":
        terms = select(T.text).where(T.kind == kind, contains_match(T.text, v))
        return col.in_(terms)
    return _compare(ctx, FieldSpec("", "", "", "text", ()), col, op, v)


def _pinyin(ctx: Ctx, spec: FieldSpec, cols, op: str, v: str) -> ColumnElement[bool]:
    """A name whose keys include one starting with ``v``; in ``ctx.name_tier`` 0 a key of
    the common reading, in tier 1 only keys of rarer readings (``names.key_ranks``)."""
    match = prefix_match(ctx, K.key, v)
    if ctx.dialect == "postgresql":
        # a semi-join on the name: PostgreSQL may lead with the key range or probe the
        # (name, key) primary key per patient; never a per-row scan of a large name set
        def probe(*extra):
            return (select(K.name).where(K.name == cols.name, match, *extra)
                    .correlate_except(K.key.table).exists())
        if ctx.name_tier is None:
            return probe()
        if ctx.name_tier == 0:
            return probe(K.rank == 0)
        return and_(probe(), not_(probe(K.rank == 0)))
    if ctx.name_tier is None:
        return cols.name.in_(select(K.name).where(match))
    common = select(K.name).where(match, K.rank == 0)
    if ctx.name_tier == 0:
        return cols.name.in_(common)
    return cols.name.in_(select(K.name).where(match).group_by(K.name)
                         .having(func.min(K.rank) > 0))


NAME_TIERS = (0, 1)  # common reading first, then names only a rarer reading finds


def ranked_tiers(node: Node) -> bool:
    """Whether results are listed by reading tier (``Ctx.name_tier``): the query holds one
    pinyin name condition, at its top level (alone or in an ``and``), so a tier narrows the
    whole result; under OR or NOT a tier would change what matches, not only the order."""
    items = node.items if isinstance(node, Group) and node.op == "and" else [node]
    top = [i for i in items if isinstance(i, Cond) and i.field == "name_pinyin"
           and i.op == "prefix"]

    def count(n: Node) -> int:
        if isinstance(n, Cond):
            return int(n.field == "name_pinyin")
        if isinstance(n, Not):
            return count(n.item)
        return sum(count(i) for i in n.items)
    return len(top) == 1 and count(node) == 1


def _is_main(cols) -> ColumnElement[bool]:
    return cols.kind == "main"


def _role(role: str):
    def extra(cols) -> ColumnElement[bool]:
        return cols.role == role
    return extra


def _build_fields() -> dict[str, FieldSpec]:
    PT, DX, OP, SG = P.id.table, D.id.table, O.id.table, S.id.table
    f: list[FieldSpec] = [
        FieldSpec("mrn", "病案号", "患者", "text", ID_OPS, "mrn", PT),
        FieldSpec("patient_name", "姓名", "患者", "text", ("eq", "prefix", "contains", "in"),
                  "name", PT),
        FieldSpec("name_pinyin", "姓名拼音/首字母", "患者", "pinyin", ("prefix",), "name", PT,
                  compile_fn=_pinyin, hint="全拼或首字母，如 zhangsan、zs；多音字姓氏各读音都可"),
        FieldSpec("sex", "性别", "患者", "enum", ENUM_OPS, "sex", PT, choices=SEXES),
        FieldSpec("birth_date", "出生日期", "患者", "date", DATE_OPS, "birth_date", PT),
        FieldSpec("admission_no", "住院号", "住院", "text", ID_OPS, "admission_no", ADM),
        FieldSpec("visit_no", "住院次数", "住院", "int", NUM_OPS, "visit_no", ADM),
        FieldSpec("admitted_at", "入院日期", "住院", "date", DATE_OPS, "admitted_at", ADM),
        FieldSpec("discharged_at", "出院日期", "住院", "date", DATE_OPS, "discharged_at", ADM),
        FieldSpec("admit_department", "入院科室", "住院", "enum", ENUM_OPS, "admit_department",
                  ADM, choices="departments"),
        FieldSpec("discharge_department", "出院科室", "住院", "enum", ENUM_OPS,
                  "discharge_department", ADM, choices="departments"),
        FieldSpec("ward", "病区", "住院", "text", TEXT_OPS, "ward", ADM),
        FieldSpec("discharge_way", "离院方式", "住院", "enum", ENUM_OPS, "discharge_way", ADM,
                  choices=DISCHARGE_WAYS),
        FieldSpec("payment_method", "医疗付费方式", "住院", "enum", ENUM_OPS, "payment_method",
                  ADM, choices=PAYMENT_METHODS),
        FieldSpec("age_years", "年龄（岁）", "住院", "int", NUM_OPS, "age_years", ADM),
        FieldSpec("los_days", "住院天数", "住院", "int", NUM_OPS, "los_days", ADM),
        FieldSpec("readmission_31d", "31天内再住院", "住院", "bool", ("eq",), "readmission_31d",
                  ADM),
        FieldSpec("total_cost", "总费用（元）", "住院", "number", NUM_OPS, "total_cost", ADM),
        FieldSpec("diagnosis_code", "诊断编码（任一诊断）", "诊断", "code", CODE_OPS, "code", DX,
                  hint="ICD-10，可只填前几位，如 K35"),
        FieldSpec("main_diagnosis_code", "主要诊断编码", "诊断", "code", CODE_OPS, "code", DX,
                  extra=_is_main),
        FieldSpec("diagnosis_name", "诊断名称（任一诊断）", "诊断", "dxname", ("contains", "eq"),
                  "name", DX),
        FieldSpec("main_diagnosis_name", "主要诊断名称", "诊断", "dxname", ("contains", "eq"),
                  "name", DX, extra=_is_main),
        FieldSpec("operation_code", "手术操作编码", "手术", "code", CODE_OPS, "code", OP,
                  hint="ICD-9-CM-3，可只填前几位，如 47.0"),
        FieldSpec("operation_name", "手术操作名称", "手术", "opname", ("contains", "eq"), "name",
                  OP),
        FieldSpec("operation_level", "手术级别", "手术", "enum", ("eq", "in"), "level", OP,
                  choices=OPERATION_LEVELS),
        FieldSpec("operation_date", "手术日期", "手术", "date", ("between", "eq", "ge", "le"),
                  "op_date", OP),
        FieldSpec("surgeon_no", "术者工号", "手术", "staff", ("eq", "in"), "surgeon_no", OP),
        FieldSpec("anaesthesia", "麻醉方式", "手术", "text", ("eq",), "anaesthesia", OP),
        FieldSpec("signer_any", "签名人工号（任一角色）", "签名", "staff", ("eq", "in"), "staff_no",
                  SG),
    ]
    for role, label in SIGNER_ROLES.items():
        f.append(FieldSpec(f"signer_{role}", f"{label}工号", "签名", "staff", ("eq", "in"),
                           "staff_no", SG, extra=_role(role)))
    return {x.name: x for x in f}


FIELDS: dict[str, FieldSpec] = _build_fields()


# ---------------------------------------------------------------------------------------------
# Validation and compilation
# ---------------------------------------------------------------------------------------------


@dataclass
class Checked:
    """A validated condition: spec, op and the normalized value."""

    spec: FieldSpec
    op: str
    value: Any


def check_cond(c: Cond) -> Checked:
    spec = FIELDS.get(c.field)
    if spec is None:
        raise QueryError(f"不能按字段 {c.field!r} 检索")
    if c.op not in spec.ops:
        allowed = "、".join(f"{o}（{OP_LABELS[o]}）" for o in spec.ops)
        raise QueryError(f"{spec.label}：不支持运算 {c.op!r}，可用 {allowed}")
    return Checked(spec, c.op, _values(spec, c.op, c.value))


def validate(node: Node) -> Node:
    """Check a whole tree (fields, operators, values, size); raises QueryError."""
    count = 0

    def walk(n: Node, depth: int) -> None:
        nonlocal count
        if depth > MAX_DEPTH:
            raise QueryError(f"条件嵌套过深（最多 {MAX_DEPTH} 层）")
        if isinstance(n, Cond):
            count += 1
            check_cond(n)
        elif isinstance(n, Group):
            for item in n.items:
                walk(item, depth + 1)
        elif isinstance(n, Not):
            walk(n.item, depth + 1)
        else:  # pragma: no cover - msgspec already refuses other types
            raise QueryError("无法识别的条件")
    walk(node, 0)
    if count == 0:
        raise QueryError("请至少填写一个检索条件")
    if count > MAX_CONDITIONS:
        raise QueryError(f"条件过多（最多 {MAX_CONDITIONS} 个）")
    return node


def _link(spec: FieldSpec, cols) -> tuple[Any, Any]:
    """(column of the other table, admission column) that join it to the admission."""
    if spec.table is P.id.table:
        return cols.id, A.patient_id
    return cols.admission_id, A.id


def _on(ctx: Ctx, spec: FieldSpec, cols, op: str, v: Any) -> ColumnElement[bool]:
    """The condition on one row of the field's table (``cols``: that table or an alias)."""
    if spec.compile_fn is not None:
        cond = spec.compile_fn(ctx, spec, cols, op, v)
    elif spec.kind in ("dxname", "opname"):
        cond = _term_match(ctx, "dx" if spec.kind == "dxname" else "op", cols[spec.column],
                           op, v)
    else:
        cond = _compare(ctx, spec, cols[spec.column], op, v)
    return and_(cond, spec.extra(cols)) if spec.extra is not None else cond


# The ten commonest surnames, about 2-7 % of the population each (public census figures).
COMMON_SURNAMES = frozenset("王李张刘陈杨黄赵吴周")
COMMON_SURNAME_PINYIN = frozenset({"wang", "li", "zhang", "liu", "chen", "yang", "huang", "zhao",
                                   "wu", "zhou", "w", "l", "z", "c", "y", "h"})


def is_broad(c: Cond) -> bool:
    """Whether a condition on another table may match a large share of the records (a
    common surname, one pinyin letter, an ICD chapter, a two-character diagnosis word, a sex,
    a birth-date range ...). Only conditions known to be narrow say no. Read in sort order, a
    broad condition is cheaper probed row by row than collected as a set (results.page_ids)."""
    v = c.value.strip() if isinstance(c.value, str) else ""
    exact = c.op in ("eq", "in")
    if c.field == "mrn" or c.field.startswith("signer_") or c.field == "surgeon_no":
        return not exact
    if c.field == "patient_name":
        return not (exact or (c.op == "prefix" and v not in COMMON_SURNAMES))
    if c.field == "name_pinyin":
        key = normalize_key(v)
        return len(key) <= 2 or key in COMMON_SURNAME_PINYIN
    if c.field.endswith("_code"):
        return not (exact or (c.op == "prefix" and len(v) >= 3))
    if c.field.endswith("_name"):  # diagnosis / operation names
        return not (c.op == "eq" or (c.op == "contains" and len(v) >= 3))
    return True


def _compile_cond(ctx: Ctx, c: Cond, correlated, nested: bool) -> ColumnElement[bool]:
    chk = check_cond(c)
    spec, op, v = chk.spec, chk.op, chk.value
    negate = op == "ne"
    if negate:
        op = "eq"
    if spec.semi_join:
        cols = spec.table.c
        key, adm_key = _link(spec, cols)
        if correlated(c, nested):  # probed row by row: one index seek per admission read
            probe = select(key).where(key == adm_key, _on(ctx, spec, cols, op, v))
            if ctx.dialect == "postgresql" and ctx.fence is not None and ctx.fence(c):
                # PostgreSQL turns an EXISTS it cannot pull up into an alternative "hashed
                # SubPlan" and picks it from the estimated number of outer rows, which ignores
                # the LIMIT of a page read in index order: it would build the whole set first.
                # OFFSET 0 keeps the subquery as written (a probe per admission read).
                probe = probe.offset(0)
            expr = probe.correlate_except(spec.table).exists()
        else:  # a set, materialized once
            expr = adm_key.in_(select(key).where(_on(ctx, spec, cols, op, v)))
    else:
        expr = _compare(ctx, spec, spec.table.c[spec.column], op, v)
    return not_(expr) if negate else expr


def _never(c: Cond, nested: bool) -> bool:
    return False


_ANCHOR_FIELDS = {"admitted_at", "discharged_at", "admission_no", "discharge_department",
                  "admit_department"}


def has_anchor(node: Node) -> bool:
    """Whether a top-level ``and`` member can lead the search by an index: a semi-join, or a
    date range, admission number or department."""
    items = node.items if isinstance(node, Group) and node.op == "and" else [node]
    for i in items:
        spec = FIELDS.get(i.field) if isinstance(i, Cond) else None
        if spec is None or i.op in ("ne", "is_null", "not_null"):
            continue
        if spec.semi_join or spec.name in _ANCHOR_FIELDS:
            return True
    return False


# Admission columns whose own index can lead a count (migrations search_0001/0002).
_LEADING_FIELDS = _ANCHOR_FIELDS | {"age_years"}


def _leads(item: Node) -> bool:
    """A top-level condition on an admission column with its own index."""
    return (isinstance(item, Cond) and item.field in _LEADING_FIELDS
            and item.op not in ("ne", "is_null", "not_null"))


def probe_broad(node: Node):
    """Like ``default_probe``, and broad conditions (``is_broad``) are probed row by row
    wherever they are: for reading an index of admissions (a count led by an admission
    condition, a page read in sort order) rather than collecting a large set."""
    default = default_probe(node)

    def probe(c: Cond, nested: bool) -> bool:
        return is_broad(c) or default(c, nested)
    return probe


def always_probe(c: Cond, nested: bool) -> bool:
    return True


def default_probe(node: Node):
    """How semi-joins compile by default: as sets (``IN``), except under OR / NOT when another
    condition can lead (``has_anchor``): there they become ``EXISTS`` probes of the rows that
    condition found. A set under OR would otherwise invite SQLite to walk the whole set
    (MULTI-INDEX OR) and PostgreSQL to build a hashed SubPlan, which, once larger than
    work_mem, is scanned linearly for every row."""
    if not has_anchor(node):
        return _never

    def probe(c: Cond, nested: bool) -> bool:
        return nested
    return probe


def _set_member(node: Node) -> bool:
    """A positive condition on diagnoses, operations or signers (a set of admission ids)."""
    if not isinstance(node, Cond) or node.op in ("ne", "is_null", "not_null"):
        return False
    spec = FIELDS.get(node.field)
    return spec is not None and spec.semi_join and spec.table is not P.id.table


def compile_node(ctx: Ctx, node: Node, *, correlated=_never,
                 nested: bool = False) -> ColumnElement[bool]:
    """The WHERE condition of a validated tree, over the ``admission`` table. Conditions on
    other tables are semi-joins: sets (``IN``, materialized once) unless
    ``correlated(cond, nested)`` says to probe them row by row (``EXISTS``); ``nested`` is
    true under an OR or a NOT."""
    if isinstance(node, Cond):
        return _compile_cond(ctx, node, correlated, nested)
    if isinstance(node, Not):
        return not_(compile_node(ctx, node.item, correlated=correlated, nested=True))
    inner = nested or (node.op == "or" and len(node.items) > 1)
    if node.op == "or" and len(node.items) > 1 and all(
            _set_member(i) and not correlated(i, inner) for i in node.items):
        # "any of these diagnoses/operations/signers": one set (UNION ALL), one semi-join,
        # instead of an OR of sets that neither database can lead with
        sets = []
        for i in node.items:
            chk = check_cond(i)
            cols = chk.spec.table.c
            sets.append(select(cols.admission_id).where(_on(ctx, chk.spec, cols, chk.op,
                                                            chk.value)))
        return A.id.in_(union_all(*sets))
    parts = [compile_node(ctx, i, correlated=correlated, nested=inner) for i in node.items]
    if not parts:
        return true() if node.op == "and" else false()
    if len(parts) == 1:
        return parts[0]
    return and_(*parts) if node.op == "and" else or_(*parts)


# Which top-level condition drives a count, best first (an exact number beats a broad range).
_DRIVER_RANK = {"mrn": 0, "patient_name": 1, "surgeon_no": 2, "signer_any": 3}


@dataclass
class Driver:
    """A count's driving condition: ``ids`` selects the matching admission ids (once each for
    a patient condition, once per matching row for diagnoses, operations, signers); ``rest``
    is the WHERE of the other top-level members (None if there are none)."""

    ids: Any
    rest: ColumnElement[bool] | None
    on_patient: bool  # the condition is on the patient (no duplicates to remove)
    keys: Any = None  # SELECT of the semi-join's set (patient ids or admission ids)


def driver(ctx: Ctx, node: Node) -> Driver | None:
    """For counting: one top-level ``and`` condition on another table, as a SELECT of the
    matching admission ids (each once), and the WHERE of the other members (None if none).

    SQLite materializes a whole ``IN (SELECT ...)`` set before using it, so counting
    "diagnosis code starts with J" would read every such diagnosis; read as a join that
    streams from the condition's index, the count stops after ``count_limit`` admissions.
    An admission number in the query is better still: then there is no driver. Nor is there
    one when the best candidate is broad (``is_broad``) and an admission condition with an
    index of its own (a date range, a department, an age range) is there to lead: the count
    then reads that index and probes the broad condition per admission."""
    items = list(node.items) if isinstance(node, Group) and node.op == "and" else [node]
    candidates = []
    for i, item in enumerate(items):
        if not isinstance(item, Cond):
            continue
        spec = FIELDS.get(item.field)
        if spec is None:
            continue
        if spec.name == "admission_no" and item.op in ("eq", "in"):
            return None
        if spec.semi_join and item.op not in ("ne", "is_null"):
            candidates.append((_DRIVER_RANK.get(spec.name, 5), i, item, spec))
    if not candidates:
        return None
    _, i, item, spec = min(candidates, key=lambda c: (c[0], c[1]))
    if is_broad(item) and any(_leads(x) for x in items):
        # a broad condition (a sex, one pinyin letter ...) next to an admission condition
        # with an index of its own: that index leads, the broad one is probed per row
        return None
    chk = check_cond(item)
    cols = spec.table.c
    if spec.table is P.id.table:
        # one row per admission of each matching patient
        ids = (select(A.id.label("id")).select_from(spec.table.join(A.id.table,
                                                                    A.patient_id == cols.id))
               .where(_on(ctx, spec, cols, chk.op, chk.value)))
    else:
        # one row per matching diagnosis: an admission may come more than once (count())
        ids = (select(cols.admission_id.label("id"))
               .where(_on(ctx, spec, cols, chk.op, chk.value)))
    rest = items[:i] + items[i + 1:]
    key, _ = _link(spec, cols)
    return Driver(ids, compile_node(ctx, Group("and", rest), correlated=default_probe(node))
                  if rest else None,
                  spec.table is P.id.table,
                  select(key).where(_on(ctx, spec, cols, chk.op, chk.value)))


def bounded_dates(node: Node) -> set[str]:
    """The admission date fields (``admitted_at``, ``discharged_at``) that every match must
    have in a range (top-level ``and`` members): their index bounds the result."""
    items = node.items if isinstance(node, Group) and node.op == "and" else [node]
    return {i.field for i in items if isinstance(i, Cond)
            and i.field in ("admitted_at", "discharged_at")
            and i.op in ("between", "eq", "ge", "le")}


def describe(node: Node, departments: dict[str, str] | None = None) -> str:
    """A readable Chinese rendering of a tree (for the page and the audit log);
    ``departments`` (code -> name) names the departments in department conditions."""
    if isinstance(node, Cond):
        spec = FIELDS.get(node.field)
        label = spec.label if spec else node.field
        op = OP_LABELS.get(node.op, node.op)
        if node.op in NO_VALUE_OPS:
            return f"{label} {op}"
        value = node.value
        if isinstance(value, list):
            value = "、".join(str(v) for v in value)
        if spec and isinstance(spec.choices, dict) and isinstance(value, str):
            value = "、".join(f"{v}{spec.choices.get(v, '')}" for v in split_values(value))
        elif spec and spec.choices == "departments" and departments and isinstance(value, str):
            value = "、".join(departments.get(v, v) for v in split_values(value))
        if isinstance(value, bool):
            value = "是" if value else "否"
        return f"{label} {op} {value}"
    if isinstance(node, Not):
        return f"非（{describe(node.item, departments)}）"
    joiner = " 且 " if node.op == "and" else " 或 "
    inner = joiner.join(describe(i, departments) for i in node.items)
    return f"（{inner}）" if len(node.items) > 1 else inner


def decode(data: bytes | str) -> Node:
    """Parse a query from JSON; QueryError with the reason when it is malformed."""
    try:
        node = msgspec.json.decode(data, type=Node)
    except msgspec.ValidationError as exc:
        raise QueryError(f"检索条件格式错误：{exc}") from exc
    except msgspec.DecodeError as exc:
        raise QueryError(f"检索条件不是合法的 JSON：{exc}") from exc
    return validate(node)


def encode(node: Node) -> str:
    return msgspec.json.encode(node).decode()


def name_condition(text: str) -> Cond:
    """The simple search's name box: Chinese text is a name prefix, Latin letters pinyin."""
    text = text.strip()
    if has_han(text):
        return Cond("patient_name", "prefix", text)
    return Cond("name_pinyin", "prefix", text)
