// Keyboard-driven page index correction: move between pages, set types by number, reorder
// with Alt+arrows, sort by the standard order, preview, save with Enter. No dependencies.
(function () {
  "use strict";
  var form = document.getElementById("pi-form");
  if (!form) return;
  var grid = document.getElementById("pi-grid");
  var orderInput = document.getElementById("pi-order");
  var dialog = document.getElementById("pi-preview");
  var typeCount = form.querySelector("select").options.length;
  var digits = "", digitTimer = null;

  function cards() { return Array.prototype.slice.call(grid.children); }
  function current() { return grid.querySelector(".pi-card.focus") || cards()[0]; }

  function focusCard(card) {
    if (!card) return;
    cards().forEach(function (c) { c.classList.remove("focus"); });
    card.classList.add("focus");
    card.focus({ preventScroll: true });
    card.scrollIntoView({ block: "nearest" });
  }

  function renumber() {
    var ids = [];
    cards().forEach(function (c, i) {
      c.querySelector(".pi-seq").textContent = String(i + 1);
      ids.push(c.dataset.id);
    });
    orderInput.value = ids.join(",");
  }

  function markManual(card) {
    card.classList.remove("low");
    var pill = card.querySelector(".pi-conf");
    pill.textContent = "人工";
    pill.classList.remove("warn");
    pill.classList.add("ok");
  }

  function setType(card, n) {
    var sel = card.querySelector("select");
    if (n < 1 || n > sel.options.length) return;
    sel.selectedIndex = n - 1;
    markManual(card);
  }

  function move(card, delta) {
    var list = cards(), i = list.indexOf(card), j = i + delta;
    if (j < 0 || j >= list.length) return;
    if (delta < 0) grid.insertBefore(card, list[j]);
    else grid.insertBefore(card, list[j].nextSibling);
    card.classList.remove("moved"); void card.offsetWidth; card.classList.add("moved");
    renumber();
    focusCard(card);
  }

  function standardOrder() {
    var list = cards().map(function (c, i) {
      return { c: c, rank: c.querySelector("select").selectedIndex, i: i };
    });
    list.sort(function (a, b) { return a.rank - b.rank || a.i - b.i; });
    list.forEach(function (x) { grid.appendChild(x.c); });
    renumber();
    focusCard(current());
  }

  function flushDigits() {
    if (digits) setType(current(), parseInt(digits, 10));
    digits = "";
    clearTimeout(digitTimer);
  }

  function preview(card) {
    if (!dialog || !dialog.showModal) return;
    var img = dialog.querySelector("img");
    img.src = "/pageindex/pages/" + card.dataset.id + "/image?w=1200";
    dialog.showModal();
  }

  grid.addEventListener("click", function (e) {
    var card = e.target.closest(".pi-card");
    if (card) focusCard(card);
    if (e.target.tagName === "IMG") preview(card);
  });
  grid.addEventListener("change", function (e) {
    if (e.target.tagName === "SELECT") markManual(e.target.closest(".pi-card"));
  });
  document.getElementById("pi-sort").addEventListener("click", standardOrder);
  form.addEventListener("submit", function () { flushDigits(); renumber(); });

  document.addEventListener("keydown", function (e) {
    if (dialog && dialog.open) return;  // Esc closes the preview natively
    var t = e.target, inSelect = t.tagName === "SELECT";
    if (t.tagName === "INPUT" || t.tagName === "TEXTAREA") return;
    var card = current();
    if (e.altKey && (e.key === "ArrowUp" || e.key === "ArrowLeft")) {
      e.preventDefault(); move(card, -1); return;
    }
    if (e.altKey && (e.key === "ArrowDown" || e.key === "ArrowRight")) {
      e.preventDefault(); move(card, 1); return;
    }
    if (inSelect && e.key !== "Enter") return;  // the select handles its own keys
    if (e.key === "ArrowRight" || e.key === "ArrowDown") {
      e.preventDefault(); flushDigits();
      var l = cards(); focusCard(l[Math.min(l.length - 1, l.indexOf(card) + 1)]); return;
    }
    if (e.key === "ArrowLeft" || e.key === "ArrowUp") {
      e.preventDefault(); flushDigits();
      var m = cards(); focusCard(m[Math.max(0, m.indexOf(card) - 1)]); return;
    }
    if (/^[0-9]$/.test(e.key) && !e.ctrlKey && !e.metaKey) {
      e.preventDefault();
      digits += e.key;
      clearTimeout(digitTimer);
      // type at once when no longer number can start with these digits
      if (parseInt(digits + "0", 10) > typeCount) flushDigits();
      else digitTimer = setTimeout(flushDigits, 700);
      return;
    }
    if (e.key === "Enter" && t.tagName !== "BUTTON") {
      e.preventDefault(); flushDigits(); renumber(); form.requestSubmit(); return;
    }
    if (e.key === "s" || e.key === "S") { e.preventDefault(); standardOrder(); return; }
    if (e.key === "p" || e.key === "P" || e.key === " ") { e.preventDefault(); preview(card); }
  });

  focusCard(grid.querySelector(".pi-card.low") || cards()[0]);
})();
