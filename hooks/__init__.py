"""The bingan hook contract. Plugin authors import ``hookimpl`` from here."""

import pluggy

from bingan.hooks import specs, types
from bingan.hooks.specs import HOOKS_API

hookimpl = pluggy.HookimplMarker("bingan")

__all__ = ["HOOKS_API", "hookimpl", "specs", "types"]
