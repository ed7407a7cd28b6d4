// Service worker of the ward phone page (scope /recovery/phone/): the page and everything it
// loads are kept, so the page opens and works with no network; data lives in IndexedDB.
const CACHE = "bingan-recovery-v1";
const PAGE = "/recovery/phone/app";
const FILES = [
  PAGE, "/recovery/phone/manifest.webmanifest",
  "/static/theme/theme.css", "/static/theme/favicon.svg", "/static/theme/shell.js",
  "/static/vendor/htmx.min.js", "/static/recovery/recovery.css", "/static/recovery/phone.js",
  "/static/recovery/icon.svg", "/static/recovery/vendor/barcode-detector.js",
  "/static/recovery/vendor/zxing_reader.wasm",
];

self.addEventListener("install", (ev) => {
  ev.waitUntil(caches.open(CACHE).then((c) => c.addAll(FILES)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (ev) => {
  ev.waitUntil(caches.keys()
    .then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
    .then(() => self.clients.claim()));
});

self.addEventListener("fetch", (ev) => {
  const req = ev.request;
  if (req.method !== "GET") return;
  const url = new URL(req.url);
  if (url.origin !== location.origin) return;
  if (url.pathname === PAGE) {
    // the page: fresh from the server when it answers (new CSRF token), else the kept copy
    ev.respondWith(fetch(req).then((res) => {
      if (res.ok && !res.redirected) {
        const copy = res.clone();
        caches.open(CACHE).then((c) => c.put(PAGE, copy));
        return res;
      }
      return caches.match(PAGE).then((hit) => hit || res);
    }).catch(() => caches.match(PAGE)));
    return;
  }
  if (FILES.includes(url.pathname)) {
    ev.respondWith(caches.match(url.pathname).then((hit) => hit || fetch(req)));
  }
});
