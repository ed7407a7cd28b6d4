"""The bingan hook contract. Plugin authors import ``hookimpl`` from here, and ``hookspec`` to
declare hooks of their own (``PluginInfo.hookspecs``)."""

import pluggy

from bingan.hooks import specs, types
from bingan.hooks.specs import HOOKS_API, hookspec

hookimpl = pluggy.HookimplMarker("bingan")

__all__ = ["HOOKS_API", "hookimpl", "hookspec", "specs", "types"]
