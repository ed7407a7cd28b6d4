// The scanned run: count the barcodes as they come in (a scanner types a code and Enter).
(function () {
  const box = document.getElementById("tk-codes");
  const out = document.getElementById("tk-count");
  if (!box || !out) return;
  const show = () => {
    const n = box.value.split(/[\s,，]+/).filter((x) => x).length;
    out.textContent = n ? "已扫描 " + n + " 份" : "";
  };
  box.addEventListener("input", show);
  show();
})();
