// Warehouse statistics: occupancy per warehouse (bars) and movements per month (stacked), ECharts.
(function () {
  const occ = document.getElementById("wh-chart-occ");
  const mov = document.getElementById("wh-chart-mov");
  if (!occ || !mov || !window.echarts) return;
  fetch(mov.dataset.src, { credentials: "same-origin" }).then((r) => r.json()).then((d) => {
    echarts.init(occ).setOption({
      title: { text: "病案占用率（%）", textStyle: { fontSize: 14 } },
      tooltip: { trigger: "axis" }, grid: { left: 48, right: 16, bottom: 32, top: 40 },
      xAxis: { type: "category", data: d.warehouses.map((w) => w.name) },
      yAxis: { type: "value", min: 0, max: 100 },
      series: [{ type: "bar", name: "占用率", data: d.warehouses.map((w) => w.occupancy) }],
    });
    echarts.init(mov).setOption({
      title: { text: "每月出入库", textStyle: { fontSize: 14 } },
      tooltip: { trigger: "axis" }, legend: { type: "scroll", top: 22 },
      grid: { left: 48, right: 16, bottom: 32, top: 60 },
      xAxis: { type: "category", data: d.months }, yAxis: { type: "value" },
      series: d.movements.map((m) => ({ name: m.name, type: "bar", stack: "all", data: m.counts })),
    });
  });
})();
