"""bingan hl7v2 integration: ADT over MLLP from the HIS (REQUIREMENTS M2, feeding M6).

Hookimpls only; mapping (message -> admission), apply (events, de-duplication, ACKs), server
(the asyncio MLLP listener) and cli hold the logic.
"""

from __future__ import annotations

from pathlib import Path

from bingan.hooks import hookimpl
from bingan.hooks.types import PluginInfo

from bingan_hl7v2.settings import Hl7Settings

HERE = Path(__file__).parent

PLUGIN = PluginInfo(
    name="hl7v2", version="0.1.0", hooks_api="1.0", settings=Hl7Settings,
    migrations=HERE / "migrations" / "versions", title="HL7 ADT 接口",
)


@hookimpl
def register_commands(cli):
    from bingan_hl7v2.cli import hl7_group

    cli.add_command(hl7_group)


@hookimpl
def audit_action_labels():
    return {"hl7.reject": "拒收 HL7 消息"}
