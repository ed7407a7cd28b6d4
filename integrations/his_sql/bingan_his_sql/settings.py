"""Settings of the HIS pull (``[plugins.his_sql]`` in plugins.toml).

One table per HIS view under ``sources``::

    [plugins.his_sql.sources.main]
    url = { env = "BINGAN_HIS_URL" }      # any SQLAlchemy URL (read-only account)
    view = "bingan.v_frontpage"           # [schema.]view or table
    watermark = "UPDATE_TIME"             # a column that grows when a row changes
    key = "ZYH"                           # a column unique per row (orders ties)
    [plugins.his_sql.sources.main.columns]   # front-page column -> the view's column
    病案号 = "PAT_NO"
    住院号 = "ZYH"

Front-page columns are named as in the national layout (卫统4-1 header or code: ``病案号`` or
``BAH``); a view column already named so needs no entry.
"""

from __future__ import annotations

import re

import msgspec

from bingan.core.frontpage import column_key

_IDENT = re.compile(r"^[A-Za-z_\u4e00-\u9fff][A-Za-z0-9_$#\u4e00-\u9fff]{0,63}$")


class Source(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    url: str
    view: str
    watermark: str
    key: str
    columns: dict[str, str] = msgspec.field(default_factory=dict)
    # When the view has no 住院号: make it from 病案号 and 住院次数, e.g. "ZY{mrn}{visit:02d}"
    admission_no_template: str = ""
    enabled: bool = True

    def __post_init__(self) -> None:
        parts = self.view.split(".")
        if len(parts) > 2 or not all(_IDENT.match(p) for p in parts):
            raise ValueError(f"view {self.view!r} must be [schema.]name (letters, digits, _)")
        for col in (self.watermark, self.key, *self.columns.values()):
            if not _IDENT.match(col):
                raise ValueError(f"column {col!r} is not a plain column name")
        for name in self.columns:
            if column_key(name) is None:
                raise ValueError(f"columns: {name!r} is no front-page column (use the 卫统4-1 "
                                 "header such as 病案号, or its code such as BAH)")
        if "://" not in self.url:
            raise ValueError("url must be a SQLAlchemy URL such as mysql+pymysql://user@host/db")


CHARGE_FIELDS = ("name", "amount", "quantity", "unit", "price", "spec", "category", "code",
                 "day")


class ChargeSource(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The HIS view of itemised inpatient charges (收费清单), one row per charge line, read for
    one admission at a time when the deathcase plugin asks (``charge_list`` hook)::

        [plugins.his_sql.charges]
        url = { env = "BINGAN_HIS_URL" }
        view = "bingan.v_charges"
        admission_no = "ZYH"                 # the column holding the 住院号
        [plugins.his_sql.charges.columns]    # name and amount are required
        name = "XMMC"
        amount = "JE"
        quantity = "SL"
        unit = "DW"
        price = "DJ"
        day = "FYRQ"
        category = "FYLB"
    """

    url: str
    view: str
    admission_no: str
    columns: dict[str, str]
    max_rows: int = 20000
    enabled: bool = True

    def __post_init__(self) -> None:
        parts = self.view.split(".")
        if len(parts) > 2 or not all(_IDENT.match(p) for p in parts):
            raise ValueError(f"charges.view {self.view!r} must be [schema.]name")
        unknown = set(self.columns) - set(CHARGE_FIELDS)
        if unknown:
            raise ValueError(f"charges.columns: unknown {sorted(unknown)} "
                             f"(known: {', '.join(CHARGE_FIELDS)})")
        if not {"name", "amount"} <= set(self.columns):
            raise ValueError("charges.columns: name and amount are required")
        for col in (self.admission_no, *self.columns.values()):
            if not _IDENT.match(col):
                raise ValueError(f"charges: column {col!r} is not a plain column name")
        if "://" not in self.url:
            raise ValueError("charges.url must be a SQLAlchemy URL")
        if not 1 <= self.max_rows <= 200_000:
            raise ValueError("charges.max_rows must be 1-200000")


class HisSqlSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    sources: dict[str, Source] = msgspec.field(default_factory=dict)
    # the charge-list view (deathcase's charge_list hook); None: not connected
    charges: ChargeSource | None = None
    interval_minutes: int = 15   # the scheduled pull (every enabled source)
    batch_size: int = 500        # rows read and written per transaction
    max_rows_per_run: int = 200_000  # one pull stops here; the next one goes on
    connect_timeout_seconds: int = 10

    def __post_init__(self) -> None:
        for name in self.sources:
            if not re.match(r"^[a-z0-9_-]{1,32}$", name):
                raise ValueError(f"sources.{name}: a source name is 1-32 of a-z 0-9 _ -")
        if not 1 <= self.interval_minutes <= 1440:
            raise ValueError("interval_minutes must be 1-1440")
        if not 1 <= self.batch_size <= 10_000:
            raise ValueError("batch_size must be 1-10000")
        if not self.batch_size <= self.max_rows_per_run <= 10_000_000:
            raise ValueError("max_rows_per_run must be between batch_size and 10000000")
        if not 1 <= self.connect_timeout_seconds <= 300:
            raise ValueError("connect_timeout_seconds must be 1-300")
