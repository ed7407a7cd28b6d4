// The worklist's "select all" box.
(function () {
  "use strict";
  var all = document.getElementById("dc-all");
  if (!all) return;
  all.addEventListener("change", function () {
    document.querySelectorAll("#dc-list input[name=adm]:not(:disabled)").forEach(function (b) { b.checked = all.checked; });
  });
})();
