"""Build step of the warehouse plugin: ECharts (served at /static/warehouse/vendor) from npm into
the package when it is built (package.json's postinstall runs copy-vendor.js; bingan_build).
Metadata is in pyproject.toml."""

from bingan_build import setup_with_npm

setup_with_npm(__file__, "bingan_warehouse/static/vendor/echarts.min.js")
