// The page frame's behaviour, on every page: the phone menu, and one handler for htmx answers
// that are errors. htmx throws 4xx/5xx answers away; here the server's own message is shown in
// place (above the form, or next to the button, that sent the request), and cleared on the
// next request from the same place.
(function () {
  "use strict";

  function messageOf(xhr) {
    var text = xhr.responseText || "";
    var type = (xhr.getResponseHeader("content-type") || "").toLowerCase();
    if (type.indexOf("json") >= 0) {
      try {
        var data = JSON.parse(text);
        if (data && (data.detail || data.message)) return String(data.detail || data.message);
      } catch (e) { /* not JSON after all */ }
    }
    if (type.indexOf("html") >= 0 && text) {
      var doc = new DOMParser().parseFromString(text, "text/html");
      // the message itself first (an error page's title, 请求有误, says less than its text)
      var picks = [".alert.error", "[role=alert]", ".error-card p", "main p", "h1"];
      for (var i = 0; i < picks.length; i++) {
        var el = doc.querySelector(picks[i]);
        if (el && el.textContent.trim()) return el.textContent.trim().slice(0, 400);
      }
    }
    if (text && text.length < 400 && text.indexOf("<") < 0) return text.trim();
    if (xhr.status === 403) return "没有权限执行该操作";
    if (xhr.status === 404) return "要找的内容不存在或已被删除";
    if (xhr.status >= 500) return "服务器出错，请稍后重试；如果一再出现，请联系信息科";
    return "操作未成功（" + xhr.status + "）";
  }

  function anchorOf(elt) {
    return (elt && elt.closest && (elt.closest("form") || elt)) || document.querySelector("main");
  }

  function clear(anchor) {
    var prev = anchor && anchor.previousElementSibling;
    if (prev && prev.classList.contains("htmx-error")) prev.remove();
  }

  function show(elt, text) {
    var anchor = anchorOf(elt);
    clear(anchor);
    var box = document.createElement("div");
    box.className = "alert error htmx-error";
    box.setAttribute("role", "alert");
    box.textContent = text;
    anchor.parentNode.insertBefore(box, anchor);
  }

  document.addEventListener("htmx:beforeRequest", function (evt) { clear(anchorOf(evt.detail.elt)); });
  document.addEventListener("htmx:responseError", function (evt) {
    show(evt.detail.elt, messageOf(evt.detail.xhr));
  });
  document.addEventListener("htmx:sendError", function (evt) {
    show(evt.detail.elt, "无法连接服务器，请检查网络后重试");
  });
  document.addEventListener("htmx:timeout", function (evt) {
    show(evt.detail.elt, "服务器响应超时，请稍后重试");
  });

  // the phone menu: one button opens and closes the sidebar
  document.addEventListener("click", function (evt) {
    var btn = evt.target.closest && evt.target.closest("#menu-toggle");
    if (!btn) return;
    var open = document.body.classList.toggle("nav-open");
    btn.setAttribute("aria-expanded", open ? "true" : "false");
  });

  // a confirmation and an optional reason for any form marked data-confirm
  document.addEventListener("submit", function (evt) {
    var form = evt.target;
    if (!form.dataset || !form.dataset.confirm) return;
    if (!window.confirm(form.dataset.confirm)) { evt.preventDefault(); evt.stopImmediatePropagation(); }
  }, true);
})();
