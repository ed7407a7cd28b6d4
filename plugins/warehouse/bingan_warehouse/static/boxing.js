// The scanned run: count boxes and records as they come in (a scanner types a code and Enter).
(function () {
  const box = document.getElementById("wh-codes");
  const out = document.getElementById("wh-count");
  if (!box || !out) return;
  const prefix = /^[A-Z]{1,4}\d{3,10}$/;
  const show = () => {
    const codes = box.value.split(/[\s,，]+/).filter((x) => x);
    const boxes = codes.filter((c) => prefix.test(c.toUpperCase()) && !/^BA/i.test(c)).length;
    out.textContent = codes.length ? "已扫描 " + codes.length + " 个条码（箱号 " + boxes + " 个）" : "";
  };
  box.addEventListener("input", show);
  show();
})();
