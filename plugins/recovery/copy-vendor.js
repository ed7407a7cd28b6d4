// Copies the files the recovery plugin serves from node_modules into its package
// (bingan_recovery/static/vendor, served at /static/recovery/vendor). Run by npm's postinstall.
const fs = require("fs");
const path = require("path");
const out = path.join("bingan_recovery", "static", "vendor");
fs.mkdirSync(out, { recursive: true });
const files = {
  "echarts.min.js": "node_modules/echarts/dist/echarts.min.js",
  // the BarcodeDetector polyfill (a plain script: global BarcodeDetectionAPI) and its wasm
  "barcode-detector.js": "node_modules/barcode-detector/dist/iife/polyfill.js",
  "zxing_reader.wasm": "node_modules/zxing-wasm/dist/reader/zxing_reader.wasm",
};
for (const [name, src] of Object.entries(files)) fs.copyFileSync(src, path.join(out, name));
