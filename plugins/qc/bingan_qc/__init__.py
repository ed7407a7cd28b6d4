"""bingan qc plugin (work in progress)."""
from hooks.types import PluginInfo

PLUGIN = PluginInfo(name="qc", version="0.1.0", title="质检抽检", depends_on=("capture",))
