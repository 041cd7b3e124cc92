// The watch-and-buy page at /watch/{channel}: the LL-HLS player (hls.js), the show's pinned
// product with live stock over SSE, and the purchase: reservation, countdown, payment.
import { api, ApiError, clock, countdown, el, money, newIdempotencyKey } from '/js/api.js';
import { cancel, explain, orderPage, pay, reservationDeadline } from '/js/checkout.js';
import '/js/live_sync.js';

// Embedded from the npm package at build time (web/meson.build); never a CDN. Loaded only once
// the stream is live, so the page itself opens at its own (small) size.
const HLS_SCRIPT = '/vendor/hls.light.min.js';

function loadHls() {
  if (window.Hls) return Promise.resolve(window.Hls);
  return new Promise((resolve) => {
    const script = document.createElement('script');
    script.src = HLS_SCRIPT;
    script.onload = () => resolve(window.Hls || null);
    script.onerror = () => resolve(null);
    document.head.append(script);
  });
}

const $ = (id) => document.getElementById(id);
const channel = decodeURIComponent(location.pathname.split('/').filter(Boolean)[1] || '');
const params = new URLSearchParams(location.search);
const playlist = `/live/${encodeURIComponent(channel)}/index.m3u8`;

const video = $('video');
const overlay = $('overlay');
const state = {
  broadcast: null,
  productId: params.get('product') || '',
  shownId: '',
  product: null,
  stock: null,
  events: null,
  hls: null,
  playing: false,
  everPlayed: false,
  wasLive: null,
  attemptKey: null,
  busy: false,
  order: null,
  stopCountdown: null,
};

// ---- Notices --------------------------------------------------------------------------------

function notice(text, tone = '') {
  const box = $('notices');
  const p = el('p', { class: `notice ${tone}`, text });
  box.replaceChildren(p);
}

function setOverlay(text) {
  overlay.textContent = text;
  overlay.hidden = !text;
}

// ---- Broadcast ------------------------------------------------------------------------------

function setShowStatus(status) {
  const badge = $('show-status');
  const live = status === 'live';
  badge.textContent = live ? 'LIVE' : status === 'scheduled' ? 'Soon' : 'Offline';
  badge.className = live ? 'badge live' : 'badge';
  if (state.wasLive === false && live) notice('The show has started!', 'ok');
  if (state.wasLive === true && status === 'ended') setOverlay('The show has ended. Thanks for watching!');
  state.wasLive = live;
}

function pinnedOf(b) {
  if (!b) return '';
  if (typeof b.pinned_product_id === 'string' && b.pinned_product_id) return b.pinned_product_id;
  if (b.pinned_product && b.pinned_product.id) return b.pinned_product.id;
  const products = b.products || b.product_ids || [];
  const first = products[0];
  return typeof first === 'string' ? first : first ? first.id : '';
}

async function loadBroadcast() {
  let list;
  try {
    const data = await api('/api/broadcasts');
    list = Array.isArray(data) ? data : data.broadcasts || [];
  } catch {
    return; // without the broadcasts API the page still plays and sells ?product=
  }
  const mine = list.filter((b) => b.channel === channel);
  const b = mine.find((x) => x.status === 'live') || mine[0] || null;
  state.broadcast = b;
  if (b) {
    $('show-title').textContent = b.title || channel;
    document.title = `${b.title || channel} · live`;
    $('show-description').textContent = b.status === 'scheduled'
      ? `Starts ${new Date(b.starts_at).toLocaleString()}. ${b.description || ''}`
      : b.description || '';
    setShowStatus(b.status);
  } else if (state.wasLive === true) {
    setShowStatus('ended');
  }
  const pinned = params.get('product') || pinnedOf(b);
  // A product change waits while the buyer holds a reservation for the one on screen.
  if (pinned && pinned !== state.shownId && !state.order) {
    state.shownId = pinned;
    showProduct(pinned);
  }
}

// ---- Player ---------------------------------------------------------------------------------

function latencySeconds() {
  const h = state.hls;
  if (h && h.playingDate instanceof Date && !Number.isNaN(h.playingDate.getTime())) {
    return (Date.now() - h.playingDate.getTime()) / 1000;
  }
  if (h && Number.isFinite(h.latency) && h.latency > 0) return h.latency;
  if (video.seekable.length) return video.seekable.end(video.seekable.length - 1) - video.currentTime;
  return NaN;
}

