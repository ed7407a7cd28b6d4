/* bingan record viewer (reading plugin). Plain script, no build step.
 *
 * Pages come as watermarked JPEGs from the server (the watermark is burned in there; nothing
 * here can remove it). This script adds navigation (thumbnails grouped by page type, jump to a
 * type, keyboard, zoom, rotate) and the usual deterrents against copying: no context menu, no
 * selection or drag, Ctrl+C/S/P/A/X/U and PrintScreen intercepted, content hidden while the
 * window is in the background or printing, the reader's staff number always on screen.
 * Deterrents only: a camera or another program can still capture the screen, which is why the
 * watermark names the reader.
 */
(function () {
  "use strict";

  var WIDTHS = [160, 320, 640, 1280, 2560]; // the server serves levels near these
  var BLOCKED_KEYS = { c: "复制", s: "保存", p: "打印", a: "全选", x: "剪切", u: "查看源代码" };

  function $(id) { return document.getElementById(id); }

  var toastTimer = null;
  function toast(msg) {
    var t = $("rd-toast");
    if (!t) return;
    t.textContent = msg;
    t.classList.add("show");
    clearTimeout(toastTimer);
    toastTimer = setTimeout(function () { t.classList.remove("show"); }, 2200);
  }

  function obscure(on) {
    document.body.classList.toggle("rd-obscured", !!on);
  }

  function wipeClipboard() {
    try {
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText("病案内容禁止截屏复制").catch(function () {});
      }
    } catch (e) { /* best effort */ }
  }

  // ---- deterrents (whole page) -------------------------------------------------------------
  function stop(e) { e.preventDefault(); e.stopPropagation(); return false; }

  document.addEventListener("contextmenu", function (e) { stop(e); toast("已禁用右键菜单"); }, true);
  ["selectstart", "dragstart", "copy", "cut", "drop"].forEach(function (type) {
    document.addEventListener(type, function (e) {
      var t = e.target;
      // form fields of the page frame stay usable
      if (type === "selectstart" && t && t.closest && t.closest("input, textarea, select")) return;
      stop(e);
    }, true);
  });
  document.addEventListener("keydown", function (e) {
    var k = (e.key || "").toLowerCase();
    if ((e.ctrlKey || e.metaKey) && BLOCKED_KEYS[k]) {
      stop(e);
      toast("病案阅读中禁止" + BLOCKED_KEYS[k]);
      return;
    }
    if (e.key === "PrintScreen" || e.key === "Snapshot" || e.keyCode === 44) {
      stop(e);
      obscure(true);
      wipeClipboard();
      toast("禁止截屏");
      setTimeout(function () { if (document.hasFocus()) obscure(false); }, 1500);
      return;
    }
    if (e.key === "F12" || ((e.ctrlKey || e.metaKey) && e.shiftKey && (k === "i" || k === "j" || k === "c"))) {
      stop(e);
    }
  }, true);
  document.addEventListener("keyup", function (e) {
    if (e.key === "PrintScreen" || e.key === "Snapshot" || e.keyCode === 44) {
      stop(e);
      wipeClipboard();
    }
  }, true);
  window.addEventListener("blur", function () { obscure(true); });
  window.addEventListener("focus", function () { obscure(false); });
  document.addEventListener("visibilitychange", function () {
    obscure(document.visibilityState !== "visible");
  });
  window.addEventListener("beforeprint", function () { obscure(true); });
  window.addEventListener("afterprint", function () { obscure(!document.hasFocus()); });

  // ---- the viewer ---------------------------------------------------------------------------
  function init() {
    var root = $("rd-viewer");
    if (!root) return;
    var adm = root.getAttribute("data-admission");
    var pages = JSON.parse($("rd-pages").textContent || "[]");
    var img = $("rd-page");
    var sheet = $("rd-sheet");
    var marks = $("rd-marks");
    var hl = root.getAttribute("data-hl") || "";
    var found = {}; // page id -> boxes (fractions of the image) of the full-text hit
    var stage = $("rd-stage");
    var thumbs = Array.prototype.slice.call(document.querySelectorAll(".rd-thumb"));
    var jump = $("rd-jump");
    var state = { index: 0, zoom: 1, rotate: 0 };
    if (!pages.length || !img) return;

    function bucket(px) {
      for (var i = 0; i < WIDTHS.length; i++) if (WIDTHS[i] >= px) return WIDTHS[i];
      return WIDTHS[WIDTHS.length - 1];
    }

    function wanted() {
      var dpr = window.devicePixelRatio || 1;
      var sideways = state.rotate % 180 !== 0;
      var base = stage.clientWidth - 24;
      if (sideways) base = Math.min(base, stage.clientHeight || base);
      return bucket(Math.max(200, base * state.zoom * dpr));
    }

    function layout() {
      var w = Math.max(200, (stage.clientWidth - 24) * state.zoom);
      img.style.width = w + "px";
      sheet.style.transform = "rotate(" + state.rotate + "deg)";
      var sideways = state.rotate % 180 !== 0;
      sheet.classList.toggle("rd-sideways", sideways);
      $("rd-zoom").textContent = Math.round(state.zoom * 100) + "%";
    }

    function show(i) {
      if (i < 0 || i >= pages.length) return;
      state.index = i;
      var p = pages[i];
      var src = "/records/" + encodeURIComponent(adm) + "/pages/" + p.id + ".jpg?w=" + wanted();
      if (img.getAttribute("src") !== src) img.setAttribute("src", src);
      img.setAttribute("data-page-id", p.id);
      $("rd-pos").textContent = "第 " + (i + 1) + " / " + pages.length + " 页";
      $("rd-type").textContent = p.type;
      thumbs.forEach(function (t) {
        var on = Number(t.getAttribute("data-index")) === i;
        t.classList.toggle("active", on);
        if (on && t.scrollIntoView) t.scrollIntoView({ block: "nearest" });
      });
      if (jump) {
        for (var k = jump.options.length - 1; k >= 0; k--) {
          if (Number(jump.options[k].value) <= i) { jump.selectedIndex = k; break; }
        }
      }
      layout();
      stage.scrollTop = 0;
      loadMarks(p);
    }

    function scrollToMark() {
      // bring the page's first hit into view (the stage scrolls when the page is taller)
      var f = found[pages[state.index].id];
      if (!f || !f.boxes.length || !img.complete || !img.clientHeight) return;
      var top = stage.scrollTop + img.getBoundingClientRect().top - stage.getBoundingClientRect().top +
        f.boxes[0][1] * img.clientHeight - stage.clientHeight / 3;
      if (top > 0) stage.scrollTop = top;
    }

    // ---- the full-text phrase marked on the page -----------------------------------------
    function drawMarks(id, boxes) {
      if (!marks || pages[state.index].id !== id) return;
      marks.textContent = "";
      boxes.forEach(function (b) {
        var m = document.createElement("div");
        m.className = "rd-mark";
        m.style.left = (b[0] * 100) + "%";
        m.style.top = (b[1] * 100) + "%";
        m.style.width = ((b[2] - b[0]) * 100) + "%";
        m.style.height = ((b[3] - b[1]) * 100) + "%";
        marks.appendChild(m);
      });
    }

    function hitsSay(text) { var h = $("rd-hits"); if (h) h.textContent = text; }

    function loadMarks(p) {
      if (!hl || !marks) return;
      marks.textContent = "";
      if (found[p.id]) {
        drawMarks(p.id, found[p.id].boxes);
        hitsSay(found[p.id].say);
        return;
      }
      hitsSay("正在查找命中位置…");
      var url = "/api/reading/records/" + encodeURIComponent(adm) + "/pages/" + p.id +
        "/marks?q=" + encodeURIComponent(hl);
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) {
          return r.json().catch(function () { return {}; }).then(function (body) {
            if (!r.ok) throw new Error(body.detail || ("服务器返回 " + r.status));
            return body;
          });
        })
        .then(function (body) {
          var say = body.boxes.length ? "本页命中 " + body.boxes.length + " 处"
            : (body.indexed ? "本页没有“" + hl + "”" : "本页尚未完成文字识别，无法标出");
          found[p.id] = { boxes: body.boxes, say: say };
          if (pages[state.index].id === p.id) { drawMarks(p.id, body.boxes); hitsSay(say); scrollToMark(); }
        })
        .catch(function (err) {
          if (pages[state.index].id === p.id) hitsSay("无法标出命中位置：" + err.message);
        });
    }

    function toggleMarks() {
      if (!marks) return;
      var off = marks.classList.toggle("off");
      var b = $("rd-marks-toggle");
      if (b) { b.textContent = off ? "显示标记" : "隐藏标记"; b.setAttribute("aria-pressed", off ? "false" : "true"); }
    }

    function zoom(f) {
      state.zoom = Math.min(4, Math.max(0.25, f));
      layout();
      show(state.index); // a larger zoom may need a sharper image
    }

    var actions = {
      prev: function () { show(state.index - 1); },
      next: function () { show(state.index + 1); },
      first: function () { show(0); },
      last: function () { show(pages.length - 1); },
      zoomin: function () { zoom(state.zoom * 1.25); },
      zoomout: function () { zoom(state.zoom / 1.25); },
      fit: function () { zoom(1); },
      rotate: function () { state.rotate = (state.rotate + 90) % 360; show(state.index); },
      marks: toggleMarks
    };

    document.querySelectorAll(".rd-toolbar [data-act]").forEach(function (b) {
      b.addEventListener("click", function () { actions[b.getAttribute("data-act")](); });
    });
    thumbs.forEach(function (t) {
      t.addEventListener("click", function () { show(Number(t.getAttribute("data-index"))); });
    });
    if (jump) jump.addEventListener("change", function () { show(Number(jump.value)); });

    document.addEventListener("keydown", function (e) {
      if (e.defaultPrevented || e.ctrlKey || e.metaKey || e.altKey) return;
      var t = e.target;
      if (t && t.closest && t.closest("input, textarea, select")) return;
      var map = {
        ArrowRight: "next", PageDown: "next", ArrowLeft: "prev", PageUp: "prev",
        Home: "first", End: "last", "+": "zoomin", "=": "zoomin", "-": "zoomout", "_": "zoomout",
        "0": "fit", r: "rotate", R: "rotate", m: "marks", M: "marks"
      };
      var act = map[e.key];
      if (act) { e.preventDefault(); actions[act](); }
    });
    window.addEventListener("resize", function () { layout(); });
    var start = Number(root.getAttribute("data-start")) || 0;
    // access ends at the deadline, checked at every image: say so instead of a broken image
    img.addEventListener("error", function () { $("rd-error").hidden = false; });
    img.addEventListener("load", function () { $("rd-error").hidden = true; scrollToMark(); });
    show(Math.min(Math.max(start, 0), pages.length - 1));
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
