// The buyer's order page at /orders/{token}: status, details, and payment while reserved.
import { api, clock, countdown, el, money, when } from '/js/api.js';
import { cancel, explain, pay } from '/js/checkout.js';

const $ = (id) => document.getElementById(id);
const token = decodeURIComponent(location.pathname.split('/').filter(Boolean)[1] || '');

const STATUS = {
  reserved: ['Reserved', 'warn', 'Your items are held for you until the payment window ends.'],
  paid: ['Paid', 'ok', 'Thank you! Your payment is confirmed; the seller will ship soon.'],
  shipped: ['Shipped', 'ok', 'Your order is on its way.'],
  expired: ['Expired', 'bad', 'The payment window ended before payment, so the items went back on sale.'],
  cancelled: ['Cancelled', 'bad', 'This order was cancelled.'],
  refunded: ['Refunded', '', 'This order was refunded.'],
  needs_refund: ['Refund pending', 'warn', 'Your payment arrived after the items sold out; the seller will refund you.'],
};

let order = null;
let stop = null;
let poll = null;

function address(a) {
  if (typeof a === 'string') return a;
  return a && typeof a === 'object' ? Object.values(a).join(', ') : '';
}

function render(o, serverNow) {
  order = o;
  const [label, tone, text] = STATUS[o.status] || [o.status, '', ''];
  $('status').textContent = label;
  $('status').className = `badge ${tone}`;
  $('status').dataset.status = o.status;
  $('status-text').textContent = text;
  $('facts').replaceChildren(
    el('dt', { text: 'Order' }), el('dd', { text: o.id }),
    el('dt', { text: 'Quantity' }), el('dd', { text: String(o.quantity) }),
    el('dt', { text: 'Total' }), el('dd', { text: money(o.amount_minor, o.currency) }),
    el('dt', { text: 'Name' }), el('dd', { text: o.name }),
    el('dt', { text: 'Email' }), el('dd', { text: o.email }),
    el('dt', { text: 'Ship to' }), el('dd', { text: address(o.shipping_address) }),
    el('dt', { text: 'Placed' }), el('dd', { text: when(o.created_at) }),
  );
  const reserved = o.status === 'reserved';
  $('pay-box').hidden = !reserved;
  if (stop) stop();
  stop = null;
  if (reserved) {
    // Count down on the server's clock: the phone's may be off.
    const deadline = Date.now() + (Date.parse(o.expires_at) - serverNow);
    stop = countdown(deadline, (left) => {
      $('countdown').textContent = clock(left);
      if (left <= 0) load();
    });
  }
  if (reserved && !poll) poll = setInterval(load, 5000);
  if (!reserved && poll) {
    clearInterval(poll);
    poll = null;
  }
}

async function load() {
  try {
    const res = await fetch(`/api/orders/${encodeURIComponent(token)}`, { cache: 'no-store' });
    const serverNow = Date.parse(res.headers.get('Date') || '') || Date.now();
    const body = await res.json().catch(() => ({}));
    if (res.status === 404) {
      $('status').textContent = 'Not found';
      $('error').textContent = 'There is no order at this address. Check the link you were sent.';
      return;
    }
    if (!res.ok) throw new Error(body.detail || `HTTP ${res.status}`);
    $('error').textContent = '';
    render(body, serverNow);
  } catch (e) {
    $('error').textContent =
      e instanceof TypeError ? 'Network trouble: retrying…' : `Could not load the order: ${e.message}`;
  }
}

$('pay').addEventListener('click', async () => {
  if (!order) return;
  $('pay').disabled = true;
  try {
    await pay(order);
    await load();
    $('heading').focus();
  } catch (e) {
    $('error').textContent = explain(e);
  } finally {
    $('pay').disabled = false;
  }
});

$('cancel').addEventListener('click', async () => {
  if (!order) return;
  $('cancel').disabled = true;
  try {
    await cancel(order);
    await load();
  } catch (e) {
    $('error').textContent = explain(e);
  } finally {
    $('cancel').disabled = false;
  }
});

load();
