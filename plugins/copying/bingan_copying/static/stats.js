// Copy statistics chart (ECharts, from the JSON API).
(function () {
  "use strict";
  function draw() {
    var el = document.getElementById("cp-chart");
    if (!el || !window.echarts) return;
    fetch(el.dataset.src, {headers: {"Accept": "application/json"}}).then(function (r) { return r.json(); }).then(function (d) {
      if (!d.labels || !d.labels.length) { el.textContent = "该区间没有复印记录。"; el.className += " muted"; return; }
      var chart = echarts.init(el);
      chart.setOption({
        tooltip: {trigger: "axis"},
        legend: {data: ["申请数", "份数", "页数", "收费（元）"]},
        grid: {left: 50, right: 60, bottom: 60, top: 40},
        xAxis: {type: "category", data: d.labels, axisLabel: {rotate: d.labels.length > 8 ? 30 : 0}},
        yAxis: [{type: "value", name: "数量"}, {type: "value", name: "元"}],
        series: [
          {name: "申请数", type: "bar", data: d.requests},
          {name: "份数", type: "bar", data: d.copies},
          {name: "页数", type: "bar", data: d.pages},
          {name: "收费（元）", type: "line", yAxisIndex: 1, data: d.fees}
        ]
      });
      el.dataset.drawn = "1";
      window.addEventListener("resize", function () { chart.resize(); });
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw); else draw();
})();
