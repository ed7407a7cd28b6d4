// Upload pages one file per request with progress (XMLHttpRequest reports upload progress,
// fetch does not). Used by the upload page (drag-and-drop) and the phone page (camera).
(function () {
  "use strict";
  var form = document.getElementById("uploader-form");
  if (!form) return;
  var list = document.getElementById("upload-list");
  var source = form.dataset.source || "upload";
  var maxBytes = (parseInt(form.dataset.maxMb, 10) || 100) * 1048576;
  var csrf = "";
  try { csrf = JSON.parse(document.body.getAttribute("hx-headers") || "{}")["x-csrftoken"] || ""; } catch (e) {}
  var queue = [], running = 0, LIMIT = 2;

  function field(name) { var el = form.elements[name]; return el ? el.value.trim() : ""; }

  function row(file) {
    var li = document.createElement("li");
    var name = document.createElement("span"); name.textContent = file.name + "（" + (file.size / 1048576).toFixed(1) + " MB）";
    var bar = document.createElement("progress"); bar.max = 100; bar.value = 0;
    var msg = document.createElement("span"); msg.className = "msg"; msg.textContent = "等待上传…";
    li.appendChild(name); li.appendChild(bar); li.appendChild(msg);
    list.insertBefore(li, list.firstChild);
    return {li: li, bar: bar, msg: msg};
  }

  function done(r, cls, text) { r.li.className = cls; r.msg.textContent = text; running--; next(); }

  function send(item) {
    var r = item.row, file = item.file;
    if (file.size > maxBytes) { running++; return done(r, "error", "文件过大，超过 " + (maxBytes / 1048576) + " MB，未上传"); }
    var data = new FormData();
    data.append("file", file, file.name);
    data.append("source", source);
    if (item.admission) data.append("admission", item.admission);
    if (item.batch) data.append("batch_id", item.batch);
    if (item.paper) data.append("paper", item.paper);
    var xhr = new XMLHttpRequest();
    running++;
    xhr.open("POST", "/api/capture/upload");
    xhr.setRequestHeader("x-csrftoken", csrf);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.onprogress = function (e) { if (e.lengthComputable) { r.bar.value = Math.round(e.loaded / e.total * 100); r.msg.textContent = "上传中 " + r.bar.value + "%"; } };
    xhr.onload = function () {
      var body = {};
      try { body = JSON.parse(xhr.responseText); } catch (e) {}
      if (xhr.status >= 200 && xhr.status < 300) {
        r.bar.value = 100;
        var a = document.createElement("a"); a.href = "/capture/captures/" + body.capture_id; a.textContent = " 查看";
        done(r, body.duplicate ? "dup" : "pending", body.duplicate ? body.message : "已接收：采集 #" + body.capture_id + "，" + body.pages + " 页");
        r.msg.appendChild(a);
        r.state = document.createElement("span"); r.state.className = "state";
        r.li.appendChild(r.state);
        r.state.textContent = "等待处理…";
        outcome(r, body.capture_id, body.pages, 0);
      } else if (xhr.status === 401) {
        done(r, "error", "登录已过期，请重新登录后再上传");
      } else {
        done(r, "error", "拒收：" + (body.detail || ("服务器返回 " + xhr.status)));
      }
    };
    xhr.onerror = function () { done(r, "error", "网络错误，文件未送达，请重试"); };
    xhr.send(data);
  }

  // Every upload: ask for the file's processing result until it is there (pages are split,
  // identified and quality-checked in the background), showing how many pages are done, then
  // say what became of each: how many pages passed the image QC, which did not and why in
  // plain Chinese; a failed phone photo offers a retake.
  var VERDICT = {pass: "合格", warn: "可用，但请核对", fail: "不合格，请重拍"};
  var FRAME = {cover: "封面页", blank: "空白页", unidentified: "未识别出病案，进入待识别队列",
               discarded: "已舍弃", failed: "处理失败"};
  var SLOW_AFTER = 20, GIVE_UP_AFTER = 400; // about 30 s at 1.5 s, then every 4 s (~25 min)

  function settled(f) { return f.status !== "pending" && f.status !== "queued"; }

  function outcome(r, id, pages, tries) {
    fetch("/api/capture/captures/" + id, {headers: {"Accept": "application/json"}})
      .then(function (resp) { return resp.ok ? resp.json() : null; })
      .then(function (cap) {
        if (!cap) throw new Error("no answer");
        var total = Math.max(pages || 0, cap.frames.length);
        var finished = cap.frames.filter(settled).length;
        if (cap.status === "queued" || finished < cap.frames.length || (cap.status !== "failed" && finished < total)) {
          r.bar.value = total ? Math.round(finished / total * 100) : 0;
          r.state.textContent = "处理中：已完成 " + finished + " / " + (total || "?") + " 页（" + r.bar.value + "%）";
          if (tries < GIVE_UP_AFTER) setTimeout(function () { outcome(r, id, pages, tries + 1); }, tries < SLOW_AFTER ? 1500 : 4000);
          else r.state.textContent = "仍在处理，请稍后在采集记录中查看结果";
          return;
        }
        show(r, cap);
      })
      .catch(function () {
        r.state.textContent = "暂时查不到处理结果，正在重试…";
        if (tries < GIVE_UP_AFTER) setTimeout(function () { outcome(r, id, pages, tries + 1); }, 4000);
      });
  }

  function show(r, cap) {
    r.bar.value = 100;
    if (cap.status === "failed") {
      r.li.className = "error";
      r.state.textContent = "处理失败：" + (cap.error || "原因不明，请查看采集记录");
      return;
    }
    var n = {pass: 0, warn: 0, fail: 0}, other = {};
    cap.frames.forEach(function (f) {
      if (f.status === "stored") n[f.qc_status || "pass"] = (n[f.qc_status || "pass"] || 0) + 1;
      else other[f.status] = (other[f.status] || 0) + 1;
    });
    var stored = n.pass + n.warn + n.fail, parts = [];
    if (stored) parts.push(stored + " 页入库（图像质检合格 " + n.pass + (n.warn ? "，需核对 " + n.warn : "") + (n.fail ? "，不合格 " + n.fail : "") + "）");
    Object.keys(other).forEach(function (k) { parts.push((FRAME[k] || k) + " " + other[k] + " 页"); });
    r.state.textContent = "处理完成：" + (parts.join("；") || "没有页面");
    r.li.className = n.fail || other.failed ? "error" : (n.warn || other.unidentified ? "dup" : "ok");
    var single = cap.frames.length === 1;
    cap.frames.forEach(function (f) {
      var q = f.status === "stored" ? (f.qc_status || "pass") : "fail";
      if (!single && q === "pass" && f.status === "stored") return; // many pages: only what needs a look
      var v = document.createElement("span");
      v.className = "verdict " + (f.status === "stored" ? q : (f.status === "failed" || f.status === "unidentified" ? "fail" : "warn"));
      var text = (single ? "" : "第 " + f.idx + " 页：") +
        (f.status === "stored" ? "图像质检" + VERDICT[q] : (FRAME[f.status] || f.status) + (f.note ? "（" + f.note + "）" : ""));
      if (f.reasons && f.reasons.length) text += "（" + f.reasons.join("；") + "）";
      v.textContent = text;
      if (q === "fail" && f.status === "stored" && f.rework_id && source === "phone") {
        var b = document.createElement("button");
        b.type = "button"; b.className = "retake"; b.textContent = "重拍";
        b.addEventListener("click", function () { retake(f.rework_id, v); });
        v.appendChild(b);
      }
      r.li.appendChild(v);
    });
  }

  // A retake replaces the failed page (its rework item), history kept.
  function retake(reworkId, where) {
    var input = document.createElement("input");
    input.type = "file"; input.accept = "image/*"; input.setAttribute("capture", "environment");
    input.addEventListener("change", function () {
      if (!input.files.length) return;
      var data = new FormData();
      data.append("file", input.files[0], input.files[0].name);
      data.append("source", "phone");
      if (field("paper")) data.append("paper", field("paper"));
      where.textContent = "重拍的照片上传中…";
      fetch("/capture/rework/" + reworkId + "/upload", {method: "POST", body: data, headers: {"x-csrftoken": csrf}})
        .then(function (resp) { where.textContent = resp.ok ? "已重拍：新照片处理后替换这一页" : "重拍未送达（服务器返回 " + resp.status + "），请再试"; })
        .catch(function () { where.textContent = "网络错误，重拍未送达，请再试"; });
    });
    input.click();
  }

  function next() { while (running < LIMIT && queue.length) send(queue.shift()); }

  function add(files) {
    var admission = field("admission"), batch = field("batch_id"), paper = field("paper");
    for (var i = 0; i < files.length; i++) queue.push({file: files[i], row: row(files[i]), admission: admission, batch: batch, paper: paper});
    next();
  }

  ["files", "files-gallery"].forEach(function (id) {
    var input = document.getElementById(id);
    if (input) input.addEventListener("change", function () { add(input.files); input.value = ""; });
  });
  // Phone: the paper photographed (its size gives the photo's DPI); this phone remembers it.
  var paperSel = form.elements["paper"];
  if (paperSel) {
    try { var kept = localStorage.getItem("bingan.phone.paper"); if (kept !== null && paperSel.querySelector('option[value="' + kept + '"]')) paperSel.value = kept; } catch (e) {}
    paperSel.addEventListener("change", function () { try { localStorage.setItem("bingan.phone.paper", paperSel.value); } catch (e) {} });
  }
  var zone = document.getElementById("dropzone");
  if (zone) {
    ["dragenter", "dragover"].forEach(function (t) { zone.addEventListener(t, function (e) { e.preventDefault(); zone.classList.add("over"); }); });
    ["dragleave", "drop"].forEach(function (t) { zone.addEventListener(t, function (e) { e.preventDefault(); zone.classList.remove("over"); }); });
    zone.addEventListener("drop", function (e) { if (e.dataTransfer && e.dataTransfer.files.length) add(e.dataTransfer.files); });
  }
  // Show which record an admission number or a scanned barcode names (a USB scanner types
  // the barcode and presses Enter).
  var adm = document.getElementById("admission"), info = document.getElementById("admission-info");
  function lookup() {
    var q = adm.value.trim();
    if (!q) { info.textContent = "未指定病案：按封面或条码标签自动识别，识别不到的页面进入待识别队列。"; return; }
    fetch("/api/capture/lookup?q=" + encodeURIComponent(q), {headers: {"Accept": "application/json"}})
      .then(function (r) { return r.json().then(function (b) { return [r.ok, b]; }); })
      .then(function (res) {
        var b = res[1];
        info.textContent = res[0] ? ("病案：" + b.admission_no + " · " + b.patient_name + " · 病案号 " + b.mrn + " · 第 " + b.visit_no + " 次住院 · " + (b.department || "") + " · 已有 " + b.pages + " 页")
                                  : ("⚠ " + (b.detail || "找不到该病案"));
        if (res[0]) adm.value = b.admission_no;
        if (res[0] && ((b.condition && b.condition.length) || (b.condition_notes && b.condition_notes.length))) {
          var c = document.createElement("span");
          c.className = "condition";
          c.textContent = " · 纸张状况：" + (b.condition || []).concat(b.condition_notes || []).join("；");
          info.appendChild(c);
        }
        if (res[0] && b.feeder_advice) {
          var w = document.createElement("span");
          w.className = "advice";
          w.setAttribute("role", "alert");
          w.textContent = " ⚠ " + b.feeder_advice;
          info.appendChild(w);
        }
      });
  }
  if (adm && info) {
    adm.addEventListener("change", lookup);
    adm.addEventListener("keydown", function (e) { if (e.key === "Enter") { e.preventDefault(); lookup(); } });
    lookup();
  }
})();
