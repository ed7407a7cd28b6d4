"""Build step of the recovery plugin: ECharts, the BarcodeDetector polyfill and its wasm
(served at /static/recovery/vendor) from npm into the package when it is built (package.json's
postinstall runs copy-vendor.js; bingan_build). Metadata is in pyproject.toml."""

from bingan_build import setup_with_npm

setup_with_npm(__file__, *(f"bingan_recovery/static/vendor/{n}"
                           for n in ("echarts.min.js", "barcode-detector.js",
                                     "zxing_reader.wasm")))
