// The archiving-rate chart: one line per department and the hospital, by month (ECharts).
(function () {
  const el = document.getElementById("rc-chart");
  if (!el || !window.echarts) return;
  fetch(el.dataset.src, { credentials: "same-origin" }).then((r) => r.json()).then((d) => {
    if (d.error) { el.textContent = d.error; return; }
    const series = [{ name: "全院", type: "line", data: d.total, lineStyle: { width: 3 } }]
      .concat(d.departments.map((x) => ({ name: x.name, type: "line", data: x.rates })));
    echarts.init(el).setOption({
      tooltip: { trigger: "axis", valueFormatter: (v) => (v == null ? "—" : v + "%") },
      legend: { type: "scroll" }, grid: { left: 48, right: 24, bottom: 32, top: 48 },
      xAxis: { type: "category", data: d.months },
      yAxis: { type: "value", min: 0, max: 100, name: "归档率 %" },
      series: series,
    });
  });
})();
