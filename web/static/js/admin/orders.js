// Orders: filter by status and product, details, and the seller's actions (ship, cancel,
// refund with or without restocking).
import { api, el, money, when } from '/js/api.js';

const STATUSES = ['', 'reserved', 'paid', 'shipped', 'expired', 'cancelled', 'refunded', 'needs_refund'];
const TONE = { paid: 'ok', shipped: 'ok', reserved: 'warn', needs_refund: 'warn', expired: 'bad', cancelled: 'bad' };

export async function render(root, { toast, report }) {
  const error = el('p', { class: 'notice bad', role: 'alert' });
  const status = el('select', { id: 'o-status' }, STATUSES.map((s) => el('option', { value: s, text: s || 'any' })));
  const product = el('select', { id: 'o-product' }, el('option', { value: '', text: 'any' }));
  const list = el('div', { class: 'table-wrap', 'aria-live': 'polite' });
  const detail = el('div');
  const titles = new Map();

  const filters = el(
    'form',
    { class: 'row', role: 'search', 'aria-label': 'Filter orders' },
    el('div', {}, el('label', { for: 'o-status', text: 'Status' }), status),
    el('div', {}, el('label', { for: 'o-product', text: 'Product' }), product),
  );
  filters.addEventListener('change', () => load());
  filters.addEventListener('submit', (e) => e.preventDefault());

  async function act(o, action, body) {
    try {
      const changed = await api(`/api/admin/orders/${o.id}/${action}`, { method: 'POST', body });
      toast(`Order ${o.id} is now ${changed.status}`);
      show(changed);
      load();
    } catch (e) {
      report(e, error);
    }
  }

  function show(o) {
    const address = typeof o.shipping_address === 'string' ? o.shipping_address : JSON.stringify(o.shipping_address);
    const buttons = [];
    if (o.status === 'paid') {
      const ship = el('button', { class: 'primary', type: 'button', text: 'Mark shipped' });
      ship.addEventListener('click', () => act(o, 'ship'));
      buttons.push(ship);
    }
    if (o.status === 'reserved' || o.status === 'paid') {
      const cancel = el('button', { type: 'button', text: 'Cancel order' });
      cancel.addEventListener('click', () => confirm(`Cancel ${o.id}? The units go back on sale.`) && act(o, 'cancel'));
      buttons.push(cancel);
    }
    if (['paid', 'shipped', 'needs_refund'].includes(o.status)) {
      const restock = el('input', { id: 'restock', type: 'checkbox', style: 'width:auto;min-height:auto' });
      const refund = el('button', { type: 'button', text: 'Refund' });
      refund.addEventListener('click', () => confirm(`Refund ${money(o.amount_minor, o.currency)}?`) && act(o, 'refund', { restock: restock.checked }));
      buttons.push(refund, el('label', { for: 'restock', style: 'font-weight:400;margin:0' }, restock, ' put the units back on sale'));
    }
    detail.replaceChildren(
      el(
        'section',
        { class: 'card', 'aria-labelledby': 'order-title' },
        el('h2', { id: 'order-title', tabindex: '-1', text: `Order ${o.id}` }),
        el('dl', { class: 'facts' },
          el('dt', { text: 'Status' }), el('dd', {}, el('span', { class: `badge ${TONE[o.status] || ''}`, text: o.status })),
          el('dt', { text: 'Product' }), el('dd', { text: titles.get(o.product_id) || o.product_id }),
          el('dt', { text: 'Quantity' }), el('dd', { text: String(o.quantity) }),
          el('dt', { text: 'Amount' }), el('dd', { text: money(o.amount_minor, o.currency) }),
          el('dt', { text: 'Buyer' }), el('dd', { text: `${o.name} <${o.email}>` }),
          el('dt', { text: 'Ship to' }), el('dd', { text: address }),
          el('dt', { text: 'Placed' }), el('dd', { text: when(o.created_at) }),
          el('dt', { text: 'Payment' }), el('dd', { text: o.payment ? `${o.payment.provider} ${o.payment.reference}` : 'none yet' }),
          el('dt', { text: 'Restocked' }), el('dd', { text: o.restocked ? 'yes' : 'no' })),
        el('div', { class: 'actions' }, buttons),
      ),
    );
    detail.querySelector('h2').focus();
  }

  async function load() {
    const q = new URLSearchParams({ limit: '200' });
    if (status.value) q.set('status', status.value);
    if (product.value) q.set('product_id', product.value);
    try {
      const { orders } = await api(`/api/admin/orders?${q}`);
      list.replaceChildren(
        orders.length
          ? el(
              'table',
              {},
              el('caption', { class: 'visually-hidden', text: 'Orders' }),
              el('thead', {}, el('tr', {}, ['Placed', 'Order', 'Product', 'Qty', 'Amount', 'Status', 'Buyer'].map((h, i) => el('th', { scope: 'col', class: i === 3 || i === 4 ? 'num' : '', text: h })))),
              el('tbody', {}, orders.map((o) => {
                const open = el('button', { type: 'button', text: o.id, 'aria-label': `Details of order ${o.id}` });
                open.addEventListener('click', async () => {
                  try {
                    show(await api(`/api/admin/orders/${o.id}`));
                  } catch (e) {
                    report(e, error);
                  }
                });
                return el('tr', { 'data-order': o.id, 'data-status': o.status },
                  el('td', { text: when(o.created_at) }),
                  el('td', {}, open),
                  el('td', { text: titles.get(o.product_id) || o.product_id }),
                  el('td', { class: 'num', text: String(o.quantity) }),
                  el('td', { class: 'num', text: money(o.amount_minor, o.currency) }),
                  el('td', {}, el('span', { class: `badge ${TONE[o.status] || ''}`, text: o.status })),
                  el('td', { text: o.name }));
              })),
            )
          : el('p', { class: 'muted', text: 'No orders match.' }),
      );
      error.textContent = '';
    } catch (e) {
      report(e, error);
    }
  }

  root.append(el('h1', { text: 'Orders' }), filters, error, detail, list);
  try {
    const { products } = await api('/api/admin/products');
    for (const p of products) {
      titles.set(p.id, p.title);
      product.append(el('option', { value: p.id, text: p.title }));
    }
  } catch (e) {
    report(e, error);
  }
  await load();
  const timer = setInterval(() => {
    if (!document.hidden) load();
  }, 10000);
  return () => clearInterval(timer);
}
