"""The deathcase plugin's own hook: the charge list (收费清单) of a record from the HIS.

Registered by deathcase (``PluginInfo.hookspecs``). A connector (integrations/...) that can
read the HIS's itemised charges implements it with ``@hookimpl(optionalhook=True)`` so it
also loads without deathcase; the types it returns (``ChargeList``, ``ChargeItem``) are
core's (``bingan.hooks.types``), so it imports nothing of deathcase. docs/hooks.md lists it under deathcase.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bingan.hooks import hookspec
from bingan.hooks.types import AdmissionRef, ChargeItem, ChargeList

__all__ = ["ChargeItem", "ChargeList", "charge_list"]

if TYPE_CHECKING:  # pragma: no cover - typing only
    from sqlalchemy.orm import Session

    from bingan.hooks.types import Runtime


@hookspec(firstresult=True)
def charge_list(session: Session, admission: AdmissionRef, rt: Runtime) -> ChargeList | None:
    """Return the itemised charge list (收费清单) of ``admission`` from the HIS, or None if
    this connector does not know it. *First result.* Called by the deathcase worklist when the
    record-room clerk asks for the HIS charge list; the list is rendered to PDF pages and
    merged into the record's export where the page order puts 收费清单. ``session`` is the
    caller's database session. Raise ``ValueError`` with a Chinese message when the HIS
    cannot be reached (the clerk sees it and can upload the list instead)."""
