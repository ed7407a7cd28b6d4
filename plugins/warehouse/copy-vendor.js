// Copies the files the warehouse plugin serves from node_modules into its package
// (bingan_warehouse/static/vendor, served at /static/warehouse/vendor). Run by npm's postinstall.
const fs = require("fs");
const path = require("path");
const out = path.join("bingan_warehouse", "static", "vendor");
fs.mkdirSync(out, { recursive: true });
fs.copyFileSync("node_modules/echarts/dist/echarts.min.js", path.join(out, "echarts.min.js"));
