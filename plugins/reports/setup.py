"""Build step of the reports plugin: ECharts (served at /static/reports/vendor) from npm into
the package when it is built (bingan_build). Metadata is in pyproject.toml."""

from bingan_build import setup_with_npm

setup_with_npm(__file__, "bingan_reports/static/vendor/echarts.min.js")
