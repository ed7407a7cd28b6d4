"""bingan scan-folder: the hot folder (scanner software saves files into a watched folder) as a
capture source. Every file goes to capture's ``receive``; see README.md."""

from __future__ import annotations

from bingan.hooks import hookimpl
from bingan.hooks.types import PluginInfo, Runtime
from bingan_capture.hookspecs import CaptureSource
from bingan_scan_folder.settings import FolderSettings

PLUGIN = PluginInfo(name="scan-folder", version="0.1.0", hooks_api="1.1",
                    settings=FolderSettings, depends_on=("capture",), title="热文件夹")


@hookimpl
def capture_sources(rt: Runtime) -> list[CaptureSource]:
    return [CaptureSource("hot_folder", "热文件夹", "scanner", None,
                          "扫描仪软件把文件存入监视目录，系统自动接收")]


@hookimpl
def register_commands(cli) -> None:
    from bingan_scan_folder.cli import folder_group

    cli.add_command(folder_group)
