"""bingan his_sql integration: a scheduled pull of the HIS front-page views (病案首页) through
any SQLAlchemy URL (REQUIREMENTS M2), incremental by a watermark column, every row through
``core.intake``; refused rows are reported (row, column, reason) and the rest go in.

Hookimpls only; pull (the reading and writing), cli and models hold the logic.
"""

from __future__ import annotations

from pathlib import Path

from bingan.hooks import hookimpl
from bingan.hooks.types import JobSpec, PluginInfo

from bingan_his_sql.settings import HisSqlSettings
from bingan.hooks.types import Runtime

HERE = Path(__file__).parent

PLUGIN = PluginInfo(name="his_sql", version="0.1.0", hooks_api="1.0", settings=HisSqlSettings,
                    migrations=HERE / "migrations" / "versions", title="HIS 首页视图拉取")


@hookimpl
def register_commands(cli):
    from bingan_his_sql.cli import his_group

    cli.add_command(his_group)


def scheduled_pull(rt: Runtime) -> None:
    from bingan_his_sql.pull import pull_all

    pull_all(rt)


@hookimpl
def register_jobs(rt: Runtime):
    minutes = rt.settings(HisSqlSettings).interval_minutes
    return [JobSpec("his_sql.pull", scheduled_pull, "interval", {"minutes": minutes},
                    "从 HIS 首页视图增量拉取住院记录")]


@hookimpl
def audit_action_labels():
    return {"his_sql.pull": "拉取 HIS 首页视图"}


@hookimpl(optionalhook=True)
def charge_list(session, admission, rt):
    """The record's charge list from the HIS charge view (deathcase's hook; optional, so this
    integration loads without deathcase)."""
    from bingan_his_sql.charges import read_charges

    return read_charges(rt, admission.admission_no)
