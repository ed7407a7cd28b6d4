"""bingan archive plugin (work in progress)."""
from hooks.types import PluginInfo

PLUGIN = PluginInfo(name="archive", version="0.1.0", title="归档与导出")
