"""Settings of the search plugin (``[plugins.search]`` in plugins.toml)."""

from __future__ import annotations

import msgspec


class SearchSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Every key has a default, so the plugin runs with no settings at all."""

    page_size: int = 50  # rows per result page (the UI and the default of the API)
    max_page_size: int = 500  # largest page the API and the CLI accept
    # results are counted up to this many ("5000+" beyond): the cost of a search stays
    # bounded however broad it is; refine the query or export to see more. It balances
    # collecting and sorting a result against walking the sort index (bench/search.py).
    count_limit: int = 5000
    export_max_rows: int = 100000  # an Excel/CSV export stops here (and says so)
    batch_max_numbers: int = 5000  # numbers in one batch search
    batch_max_upload_bytes: int = 5 * 1024 * 1024  # size of an uploaded xlsx/csv/txt
    fulltext_page_size: int = 20

    def __post_init__(self) -> None:
        for key in ("page_size", "max_page_size", "count_limit", "export_max_rows",
                    "batch_max_numbers", "batch_max_upload_bytes", "fulltext_page_size"):
            if getattr(self, key) < 1:
                raise ValueError(f"{key} must be >= 1")
        if self.page_size > self.max_page_size:
            raise ValueError("page_size must not exceed max_page_size")

