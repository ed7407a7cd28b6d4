// The ward phone page: download the due list, scan offline (camera or scanner gun), keep
// every scan in IndexedDB, upload when back. Each scan has its own id, so uploading twice
// changes nothing on the server; the server's answer is kept per scan.
(function () {
  const root = document.getElementById("rc-phone");
  if (!root) return;
  const $ = (id) => document.getElementById(id);
  const staff = root.dataset.staff;
  const csrf = root.dataset.csrf;
  const DB = "bingan-recovery-" + staff;
  const LABELS = { pending: "待上传", recovered: "已回收", duplicate: "已回收（重复）",
    taken: "他人已回收", unknown: "条码不存在", invalid: "条码无效", not_discharged: "未出院" };

  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("/recovery/phone/sw.js", { scope: "/recovery/phone/" });
  }

  function openDb() {
    return new Promise((resolve, reject) => {
      const r = indexedDB.open(DB, 1);
      r.onupgradeneeded = () => {
        const db = r.result;
        db.createObjectStore("due", { keyPath: "barcode" });
        db.createObjectStore("scans", { keyPath: "client_id" });
        db.createObjectStore("meta", { keyPath: "key" });
      };
      r.onsuccess = () => resolve(r.result);
      r.onerror = () => reject(r.error);
    });
  }
  const dbp = openDb();
  async function tx(store, mode, fn) {
    const db = await dbp;
    return new Promise((resolve, reject) => {
      const t = db.transaction(store, mode);
      const out = fn(t.objectStore(store));
      t.oncomplete = () => resolve(out instanceof IDBRequest ? out.result : out);
      t.onerror = () => reject(t.error);
    });
  }
  const all = (store) => tx(store, "readonly", (s) => s.getAll());
  const get = (store, key) => tx(store, "readonly", (s) => s.get(key));
  const put = (store, v) => tx(store, "readwrite", (s) => s.put(v));

  function uid() {
    const b = new Uint8Array(16);
    crypto.getRandomValues(b);
    return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  }
  function msg(t, bad) { const m = $("rc-msg"); m.textContent = t; m.className = bad ? "late" : ""; }

  function netState() {
    const on = navigator.onLine;
    $("rc-net").dataset.online = on ? "1" : "0";
    $("rc-net").textContent = on ? "在线：可下载清单、上传" : "离线：扫描照常登记，回到有网络处再上传";
  }
  window.addEventListener("online", netState);
  window.addEventListener("offline", netState);

  async function handover(ward) {
    // one handover (one receipt) per ward visit; a new ward starts a new one
    const cur = await get("meta", "handover");
    if (cur && cur.ward === ward && !cur.closed) return cur;
    const h = { key: "handover", id: uid(), ward: ward, started_at: new Date().toISOString() };
    await put("meta", h);
    return h;
  }

  async function render() {
    const due = await all("due");
    const byCode = Object.fromEntries(due.map((d) => [d.barcode, d]));
    const info = await get("meta", "downloaded");
    // a list never downloaded (or a record without its time) must not read "Invalid Date"
    const when = info && info.at ? new Date(info.at) : null;
    $("rc-list-info").textContent = when && !isNaN(when.getTime())
      ? `待回收清单：${due.length} 份（下载于 ${when.toLocaleString("zh-CN")}）`
      : "尚未下载待回收清单";
    const sel = $("rc-ward");
    const wards = [...new Set(due.map((d) => d.ward))].sort();
    const keep = sel.value || ((await get("meta", "ward")) || {}).value || "";
    sel.innerHTML = '<option value="">请选择病区</option>' +
      wards.map((w) => `<option>${w.replace(/</g, "&lt;")}</option>`).join("");
    if (keep && !wards.includes(keep)) sel.insertAdjacentHTML("beforeend", `<option>${keep.replace(/</g, "&lt;")}</option>`);
    sel.value = keep;
    const scans = (await all("scans")).sort((a, b) => (a.scanned_at < b.scanned_at ? 1 : -1));
    const tb = $("rc-scans").querySelector("tbody");
    tb.innerHTML = "";
    for (const s of scans) {
      const d = byCode[s.barcode];
      const tr = document.createElement("tr");
      tr.dataset.barcode = s.barcode;
      const cells = [s.barcode, d ? `${d.name}（${d.mrn}）` : "不在清单中", s.ward,
        LABELS[s.status] || s.status];
      cells.forEach((c, i) => {
        const td = document.createElement("td");
        td.textContent = c;
        if (i === 3) { td.className = "st-" + s.status; if (s.message) td.title = s.message; }
        tr.appendChild(td);
      });
      tb.appendChild(tr);
    }
    $("rc-count").textContent = scans.filter((s) => s.status === "pending" || s.status === "recovered" || s.status === "duplicate").length;
    $("rc-pending").textContent = scans.filter((s) => s.status === "pending").length;
  }

  async function addScan(raw) {
    const code = (raw || "").trim().toUpperCase();
    if (!code) return;
    const ward = $("rc-ward").value;
    if (!ward) { msg("请先选择病区", true); return; }
    const scans = await all("scans");
    if (scans.some((s) => s.barcode === code)) { msg(`${code} 已登记过`, true); return; }
    const h = await handover(ward);
    await put("scans", { client_id: uid(), barcode: code, ward: ward, handover_id: h.id,
      handover_started: h.started_at, scanned_at: new Date().toISOString(), status: "pending" });
    const d = await get("due", code);
    msg(d ? `已登记：${d.name}（${d.mrn}）` : `已登记 ${code}（不在待回收清单中，上传时核对）`, !d);
    await render();
  }

  $("rc-ward").addEventListener("change", async () => { await put("meta", { key: "ward", value: $("rc-ward").value }); });
  $("rc-scan-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = $("rc-code");
    const v = f.value;
    f.value = "";
    f.focus();
    // a scanner gun types fast: scans are registered one after the other, in order
    queue = queue.then(() => addScan(v)).catch((e) => msg("登记失败：" + e.message, true));
  });
  let queue = Promise.resolve();

  $("rc-download").addEventListener("click", async () => {
    try {
      const r = await fetch("/api/recovery/due", { credentials: "same-origin", headers: { accept: "application/json" } });
      if (!r.ok) throw new Error("服务器返回 " + r.status);
      const d = await r.json();
      await tx("due", "readwrite", (s) => { s.clear(); d.items.forEach((it) => s.put(it)); });
      await put("meta", { key: "downloaded", at: d.downloaded_at });
      msg(`已下载 ${d.items.length} 份待回收病案`);
      await render();
    } catch (e) { msg("下载失败（" + e.message + "）：请在有网络处重试", true); }
  });

  async function upload() {
    const pending = (await all("scans")).filter((s) => s.status === "pending" || s.status === "failed");
    if (!pending.length) { msg("没有待上传的记录"); return; }
    const groups = {};
    for (const s of pending) (groups[s.handover_id] = groups[s.handover_id] || []).push(s);
    const links = [];
    for (const [hid, items] of Object.entries(groups)) {
      const body = { handover_id: hid, ward: items[0].ward, started_at: items[0].handover_started,
        items: items.map((s) => ({ client_id: s.client_id, barcode: s.barcode, scanned_at: s.scanned_at })) };
      let r;
      try {
        r = await fetch("/api/recovery/upload", { method: "POST", credentials: "same-origin",
          headers: { "content-type": "application/json", "x-csrftoken": csrf }, body: JSON.stringify(body) });
      } catch (e) { msg("没有网络，记录仍保存在本机，稍后再上传", true); return; }
      const d = await r.json().catch(() => ({}));
      if (!r.ok) { msg("上传失败：" + (d.error || d.detail || r.status) + "（记录仍保存在本机）", true); return; }
      const byId = Object.fromEntries(d.results.map((x) => [x.client_id, x]));
      for (const s of items) {
        const x = byId[s.client_id];
        if (x) { s.status = x.outcome; s.message = x.message; await put("scans", s); }
      }
      const h = await get("meta", "handover");
      if (h && h.id === hid) { h.closed = true; await put("meta", h); }
      links.push({ ward: items[0].ward, receipt: d.receipt, escpos: d.escpos });
    }
    const conflicts = (await all("scans")).filter((s) => ["taken", "unknown", "invalid", "not_discharged"].includes(s.status)).length;
    $("rc-receipts").innerHTML = links.map((l) => `<a class="button" href="${l.receipt}" target="_blank">打印交接单（${l.ward.replace(/</g, "&lt;")}）</a>`).join(" ");
    await render();  // the list shows the outcomes before the message says the upload is done
    msg(`上传完成${conflicts ? `，${conflicts} 条有问题，见列表` : ""}`, conflicts > 0);
  }
  $("rc-upload").addEventListener("click", upload);

  // camera: BarcodeDetector where the browser has it, else the polyfill (zxing wasm) served here
  async function detector() {
    if (!("BarcodeDetector" in window)) {
      await new Promise((resolve, reject) => {
        const s = document.createElement("script");
        s.src = "/static/recovery/vendor/barcode-detector.js";
        s.onload = resolve; s.onerror = reject;
        document.head.appendChild(s);
      });
      if (window.BarcodeDetectionAPI && BarcodeDetectionAPI.setZXingModuleOverrides) {
        BarcodeDetectionAPI.setZXingModuleOverrides({
          locateFile: (p, prefix) => (p.endsWith(".wasm") ? "/static/recovery/vendor/zxing_reader.wasm" : prefix + p),
        });
      }
    }
    return new BarcodeDetector({ formats: ["code_128"] });
  }
  let stream = null;
  $("rc-camera").addEventListener("click", async () => {
    const v = $("rc-video");
    if (stream) { stream.getTracks().forEach((t) => t.stop()); stream = null; v.hidden = true; return; }
    try {
      const det = await detector();
      stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } });
      v.srcObject = stream; v.hidden = false; await v.play();
      let last = "";
      const tick = async () => {
        if (!stream) return;
        try {
          const found = await det.detect(v);
          if (found.length && found[0].rawValue !== last) { last = found[0].rawValue; await addScan(last); }
        } catch (e) { /* a frame that could not be read */ }
        setTimeout(tick, 250);
      };
      tick();
    } catch (e) { msg("无法使用摄像头：" + e.message + "（可用扫码枪）", true); }
  });

  netState();
  render();
})();
