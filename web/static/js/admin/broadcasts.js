// Broadcasts: schedule a show for a streamer (hawker emails them the key), pin the product on
// screen, cancel.
import { api, el, when } from '/js/api.js';

function localInput(date) {
  const d = new Date(date.getTime() - date.getTimezoneOffset() * 60000);
  return d.toISOString().slice(0, 16);
}

const STATUS_TONE = { live: 'live', scheduled: 'ok', ended: '', cancelled: 'bad' };

export async function render(root, { toast, report }) {
  const error = el('p', { class: 'notice bad', role: 'alert' });
  const list = el('div', { 'aria-live': 'polite' });
  const shown = el('div');
  let products = [];

  const start = new Date(Date.now() + 3600e3);
  start.setMinutes(0, 0, 0);
  const end = new Date(start.getTime() + 3600e3);
  const productBox = el('fieldset', { class: 'card' }, el('legend', { text: 'Products in the show' }));
  const form = el(
    'form',
    { class: 'card', 'aria-labelledby': 'new-show' },
    el('h2', { id: 'new-show', text: 'Schedule a show' }),
    el(
      'div',
      { class: 'grid2' },
      el('div', {}, el('label', { for: 'b-title', text: 'Title' }), el('input', { id: 'b-title', required: true, maxlength: 200 })),
      el('div', {}, el('label', { for: 'b-email', text: 'Streamer email' }), el('input', { id: 'b-email', type: 'email', required: true })),
      el('div', {}, el('label', { for: 'b-start', text: 'Starts' }), el('input', { id: 'b-start', type: 'datetime-local', required: true, value: localInput(start) })),
      el('div', {}, el('label', { for: 'b-end', text: 'Ends' }), el('input', { id: 'b-end', type: 'datetime-local', required: true, value: localInput(end) })),
    ),
    el('label', { for: 'b-description', text: 'Description' }),
    el('textarea', { id: 'b-description', rows: 2 }),
    productBox,
    el('p', {}, el('button', { class: 'primary', type: 'submit', text: 'Schedule and email the key' })),
  );
  const v = (id) => form.querySelector(`#${id}`).value.trim();
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const body = {
      title: v('b-title'),
      description: v('b-description'),
      starts_at: new Date(v('b-start')).toISOString(),
      ends_at: new Date(v('b-end')).toISOString(),
      streamer_email: v('b-email'),
      product_ids: [...productBox.querySelectorAll('input:checked')].map((i) => i.value),
    };
    try {
      const b = await api('/api/admin/broadcasts', { method: 'POST', body });
      error.textContent = '';
      form.reset();
      const facts = [
        el('h2', { text: `Scheduled: ${b.title}`, tabindex: '-1' }),
        el('p', {}, `The stream key was emailed to ${b.streamer_email}. Viewers watch at `,
          el('a', { href: `/watch/${b.channel}`, text: `/watch/${b.channel}` }), '.'),
      ];
      if (b.stream_key) {
        facts.push(
          el('p', { text: 'New streamer: their key, shown this once (it is also in the email):' }),
          el('p', { class: 'secret', 'data-secret': 'stream-key', text: b.stream_key }),
        );
      }
      shown.replaceChildren(el('div', { class: 'card', role: 'status' }, facts));
      shown.querySelector('h2').focus();
      load();
    } catch (e) {
      report(e, error);
    }
  });

  function row(b) {
    const own = products.filter((p) => (b.product_ids || []).includes(p.id));
    const open = b.status === 'scheduled' || b.status === 'live';
    const pin = el(
      'select',
      { 'aria-label': `Product on screen in ${b.title}`, disabled: !open || own.length === 0 },
      el('option', { value: '', text: '(none)' }),
      own.map((p) => el('option', { value: p.id, text: p.title, selected: p.id === b.pinned_product_id })),
    );
    pin.addEventListener('change', async () => {
      try {
        await api(`/api/admin/broadcasts/${b.id}/pin`, {
          method: 'POST',
          body: { product_id: pin.value || null },
        });
        toast(pin.value ? 'Pinned: viewers see it now' : 'Unpinned');
      } catch (e) {
        report(e, error);
        load();
      }
    });
    const cancel = el('button', { type: 'button', text: 'Cancel show', disabled: b.status !== 'scheduled' });
    cancel.addEventListener('click', async () => {
      if (!confirm(`Cancel "${b.title}"?`)) return;
      try {
        await api(`/api/admin/broadcasts/${b.id}/cancel`, { method: 'POST' });
        toast('Cancelled');
        load();
      } catch (e) {
        report(e, error);
      }
    });
    return el(
      'tr',
      { 'data-broadcast': b.id },
      el('td', {}, el('strong', { text: b.title }), el('br'), el('span', { class: 'muted', text: b.streamer_email || '' })),
      el('td', {}, el('span', { class: `badge ${STATUS_TONE[b.status] || ''}`, text: b.status })),
      el('td', {}, when(b.starts_at), el('br'), el('span', { class: 'muted', text: `to ${when(b.ends_at)}` })),
      el('td', {}, el('a', { href: `/watch/${b.channel}`, text: b.channel })),
      el('td', {}, pin),
      el('td', {}, cancel),
    );
  }

  async function load() {
    try {
      const [{ products: all }, { broadcasts }] = await Promise.all([
        api('/api/admin/products'),
        api('/api/admin/broadcasts'),
      ]);
      products = all;
      productBox.replaceChildren(
        el('legend', { text: 'Products in the show' }),
        ...(all.length
          ? all.map((p) =>
              el('label', { style: 'font-weight:400' },
                el('input', { type: 'checkbox', value: p.id, style: 'width:auto;min-height:auto' }), ` ${p.title}`))
          : [el('p', { class: 'muted', text: 'Create products first.' })]),
      );
      list.replaceChildren(
        broadcasts.length
          ? el('div', { class: 'table-wrap' }, el(
              'table',
              {},
              el('caption', { class: 'visually-hidden', text: 'Broadcasts' }),
              el('thead', {}, el('tr', {}, ['Show', 'Status', 'When', 'Channel', 'On screen', ''].map((h) => el('th', { scope: 'col', text: h })))),
              el('tbody', {}, broadcasts.map(row)),
            ))
          : el('p', { class: 'muted', text: 'No shows yet.' }),
      );
    } catch (e) {
      report(e, error);
    }
  }

  root.append(el('h1', { text: 'Broadcasts' }), error, shown, list, form);
  await load();
  const timer = setInterval(load, 15000);
  return () => clearInterval(timer);
}