function updateLatency() {
  const out = $('latency');
  if (!state.playing || video.paused) {
    out.textContent = '–';
    out.removeAttribute('data-seconds');
    return;
  }
  const s = latencySeconds();
  if (!Number.isFinite(s)) return;
  out.textContent = `${s.toFixed(1)} s`;
  out.dataset.seconds = s.toFixed(2);
}

function buildQualityMenu(levels) {
  const select = $('quality');
  const options = [el('option', { value: '-1', text: 'Auto' })];
  levels.forEach((l, i) => {
    const label = l.height ? `${l.height}p` : `${Math.round((l.bitrate || 0) / 1000)} kb/s`;
    options.push(el('option', { value: String(i), text: label }));
  });
  select.replaceChildren(...options);
  $('quality-row').hidden = levels.length < 2;
}

async function playlistReady() {
  try {
    const res = await fetch(playlist, { cache: 'no-store' });
    return res.ok;
  } catch {
    return false;
  }
}

async function startPlayer() {
  if (state.hls || video.src) return;
  if (!(await playlistReady())) {
    const b = state.broadcast;
    setOverlay(
      b && b.status === 'scheduled'
        ? `The show starts ${new Date(b.starts_at).toLocaleString()}. This page starts playing by itself.`
        : 'The stream is offline. This page starts playing as soon as it is live.',
    );
    setTimeout(startPlayer, 3000);
    return;
  }
  const Hls = await loadHls();
  if (Hls && Hls.isSupported()) {
    // The same hls.js settings and latency keeping as /player.html, which bench/latency measures
    // (docs/llhls.md): /js/live_sync.js, not hls.js, sets the playback rate.
    const hls = new Hls({ lowLatencyMode: true, backBufferLength: 30, maxLiveSyncPlaybackRate: 1 });
    state.hls = hls;
    window.hawkerHls = hls;
    hls.on(Hls.Events.MANIFEST_PARSED, (_, data) => buildQualityMenu(data.levels || hls.levels));
    hls.on(Hls.Events.LEVELS_UPDATED, (_, data) => buildQualityMenu(data.levels || hls.levels));
    hls.on(Hls.Events.LEVEL_SWITCHED, (_, data) => {
      const auto = $('quality').options[0];
      const l = hls.levels[data.level];
      if (auto && l && l.height) auto.textContent = `Auto (${l.height}p)`;
    });
    hls.on(Hls.Events.ERROR, (_, data) => {
      if (!data.fatal) return;
      if (data.type === Hls.ErrorTypes.MEDIA_ERROR) {
        hls.recoverMediaError();
        return;
      }
      // The stream ended or the network dropped: start over once the playlist is back.
      stopPlayer();
      setOverlay(state.everPlayed ? 'The stream paused. Reconnecting…' : 'Connecting…');
      setTimeout(startPlayer, 3000);
    });
    hls.loadSource(playlist);
    hls.attachMedia(video);
    video.addEventListener('canplay', () => window.hawkerLiveSync.jumpToLiveSync(hls, video), {
      once: true,
    });
    window.hawkerLiveSync.followTarget(hls, video);
  } else if (video.canPlayType('application/vnd.apple.mpegurl')) {
    video.src = playlist; // Safari plays LL-HLS natively
  } else {
    setOverlay('This browser cannot play the live video.');
    return;
  }
  video.play().catch(() => setOverlay('Tap play to start the video.'));
}

function stopPlayer() {
  if (state.hls) {
    state.hls.destroy();
    state.hls = null;
  }
  state.playing = false;
}

video.addEventListener('playing', () => {
  state.playing = true;
  if (!state.everPlayed && state.wasLive === false) notice('The show has started!', 'ok');
  state.everPlayed = true;
  if (!state.broadcast) setShowStatus('live');
  setOverlay('');
});
video.addEventListener('waiting', () => {
  state.playing = false;
});
overlay.addEventListener('click', () => video.play().catch(() => {}));
$('quality').addEventListener('change', (e) => {
  if (state.hls) state.hls.currentLevel = Number(e.target.value);
});
$('unmute').addEventListener('click', (e) => {
  video.muted = !video.muted;
  e.target.textContent = video.muted ? 'Unmute' : 'Mute';
  e.target.setAttribute('aria-pressed', String(!video.muted));
  if (!video.muted) video.play().catch(() => {});
});
setInterval(updateLatency, 1000);

// ---- Product and live stock -----------------------------------------------------------------

