// Runs Kibo's rendered service worker (templates/kibo/sw.js) in a bare V8 context whose
// caches, network, clients and notifications are recorders, and plays it events.
// Usage: node service_worker.mjs <rendered sw.js>, with a JSON list of steps on stdin:
//   {"event": "install"} | {"event": "activate", "caches": [names already there]}
//   {"event": "fetch", "url", "method"?, "mode"?, "offline"?}
//   {"event": "push", "data": text or null}
//   {"event": "notificationclick", "data": {...}, "windows": [{"url", "controlled"}]}
// Prints {"steps": [what each step did], "writes": [every write to Cache Storage]}.
import { readFileSync } from "node:fs";
import vm from "node:vm";

const ORIGIN = "https://kibo.example";
const source = readFileSync(process.argv[2], "utf8");
const steps = JSON.parse(readFileSync(0, "utf8"));

const writes = [];
const stores = new Map(); // cache name -> Map(url -> body)
let offline = false;
let record = {};

const absolute = (request) => new URL(typeof request === "string" ? request : request.url, ORIGIN).href;

async function network(request) {
  const url = absolute(request);
  if (offline) throw new TypeError("Failed to fetch");
  return new Response(`network: ${url}`);
}

class Cache {
  constructor(name) {
    this.name = name;
    if (!stores.has(name)) stores.set(name, new Map());
  }
  get entries() {
    return stores.get(this.name);
  }
  async addAll(requests) {
    const urls = requests.map(absolute);
    writes.push({ cache: this.name, method: "addAll", urls });
    for (const url of urls) this.entries.set(url, await (await network(url)).text());
  }
  async add(request) {
    writes.push({ cache: this.name, method: "add", urls: [absolute(request)] });
  }
  async put(request) {
    writes.push({ cache: this.name, method: "put", urls: [absolute(request)] });
  }
  async match(request) {
    const body = this.entries.get(absolute(request));
    return body === undefined ? undefined : new Response(body, { headers: { "x-from": "cache" } });
  }
  async keys() {
    return [...this.entries.keys()];
  }
}

const caches = {
  open: async (name) => new Cache(name),
  keys: async () => [...stores.keys()],
  delete: async (name) => {
    (record.deleted ||= []).push(name);
    return stores.delete(name);
  },
  match: async () => {
    throw new Error("the worker must read its own version's cache, not every cache");
  },
};

let windows = [];
const notifications = [];

class WindowClient {
  constructor({ url, controlled }) {
    this.url = new URL(url, ORIGIN).href;
    this.controlled = controlled;
  }
  async navigate(url) {
    if (!this.controlled) throw new TypeError("not controlled by this worker");
    (record.navigated ||= []).push(url);
    this.url = url;
    return this;
  }
  async focus() {
    (record.focused ||= []).push(this.url);
    return this;
  }
}

const listeners = {};
const self = {
  location: new URL("/sw.js", ORIGIN),
  addEventListener: (type, listener) => (listeners[type] ||= []).push(listener),
  skipWaiting: async () => {
    record.skippedWaiting = true;
  },
  registration: {
    navigationPreload: { enable: async () => (record.preload = true) },
    showNotification: async (title, options) => {
      notifications.push({ title, options });
      (record.notifications ||= []).push({ title, options });
    },
    getNotifications: async () => notifications,
  },
  clients: {
    claim: async () => (record.claimed = true),
    matchAll: async () => windows,
    openWindow: async (url) => (record.opened ||= []).push(url),
  },
};

class WorkerRequest extends Request {
  constructor(input, init) {
    super(typeof input === "string" ? new URL(input, ORIGIN) : input, init);
  }
}

const context = vm.createContext({
  self,
  caches,
  fetch: network,
  Request: WorkerRequest,
  Response,
  URL,
  console,
});
vm.runInContext(source, context, { filename: "sw.js" });

async function dispatch(type, event) {
  const waits = [];
  event.waitUntil = (promise) => waits.push(promise);
  for (const listener of listeners[type] || []) listener(event);
  await Promise.all(waits);
  return event;
}

const out = [];
for (const step of steps) {
  record = {};
  offline = Boolean(step.offline);
  if (step.event === "install" || step.event === "activate") {
    for (const name of step.caches || []) new Cache(name);
    await dispatch(step.event, {});
  } else if (step.event === "fetch") {
    let answer = null;
    const request = {
      url: new URL(step.url, ORIGIN).href,
      method: step.method || "GET",
      mode: step.mode || "cors",
    };
    await dispatch("fetch", {
      request,
      preloadResponse: Promise.resolve(undefined),
      respondWith: (promise) => (answer = promise),
    });
    record.answered = answer !== null;
    if (answer) {
      // A promise that fails, or Response.error(), is the browser's network error.
      const response = await answer.catch(() => Response.error());
      record.status = response.type === "error" ? "network error" : response.status;
      record.from = response.headers.get("x-from") || "network";
      record.body = response.type === "error" ? null : await response.text();
    }
  } else if (step.event === "push") {
    const data =
      step.data === null
        ? null
        : { json: () => JSON.parse(step.data), text: () => step.data };
    await dispatch("push", { data });
  } else if (step.event === "notificationclick") {
    windows = (step.windows || []).map((window) => new WindowClient(window));
    const notification = {
      data: step.data,
      close: () => (record.closed = true),
    };
    await dispatch("notificationclick", { notification });
  }
  out.push(record);
}
process.stdout.write(JSON.stringify({ steps: out, writes }));
