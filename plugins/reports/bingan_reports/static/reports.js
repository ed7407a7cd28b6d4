// Draws every report chart on the page (ECharts) from the report's JSON API.
(function () {
  "use strict";
  function draw(el) {
    fetch(el.dataset.src, {headers: {"Accept": "application/json"}, credentials: "same-origin"})
      .then(function (r) { return r.json(); })
      .then(function (d) {
        var c = d.chart || {};
        if (!c.series || !c.categories || !c.categories.length) { el.textContent = "该区间没有数据。"; el.className += " muted"; return; }
        var chart = echarts.init(el);
        var option;
        if (c.kind === "pie") {
          var s = c.series[0];
          option = {tooltip: {trigger: "item"}, legend: {bottom: 0, type: "scroll"},
                    series: [{name: s.name, type: "pie", radius: ["35%", "65%"],
                              data: c.categories.map(function (n, i) { return {name: n, value: s.data[i]}; })}]};
        } else {
          var right = c.series.some(function (s) { return s.right; });
          option = {
            tooltip: {trigger: "axis"},
            legend: {data: c.series.map(function (s) { return s.name; }), type: "scroll"},
            grid: {left: 50, right: right ? 50 : 20, bottom: 60, top: 40},
            xAxis: {type: "category", data: c.categories, axisLabel: {rotate: c.categories.length > 8 ? 30 : 0}},
            yAxis: right ? [{type: "value"}, {type: "value", name: "%", max: 100}] : [{type: "value"}],
            series: c.series.map(function (s) {
              return {name: s.name, type: s.right ? "line" : c.kind, yAxisIndex: s.right ? 1 : 0, data: s.data};
            })
          };
        }
        option.animation = false;
        chart.setOption(option);
        el.dataset.drawn = "1";
        window.addEventListener("resize", function () { chart.resize(); });
      });
  }
  function all() {
    if (!window.echarts) return;
    document.querySelectorAll(".rp-chart[data-src]").forEach(draw);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", all); else all();
})();
