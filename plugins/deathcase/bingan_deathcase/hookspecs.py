"""The deathcase plugin's own hook: the charge list (收费清单) of a record from the HIS.

Registered by deathcase (``PluginInfo.hookspecs``). A connector (integrations/...) that can
read the HIS's itemised charges implements it with ``@hookimpl(optionalhook=True)`` so it
also loads without deathcase. docs/hooks.md lists it under deathcase.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bingan.hooks import hookspec
from bingan.hooks.types import AdmissionRef

if TYPE_CHECKING:  # pragma: no cover - typing only
    from sqlalchemy.orm import Session

    from bingan.hooks.types import Runtime


@dataclass(frozen=True)
class ChargeItem:
    """One line of an itemised inpatient charge list."""

    name: str
    amount: float
    quantity: float | None = None
    unit: str = ""
    price: float | None = None
    spec: str = ""
    category: str = ""
    code: str = ""
    day: dt.date | None = None


@dataclass(frozen=True)
class ChargeList:
    """A record's charge list; ``total`` is the sum of the items' amounts."""

    items: tuple[ChargeItem, ...]
    source: str = "HIS"

    @property
    def total(self) -> float:
        return round(sum(i.amount for i in self.items), 2)


@hookspec(firstresult=True)
def charge_list(session: Session, admission: AdmissionRef, rt: Runtime) -> ChargeList | None:
    """Return the itemised charge list (收费清单) of ``admission`` from the HIS, or None if
    this connector does not know it. *First result.* Called by the deathcase worklist when the
    record-room clerk asks for the HIS charge list; the list is rendered to PDF pages and
    merged into the record's export where the page order puts 收费清单. ``session`` is the
    caller's database session. Raise ``ValueError`` with a Chinese message when the HIS
    cannot be reached (the clerk sees it and can upload the list instead)."""
