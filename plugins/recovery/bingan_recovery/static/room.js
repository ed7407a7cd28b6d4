// Record-room scanning: after each scan the field is emptied and focused for the next one.
document.addEventListener("htmx:afterRequest", (ev) => {
  if (ev.detail.elt && ev.detail.elt.id === "rc-scan") {
    const f = document.getElementById("rc-barcode");
    f.value = "";
    f.focus();
    if (window.htmx) htmx.trigger("#rc-live", "every");
  }
});
