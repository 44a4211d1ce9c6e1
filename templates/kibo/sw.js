// Kibo's service worker, served at the site's root (kibo.views.service_worker) so that its
// scope is the whole site. It keeps the app shell (kibo.pwa: the stylesheet, the scripts
// every page loads, the icons, the offline page) and nothing else: pages, partials, JSON,
// QR pictures and receipts hold orders, wallets and money states, so they always come from
// the network and are never stored. It also shows the Web Push notifications Kibo sends.
"use strict";

const KIBO = {{ kibo|safe }};

self.addEventListener("install", (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(KIBO.cache);
    // Past the browser's HTTP cache: the shell must be this version's files.
    await cache.addAll(KIBO.shell.map((url) => new Request(url, { cache: "reload" })));
    await self.skipWaiting();
  })());
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) {
      if (name.startsWith(KIBO.cachePrefix) && name !== KIBO.cache) await caches.delete(name);
    }
    if (self.registration.navigationPreload) await self.registration.navigationPreload.enable();
    await self.clients.claim();
  })());
});

async function fromShell(request) {
  const cache = await caches.open(KIBO.cache);
  return (await cache.match(request)) || fetch(request);
}

async function fromNetwork(event) {
  try {
    return (await event.preloadResponse) || (await fetch(event.request));
  } catch (offline) {
    const cache = await caches.open(KIBO.cache);
    return (await cache.match(KIBO.offline)) || Response.error();
  }
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== "GET" || url.origin !== self.location.origin) return;
  if (url.pathname.startsWith(KIBO.static)) {
    event.respondWith(fromShell(request));
  } else if (request.mode === "navigate") {
    event.respondWith(fromNetwork(event));
  }
  // Anything else (htmx partials, JSON, QR pictures, receipts, the manifest) is the
  // browser's business: this worker neither answers nor keeps it.
});

// A URL on this site, absolute; anything else (another site, nonsense) is the home page.
function onThisSite(address) {
  try {
    const url = new URL(address, self.location.origin);
    if (url.origin === self.location.origin) return url.href;
  } catch (invalid) {
    // falls through to the home page
  }
  return new URL(KIBO.home, self.location.origin).href;
}

function notificationOf(message) {
  const text = (value) => (typeof value === "string" && value ? value : null);
  const tag = text(message.tag);
  const options = {
    body: text(message.body) || (text(message.title) ? "" : KIBO.body),
    data: { url: onThisSite(text(message.url) || KIBO.home) },
    icon: KIBO.icon,
    badge: KIBO.badge,
    lang: text(message.lang) || KIBO.lang,
  };
  if (tag) Object.assign(options, { tag, renotify: true });  // renotify needs a tag
  if (Number.isFinite(message.timestamp)) options.timestamp = message.timestamp;
  return { title: text(message.title) || KIBO.title, options };
}

self.addEventListener("push", (event) => {
  // Chrome requires every push to show a notification: one that cannot be read still
  // shows Kibo's generic one.
  let message = {};
  try {
    const data = event.data ? event.data.json() : null;
    if (data && typeof data === "object" && !Array.isArray(data)) message = data;
  } catch (notJson) {
    message = {};
  }
  const { title, options } = notificationOf(message);
  event.waitUntil(self.registration.showNotification(title, options));
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const url = onThisSite((event.notification.data || {}).url || KIBO.home);
  event.waitUntil((async () => {
    const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
    for (const client of windows) {
      if (new URL(client.url).origin !== self.location.origin) continue;
      let shown = client;
      if (client.url !== url) {
        try {
          shown = await client.navigate(url);  // only a window this worker controls
        } catch (uncontrolled) {
          continue;
        }
      }
      if (shown) {
        try {
          await shown.focus();
        } catch (notAllowed) {
          // Focusing needs the tap itself; the window is on the page all the same.
        }
        return;
      }
    }
    await self.clients.openWindow(url);
  })());
});
