// Shared by every page: JSON calls to hawker's API with RFC 9457 problems turned into errors a
// person can read, money in minor units, idempotency keys and countdowns.

/** An API call that failed: `status` 0 means the network, not hawker, failed. */
export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
    // "/problems/sold-out" -> "sold-out": the stable part pages branch on.
    this.kind = String(problem.type || '').split('/').pop() || (status === 0 ? 'network' : '');
  }
}

let extraHeaders = () => ({});

/** Headers added to every write (the dashboard's CSRF token). */
export function setWriteHeaders(fn) {
  extraHeaders = fn;
}

/**
 * Calls the API. `body` is sent as JSON unless it is a Blob/File (sent as is, with its type).
 * Resolves to the parsed JSON (or null for 204); rejects with ApiError.
 */
export async function api(path, { method = 'GET', body, headers = {}, signal } = {}) {
  const init = { method, headers: { Accept: 'application/json', ...headers }, signal };
  if (method !== 'GET' && method !== 'HEAD') Object.assign(init.headers, extraHeaders());
  if (body instanceof Blob) {
    init.body = body;
    init.headers['Content-Type'] = body.type || 'application/octet-stream';
  } else if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers['Content-Type'] = 'application/json';
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, {
      type: 'network',
      title: 'Network trouble',
      detail: 'Could not reach the shop. Check your connection and try again.',
    });
  }
  if (res.status === 204) return null;
  let data = null;
  const text = await res.text();
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = { title: text.slice(0, 200) };
    }
  }
  if (!res.ok) throw new ApiError(res.status, data || { title: res.statusText });
  return data;
}

const digitsCache = new Map();

/** Formats minor units of an ISO 4217 currency for the reader's locale. */
export function money(minor, currency) {
  let fmt = digitsCache.get(currency);
  if (!fmt) {
    try {
      fmt = new Intl.NumberFormat(undefined, { style: 'currency', currency });
    } catch {
      fmt = new Intl.NumberFormat(undefined, { minimumFractionDigits: 2 });
    }
    digitsCache.set(currency, fmt);
  }
  const digits = fmt.resolvedOptions().maximumFractionDigits;
  return fmt.format(Number(minor) / 10 ** digits);
}

/** Parses a decimal amount typed by a person into minor units, or NaN. */
export function toMinor(text, currency) {
  let digits = 2;
  try {
    digits = new Intl.NumberFormat('en', { style: 'currency', currency }).resolvedOptions()
      .maximumFractionDigits;
  } catch {
    /* unknown currency: two digits */
  }
  const m = /^\s*(\d+)(?:[.,](\d*))?\s*$/.exec(text);
  if (!m || (m[2] || '').length > digits) return NaN;
  return Number(m[1]) * 10 ** digits + Number((m[2] || '').padEnd(digits, '0') || 0);
}

/** A fresh Idempotency-Key: one per purchase attempt, reused only when that attempt retries. */
export function newIdempotencyKey() {
  // getRandomValues works on plain-http LAN addresses, where randomUUID does not.
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return 'web-' + Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** "4:05" for 245 s; "0:00" once past. */
export function clock(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

/** Calls `tick(secondsLeft)` every second until `until` (ms since epoch); returns a stopper. */
export function countdown(until, tick) {
  const step = () => {
    const left = (until - Date.now()) / 1000;
    tick(left);
    if (left <= 0) clearInterval(id);
  };
  const id = setInterval(step, 1000);
  step();
  return () => clearInterval(id);
}

/** Local date and time of an RFC 3339 instant. */
export function when(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  return Number.isNaN(d.getTime())
    ? iso
    : d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

/** Creates an element: el('p', {class: 'x', text: 'hi'}, child...). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'text') node.textContent = v;
    else if (k === 'class') node.className = v;
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else if (v === true) node.setAttribute(k, '');
    else node.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : String(c));
  }
  return node;
}
