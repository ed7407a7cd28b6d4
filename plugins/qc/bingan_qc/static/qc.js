// 合格 stays disabled until the page's image has been shown (the server checks it too: a page
// passes only after its image was opened by this inspector).
document.addEventListener("DOMContentLoaded", () => {
  for (const img of document.querySelectorAll("img[data-qc-page]")) {
    const id = img.dataset.qcPage;
    const radios = document.querySelectorAll(`input[data-needs-view="${id}"]`);
    const enable = () => radios.forEach((r) => { r.disabled = false; r.title = ""; });
    if (img.complete && img.naturalWidth > 0) { enable(); continue; }
    radios.forEach((r) => { if (!r.checked) { r.disabled = true; r.title = "请先查看该页图像"; } });
    img.addEventListener("load", enable);
  }
});
