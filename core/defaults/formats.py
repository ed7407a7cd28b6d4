"""Core's table export formats."""

from bingan.hooks import hookimpl
from bingan.hooks.types import ExportFormat


@hookimpl
def export_formats():
    return [
        ExportFormat("xlsx", "Excel",
                     "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx"),
        ExportFormat("csv", "CSV", "text/csv; charset=utf-8", "csv"),
    ]
