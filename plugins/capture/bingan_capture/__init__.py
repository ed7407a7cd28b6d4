"""bingan capture plugin (work in progress)."""
from hooks.types import PluginInfo

PLUGIN = PluginInfo(name="capture", version="0.1.0", title="采集")
