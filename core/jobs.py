"""The in-process scheduler (APScheduler 3.x) with the jobs plugins register."""

from __future__ import annotations

import logging

from apscheduler.schedulers.background import BackgroundScheduler

log = logging.getLogger("bingan.jobs")


def all_jobs(rt):
    jobs = []
    for group in rt.pm.hook.register_jobs():
        jobs.extend(group or [])
    return jobs


def build_scheduler(rt) -> BackgroundScheduler:
    """A scheduler holding every registered job (not started)."""
    sched = BackgroundScheduler(timezone="Asia/Shanghai", job_defaults={
        "coalesce": True, "max_instances": 1, "misfire_grace_time": 3600})
    for job in all_jobs(rt):
        sched.add_job(job.func, job.trigger, id=job.id, name=job.description or job.id,
                      replace_existing=True, **job.trigger_args)
    return sched