function renderStock(stock, announce) {
  const s = $('stock');
  state.stock = stock;
  const threshold = state.product && state.product.low_stock_threshold;
  s.dataset.stock = String(stock);
  if (stock === 0) {
    s.textContent = 'Sold out';
    s.className = 'stock out';
  } else {
    s.textContent = `${stock} left`;
    s.className = threshold && stock <= threshold ? 'stock low' : 'stock';
  }
  const buy = $('buy');
  buy.disabled = stock === 0 || state.busy;
  buy.textContent = stock === 0 ? 'Sold out' : 'Buy now';
  $('quantity').max = String(Math.max(1, Math.min(10, stock)));
  if (announce === 'sold_out') notice('Sold out! Every unit has been bought.', 'bad');
  else if (announce === 'low_stock') notice(`Hurry: only ${stock} left!`, 'warn');
}

function listen(productId) {
  if (state.events) state.events.close();
  const es = new EventSource(`/api/products/${encodeURIComponent(productId)}/events`);
  state.events = es;
  const data = (e) => {
    try {
      return JSON.parse(e.data);
    } catch {
      return {};
    }
  };
  es.addEventListener('stock', (e) => renderStock(data(e).stock));
  es.addEventListener('low_stock', (e) => renderStock(data(e).stock, 'low_stock'));
  es.addEventListener('sold_out', () => renderStock(0, 'sold_out'));
  es.addEventListener('purchase', (e) => {
    const d = data(e);
    if (state.stock !== 0 && d.quantity) {
      notice(d.orders > 1 ? `${d.orders} people just bought this` : 'Someone just bought this');
    }
  });
  es.addEventListener('open', () => $('stock').removeAttribute('aria-busy'));
  es.addEventListener('error', () => {
    // EventSource reconnects by itself and resumes from the last event id.
    $('stock').setAttribute('aria-busy', 'true');
  });
}

async function showProduct(id) {
  state.productId = id;
  let p;
  try {
    p = await api(`/api/products/${encodeURIComponent(id)}`);
  } catch (e) {
    if (e.status === 404) {
      $('no-product').textContent = 'This product is not on sale.';
      $('no-product').hidden = false;
      $('product-body').hidden = true;
    } else {
      setTimeout(() => showProduct(id), 3000);
    }
    return;
  }
  state.product = p;
  $('no-product').hidden = true;
  $('product-body').hidden = false;
  $('product-title').textContent = p.title;
  $('product-description').textContent = p.description || '';
  $('price').textContent = money(p.price_minor, p.currency);
  const img = $('product-image');
  if (p.images && p.images.length) {
    img.src = p.images[0];
    img.alt = p.title;
    img.hidden = false;
  } else {
    img.hidden = true;
  }
  renderStock(p.stock);
  listen(id);
  restoreReservation();
}

// ---- Buying ---------------------------------------------------------------------------------

const form = $('buy-form');
const savedKey = () => `hawker.reservation.${state.productId}`;

function fieldFor(name) {
  return { quantity: 'quantity', email: 'email', name: 'name', shipping_address: 'address' }[name];
}

function formError(text, field) {
  $('form-error').textContent = text;
  for (const input of form.querySelectorAll('input, textarea')) input.removeAttribute('aria-invalid');
  const id = field && fieldFor(field);
  if (id) {
    $(id).setAttribute('aria-invalid', 'true');
    $(id).focus();
  }
}

function setBusy(busy) {
  state.busy = busy;
  const buy = $('buy');
  buy.disabled = busy || state.stock === 0;
  buy.setAttribute('aria-busy', String(busy));
  if (busy) buy.textContent = 'Reserving…';
  else if (state.stock !== 0) buy.textContent = 'Buy now';
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Sends one purchase attempt, retrying only what cannot have made a second order. */
async function reserve(body) {
  for (let tries = 0; ; tries++) {
    try {
      return await api('/api/orders', {
        method: 'POST',
        body,
        headers: { 'Idempotency-Key': state.attemptKey },
      });
    } catch (e) {
      // Same key: if the first try did reserve, the retry is answered with that reservation.
      const transient =
        e instanceof ApiError &&
        (e.status === 0 || e.status === 503 || e.kind === 'idempotency-key-in-flight');
      if (!transient || tries >= 4) throw e;
      await sleep(500 * 2 ** tries);
    }
  }
}

form.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  if (state.busy || !state.product) return;
  const quantity = Number($('quantity').value);
  const email = $('email').value.trim();
  const name = $('name').value.trim();
  const address = $('address').value.trim();
  if (!Number.isInteger(quantity) || quantity < 1) return formError('Choose a quantity of at least 1.', 'quantity');
  if (!/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(email)) return formError('Enter your email address.', 'email');
  if (!name) return formError('Enter your name.', 'name');
  if (!address) return formError('Enter the shipping address.', 'shipping_address');
  formError('');
  setBusy(true);
  state.attemptKey = state.attemptKey || newIdempotencyKey();
  try {
    const order = await reserve({
      product_id: state.product.id,
      quantity,
      email,
      name,
      shipping_address: address,
    });
    state.attemptKey = null;
    startReservation(order, reservationDeadline(order));
  } catch (e) {
    // A definite answer ends this attempt; a network failure keeps its key so that trying
    // again cannot make a second order.
    if (!(e instanceof ApiError) || e.status !== 0) state.attemptKey = null;
    const field = e instanceof ApiError && Array.isArray(e.problem.errors) ? e.problem.errors[0].field : '';
    formError(explain(e), field);
    if (e.kind === 'sold-out') renderStock(0, 'sold_out');
  } finally {
    setBusy(false);
  }
});

