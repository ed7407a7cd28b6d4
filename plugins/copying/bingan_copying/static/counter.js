// The copy counter: show the documents the applicant type needs, capture them from the
// webcam (getUserMedia -> canvas -> JPEG file in the slot's file input), keep the fee current.
(function () {
  "use strict";
  function init() {
    var form = document.getElementById("cp-form");
    if (!form) return;
    var needs = JSON.parse(form.dataset.applicants || "{}");
    var prices = JSON.parse(form.dataset.prices || "{}");
    var typeSel = document.getElementById("cp-type");
    var slots = form.querySelectorAll(".cp-doc");

    function showDocs() {
      var want = needs[typeSel.value] || [];
      slots.forEach(function (el) {
        var on = want.indexOf(el.dataset.kind) >= 0;
        el.hidden = !on;
        el.querySelector("input[type=file]").required = on;
      });
      var opt = typeSel.options[typeSel.selectedIndex];
      form.querySelectorAll(".cp-org").forEach(function (el) { el.hidden = opt.dataset.org !== "1"; });
    }
    typeSel.addEventListener("change", showDocs);
    showDocs();

    function fee() {
      var checked = form.querySelectorAll("input[name=page]:checked");
      var copies = parseInt(document.getElementById("cp-copies").value, 10) || 0;
      var per = 0;
      checked.forEach(function (c) { per += (prices.types || {})[c.dataset.type] || 0; });
      document.getElementById("cp-pages").textContent = checked.length;
      document.getElementById("cp-copies-echo").textContent = copies;
      document.getElementById("cp-fee").textContent = ((prices.request || 0) + per * copies).toFixed(2);
    }
    form.querySelectorAll(".cp-type").forEach(function (fs) {
      var all = fs.querySelector(".cp-all");
      all.addEventListener("change", function () {
        fs.querySelectorAll("input[name=page]").forEach(function (c) { c.checked = all.checked; });
        fee();
      });
    });
    form.addEventListener("change", fee);
    form.addEventListener("input", fee);
    fee();

    function preview(slot, file) {
      var img = slot.querySelector(".cp-thumb");
      if (img.src) URL.revokeObjectURL(img.src);
      img.src = URL.createObjectURL(file);
      img.hidden = false;
    }
    slots.forEach(function (slot) {
      var input = slot.querySelector("input[type=file]");
      input.addEventListener("change", function () { if (input.files.length) preview(slot, input.files[0]); });
    });

    function put(slot, file, source) {
      var dt = new DataTransfer();
      dt.items.add(file);
      slot.querySelector("input[type=file]").files = dt.files;
      slot.querySelector("select").value = source;
      slot.classList.add("captured");
      preview(slot, file);
    }

    // scanner (SANE on the server; the image comes back to be sent with the form)
    var csrf = (form.querySelector("input[name=_csrf_token]") || {}).value || "";
    form.querySelectorAll(".cp-scan").forEach(function (btn) {
      btn.addEventListener("click", function () {
        var slot = btn.closest(".cp-doc");
        btn.disabled = true; btn.textContent = "正在扫描…";
        fetch("/copying/scan", {method: "POST", headers: {"x-csrftoken": csrf}})
          .then(function (r) { return r.ok ? r.blob() : r.text().then(function (t) { throw new Error(t); }); })
          .then(function (blob) { put(slot, new File([blob], slot.dataset.kind + ".png", {type: blob.type}), "scanner"); })
          .catch(function (e) { alert("扫描失败：" + e.message); })
          .then(function () { btn.disabled = false; btn.textContent = "扫描仪扫描"; });
      });
    });

    // webcam
    var panel = document.getElementById("cp-camera");
    var video = document.getElementById("cp-video");
    var stream = null, target = null;
    function stop() {
      if (stream) stream.getTracks().forEach(function (t) { t.stop(); });
      stream = null; panel.hidden = true;
    }
    form.querySelectorAll(".cp-shoot").forEach(function (btn) {
      btn.addEventListener("click", function () {
        target = btn.closest(".cp-doc");
        document.getElementById("cp-camera-for").textContent = "正在拍摄：" + target.querySelector(".cp-doc-label").textContent;
        if (stream) { panel.hidden = false; video.play(); return; }
        if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) { alert("此浏览器不能使用摄像头，请上传文件。"); return; }
        navigator.mediaDevices.getUserMedia({video: {width: {ideal: 1920}, height: {ideal: 1080}}, audio: false})
          .then(function (s) { stream = s; panel.hidden = false; video.srcObject = s; return video.play(); })
          .catch(function (e) { alert("无法打开摄像头：" + e.message); });
      });
    });
    document.getElementById("cp-camera-close").addEventListener("click", stop);
    document.getElementById("cp-snap").addEventListener("click", function () {
      if (!stream || !target || !video.videoWidth) return;
      var c = document.createElement("canvas");
      c.width = video.videoWidth; c.height = video.videoHeight;
      c.getContext("2d").drawImage(video, 0, 0);
      c.toBlob(function (blob) {
        put(target, new File([blob], target.dataset.kind + ".jpg", {type: "image/jpeg"}), "webcam");
      }, "image/jpeg", 0.9);
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init); else init();
})();
