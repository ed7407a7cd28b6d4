"""bingan imaging plugin (work in progress)."""
from hooks.types import PluginInfo

PLUGIN = PluginInfo(name="imaging", version="0.1.0", title="图像处理与质检")