function startReservation(order, deadline) {
  state.order = order;
  try {
    localStorage.setItem(savedKey(), JSON.stringify({ token: order.token, deadline }));
  } catch {
    /* private mode: the reservation still works on this page */
  }
  form.hidden = true;
  const r = $('reservation');
  r.hidden = false;
  $('reservation-summary').textContent =
    `${order.quantity} × ${state.product.title} · ${money(order.amount_minor, order.currency)}`;
  $('order-link').href = orderPage(order);
  $('pay').disabled = false;
  $('pay-error').textContent = '';
  r.querySelector('h3').setAttribute('tabindex', '-1');
  r.querySelector('h3').focus();
  let lastSpoken = null;
  if (state.stopCountdown) state.stopCountdown();
  state.stopCountdown = countdown(deadline, (left) => {
    $('countdown').textContent = clock(left);
    const minute = Math.ceil(left / 60);
    if (minute !== lastSpoken && left > 0) {
      lastSpoken = minute;
      $('countdown-sr').textContent = `${minute} minute${minute === 1 ? '' : 's'} left to pay`;
    }
    if (left <= 0) expireReservation();
  });
}

function endReservation() {
  if (state.stopCountdown) state.stopCountdown();
  state.stopCountdown = null;
  state.order = null;
  try {
    localStorage.removeItem(savedKey());
  } catch {
    /* nothing saved */
  }
  $('reservation').hidden = true;
  form.hidden = false;
}

function expireReservation() {
  endReservation();
  formError('Your reservation expired and the units went back on sale. You can try again.');
}

async function restoreReservation() {
  let saved;
  try {
    saved = JSON.parse(localStorage.getItem(savedKey()) || 'null');
  } catch {
    saved = null;
  }
  if (!saved || state.order) return;
  try {
    const order = await api(`/api/orders/${encodeURIComponent(saved.token)}`);
    if (order.status === 'reserved') startReservation(order, saved.deadline);
    else localStorage.removeItem(savedKey());
  } catch {
    localStorage.removeItem(savedKey());
  }
}

$('pay').addEventListener('click', async () => {
  const order = state.order;
  if (!order) return;
  $('pay').disabled = true;
  $('pay').textContent = 'Paying…';
  $('pay-error').textContent = '';
  try {
    const paid = await pay(order);
    endReservation();
    location.assign(orderPage(paid || order));
  } catch (e) {
    $('pay-error').textContent = explain(e);
    $('pay').disabled = false;
  } finally {
    $('pay').textContent = 'Pay now';
  }
});

$('cancel').addEventListener('click', async () => {
  const order = state.order;
  if (!order) return;
  $('cancel').disabled = true;
  try {
    await cancel(order);
    endReservation();
    formError('');
    notice('Reservation cancelled.');
  } catch (e) {
    $('pay-error').textContent = explain(e);
  } finally {
    $('cancel').disabled = false;
  }
});

// ---- Start ----------------------------------------------------------------------------------

if (!channel) {
  setOverlay('No channel in the address.');
} else {
  $('show-title').textContent = channel;
  loadBroadcast().then(() => {
    if (state.productId && !state.shownId) {
      state.shownId = state.productId;
      showProduct(state.productId);
    }
    startPlayer();
  });
  setInterval(() => {
    if (!document.hidden) loadBroadcast();
  }, 10000);
}
