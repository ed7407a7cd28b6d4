// The receipt page: print it (browser), or send the ESC/POS bytes from the server to a
// Bluetooth micro printer through Web Bluetooth where the browser has it.
(function () {
  const pr = document.getElementById("rc-print-page");
  if (pr) pr.addEventListener("click", () => window.print());
  const bt = document.getElementById("rc-bt");
  const status = document.getElementById("rc-bt-status");
  if (!bt || !navigator.bluetooth) return;
  bt.hidden = false;
  // the usual services of Bluetooth LE receipt printers
  const SERVICES = ["000018f0-0000-1000-8000-00805f9b34fb", "0000ff00-0000-1000-8000-00805f9b34fb",
                    "e7810a71-73ae-499d-8c15-faa9aef0c3f2", "49535343-fe7d-4ae5-8fa9-9fafd205e455"];
  bt.addEventListener("click", async () => {
    try {
      status.textContent = "正在连接打印机…";
      const dev = await navigator.bluetooth.requestDevice({ acceptAllDevices: true, optionalServices: SERVICES });
      const gatt = await dev.gatt.connect();
      let ch = null;
      for (const svc of await gatt.getPrimaryServices()) {
        for (const c of await svc.getCharacteristics()) {
          if (c.properties.write || c.properties.writeWithoutResponse) { ch = c; break; }
        }
        if (ch) break;
      }
      if (!ch) throw new Error("打印机没有可写入的特征");
      const data = new Uint8Array(await (await fetch(bt.dataset.src, { credentials: "same-origin" })).arrayBuffer());
      for (let i = 0; i < data.length; i += 180) {
        const part = data.slice(i, i + 180);
        if (ch.properties.writeWithoutResponse) await ch.writeValueWithoutResponse(part);
        else await ch.writeValue(part);
      }
      status.textContent = "已发送到打印机";
      gatt.disconnect();
    } catch (e) {
      status.textContent = "蓝牙打印失败：" + e.message + "（可改用“打印”）";
    }
  });
})();
