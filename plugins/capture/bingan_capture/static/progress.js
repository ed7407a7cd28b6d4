// Progress against plan (ECharts, rendered from the JSON API).
(function () {
  "use strict";
  function draw() {
    var el = document.getElementById("progress-chart");
    if (!el || !window.echarts) return;
    fetch(el.dataset.src, {headers: {"Accept": "application/json"}}).then(function (r) { return r.json(); }).then(function (d) {
      if (!d.days || !d.days.length) { el.textContent = "还没有计划或完成数据。"; el.className += " muted"; return; }
      var chart = echarts.init(el);
      chart.setOption({
        tooltip: {trigger: "axis"},
        legend: {data: ["计划页数", "完成页数", "返工页数", "累计计划", "累计完成"]},
        grid: {left: 50, right: 60, bottom: 40, top: 40},
        xAxis: {type: "category", data: d.days},
        yAxis: [{type: "value", name: "每日"}, {type: "value", name: "累计"}],
        series: [
          {name: "计划页数", type: "bar", data: d.planned, itemStyle: {color: "#b7c7dd"}},
          {name: "完成页数", type: "bar", data: d.actual, itemStyle: {color: "#2f6fb3"}},
          {name: "返工页数", type: "bar", data: d.rework, itemStyle: {color: "#d98b2b"}},
          {name: "累计计划", type: "line", yAxisIndex: 1, data: d.cum_planned, lineStyle: {type: "dashed"}},
          {name: "累计完成", type: "line", yAxisIndex: 1, data: d.cum_actual}
        ]
      });
      window.addEventListener("resize", function () { chart.resize(); });
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw); else draw();
})();
