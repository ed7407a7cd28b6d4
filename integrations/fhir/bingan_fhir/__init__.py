"""bingan fhir integration: a FHIR R4 facade following IHE MHD for the hospital's CDR and
360 view (REQUIREMENTS M2), and the ``record_digitized`` push.

Hookimpls only; resources (FHIR JSON), search (parameters), service (loading, access, searches),
web (routes), push (the queued DocumentReference push) and cda (the C0032 front page) hold the
logic.
"""

from __future__ import annotations

from bingan.hooks import hookimpl
from bingan.hooks.types import PluginInfo

from bingan_fhir.settings import FhirSettings

PLUGIN = PluginInfo(name="fhir", version="0.1.0", hooks_api="1.0", settings=FhirSettings,
                    title="FHIR 接口（IHE MHD）")


@hookimpl
def register_routes():
    from bingan_fhir.web import ROUTES

    return list(ROUTES)


@hookimpl
def register_task_handlers():
    from bingan_fhir import push

    return {push.KIND: push.handle}


@hookimpl
def record_digitized(admission, document_version, rt):
    """Queue the DocumentReference push to the CDR (when ``push_url`` is set)."""
    from bingan_fhir import push

    push.queue(rt, admission.id, document_version)


@hookimpl
def register_commands(cli):
    from bingan_fhir.cli import fhir_group

    cli.add_command(fhir_group)


@hookimpl
def audit_action_labels():
    return {"fhir.search": "FHIR 查询", "fhir.retrieve": "FHIR 调阅病案文档",
            "fhir.push": "向数据中心推送病案文档", "cda.export": "导出病案首页共享文档"}
