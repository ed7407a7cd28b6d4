"""The in-process scheduler (APScheduler 3.x) with the jobs plugins register."""

from __future__ import annotations

import logging

from apscheduler.schedulers.background import BackgroundScheduler

from bingan.core.plugins import call_with_rt

log = logging.getLogger("bingan.jobs")


def all_jobs(rt):
    jobs = []
    for group in rt.pm.hook.register_jobs(rt=rt):
        jobs.extend(group or [])
    return jobs


def build_scheduler(rt) -> BackgroundScheduler:
    """A scheduler holding every registered job (not started)."""
    sched = BackgroundScheduler(timezone=rt.tz, job_defaults={
        "coalesce": True, "max_instances": 1, "misfire_grace_time": 3600})
    for job in all_jobs(rt):
        sched.add_job(call_with_rt, job.trigger, args=(job.func, rt), id=job.id, name=job.description or job.id,
                      replace_existing=True, **job.trigger_args)
    return sched
