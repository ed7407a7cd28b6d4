"""Jinja2 environment: hospital theme, then plugin templates, then the default theme; a
``default:`` prefix reaches the default theme so an override can extend the template it
replaces (``{% extends "default:base.html" %}``)."""

from __future__ import annotations

from pathlib import Path

import jinja2

THEMES = Path(__file__).resolve().parents[2] / "themes"


def theme_dir(name: str) -> Path:
    p = Path(name)
    return p if p.is_absolute() else THEMES / name


def template_dirs(rt) -> list[Path]:
    """Lookup order (first hit wins), without the prefixed default loader."""
    dirs: list[Path] = []
    if rt.config.core.theme != "default":
        dirs.append(theme_dir(rt.config.core.theme) / "templates")
    for lp in rt.pm.loaded.values():
        if lp.info.templates:
            dirs.append(Path(lp.info.templates))
    dirs.append(THEMES / "default" / "templates")
    return dirs


def static_dirs(rt) -> list[Path]:
    dirs: list[Path] = []
    if rt.config.core.theme != "default":
        dirs.append(theme_dir(rt.config.core.theme) / "static")
    dirs.append(THEMES / "default" / "static")
    return [d for d in dirs if d.exists()]


def build_environment(rt) -> jinja2.Environment:
    default = jinja2.FileSystemLoader(str(THEMES / "default" / "templates"))
    loader = jinja2.ChoiceLoader([
        jinja2.PrefixLoader({"default": default}, delimiter=":"),
        *[jinja2.FileSystemLoader(str(d)) for d in template_dirs(rt)],
    ])
    env = jinja2.Environment(loader=loader, autoescape=True, trim_blocks=True,
                             lstrip_blocks=True)
    tz = rt.tz
    env.filters["localtime"] = lambda value, fmt="%Y-%m-%d %H:%M:%S": _localtime(value, tz, fmt)
    from bingan.core.audit import action_labels, actor_label, outcome_label

    labels = action_labels(rt)
    env.filters["action_label"] = lambda action: labels.get(action, action)
    env.filters["outcome_label"] = outcome_label
    env.filters["actor_label"] = actor_label
    return env


def _localtime(value, tz, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    """A stored (UTC) time as the hospital's clock shows it."""
    if value is None:
        return ""
    return value.astimezone(tz).strftime(fmt)
