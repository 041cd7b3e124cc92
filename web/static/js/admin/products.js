// Products: create, edit, images, stock adjustments with a reason, low-stock thresholds.
import { api, el, money, toMinor } from '/js/api.js';

function field(id, label, attrs = {}) {
  const input = attrs.tag === 'textarea'
    ? el('textarea', { id, name: id, ...attrs, tag: null })
    : el('input', { id, name: id, ...attrs });
  return [el('label', { for: id, text: label }), input];
}

function value(form, name) {
  return form.elements.namedItem(name).value.trim();
}

function decimal(minor, currency) {
  const digits = money(0, currency).replace(/[^0-9]/g, '').length - 1;
  return digits > 0 ? (minor / 10 ** digits).toFixed(digits) : String(minor);
}

export async function render(root, { toast, report }) {
  const list = el('div', { class: 'table-wrap', 'aria-live': 'polite' });
  const error = el('p', { class: 'notice bad', role: 'alert' });
  const editor = el('div');

  const create = el(
    'form',
    { class: 'card', 'aria-labelledby': 'new-product' },
    el('h2', { id: 'new-product', text: 'New product' }),
    el(
      'div',
      { class: 'grid2' },
      el('div', {}, ...field('p-title', 'Title', { required: true, maxlength: 200 })),
      el('div', {}, ...field('p-price', 'Price', { required: true, inputmode: 'decimal', placeholder: '19.90' })),
      el('div', {}, ...field('p-currency', 'Currency', { value: 'EUR', maxlength: 3, required: true })),
      el('div', {}, ...field('p-stock', 'Stock', { type: 'number', min: 0, value: 0 })),
      el('div', {}, ...field('p-threshold', 'Low-stock threshold', { type: 'number', min: 0, placeholder: 'shop default' })),
    ),
    ...field('p-description', 'Description', { tag: 'textarea', rows: 2 }),
    el('p', {}, el('button', { class: 'primary', type: 'submit', text: 'Create product' })),
  );
  create.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const currency = value(create, 'p-currency').toUpperCase();
    const price = toMinor(value(create, 'p-price'), currency);
    if (Number.isNaN(price)) return (error.textContent = 'Price: a number such as 19.90');
    const body = {
      title: value(create, 'p-title'),
      description: value(create, 'p-description'),
      price_minor: price,
      currency,
      stock: Number(value(create, 'p-stock') || 0),
    };
    const threshold = value(create, 'p-threshold');
    if (threshold !== '') body.low_stock_threshold = Number(threshold);
    try {
      const p = await api('/api/admin/products', { method: 'POST', body });
      create.reset();
      error.textContent = '';
      toast(`Created ${p.title}`);
      load();
    } catch (e) {
      report(e, error);
    }
  });

  async function openEditor(p) {
    const form = el(
      'form',
      { class: 'card', 'aria-labelledby': 'edit-title' },
      el('h2', { id: 'edit-title', tabindex: '-1', text: `Edit: ${p.title}` }),
      el('p', { class: 'muted' }, 'Id ', el('code', { text: p.id })),
      el(
        'div',
        { class: 'grid2' },
        el('div', {}, ...field('e-title', 'Title', { value: p.title, required: true })),
        el('div', {}, ...field('e-price', `Price (${p.currency})`, { value: decimal(p.price_minor, p.currency) })),
        el('div', {}, ...field('e-threshold', 'Low-stock threshold', { type: 'number', min: 0, value: p.low_stock_threshold })),
        el('div', {}, el('label', { for: 'e-active' }, el('input', { id: 'e-active', type: 'checkbox', checked: p.active, style: 'width:auto;min-height:auto' }), ' On sale')),
      ),
      ...field('e-description', 'Description', { tag: 'textarea', rows: 2 }),
      el('p', {}, el('button', { class: 'primary', type: 'submit', text: 'Save' })),
    );
    form.elements.namedItem('e-description').value = p.description || '';
    const editError = el('p', { class: 'notice bad', role: 'alert' });
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const price = toMinor(value(form, 'e-price'), p.currency);
      if (Number.isNaN(price)) return (editError.textContent = 'Price: a number such as 19.90');
      try {
        const saved = await api(`/api/admin/products/${p.id}`, {
          method: 'PATCH',
          body: {
            title: value(form, 'e-title'),
            description: value(form, 'e-description'),
            price_minor: price,
            low_stock_threshold: Number(value(form, 'e-threshold')),
            active: form.elements.namedItem('e-active').checked,
          },
        });
        toast(`Saved ${saved.title}`);
        load();
      } catch (e) {
        report(e, editError);
      }
    });

    const stockForm = el(
      'form',
      { class: 'card', 'aria-labelledby': 'stock-title' },
      el('h3', { id: 'stock-title', text: `Stock: ${p.stock}` }),
      el(
        'div',
        { class: 'grid2' },
        el('div', {}, ...field('s-delta', 'Add or remove (e.g. 5 or -2)', { type: 'number', required: true })),
        el('div', {}, ...field('s-reason', 'Reason', { required: true, placeholder: 'delivery arrived', maxlength: 500 })),
      ),
      el('p', {}, el('button', { type: 'submit', text: 'Adjust stock' })),
    );
    const ledger = el('p', { class: 'muted' });
    stockForm.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const delta = Number(value(stockForm, 's-delta'));
      if (!Number.isInteger(delta) || delta === 0) return (editError.textContent = 'Stock: a whole number other than 0');
      try {
        // The absolute value is computed from a fresh read so a sale in between is not undone.
        const now = await api(`/api/admin/products/${p.id}`);
        const saved = await api(`/api/admin/products/${p.id}`, {
          method: 'PATCH',
          body: { stock: Math.max(0, now.stock + delta), stock_reason: value(stockForm, 's-reason') },
        });
        toast(`Stock of ${saved.title} is now ${saved.stock}`);
        load();
        openEditor(saved);
      } catch (e) {
        report(e, editError);
      }
    });
    api(`/api/admin/products/${p.id}/stock`)
      .then((l) => (ledger.textContent = `Reserved ${l.reserved} · sold ${l.sold} · stocked ${l.stocked}`))
      .catch(() => {});
    stockForm.append(ledger);

    const file = el('input', { id: 'i-file', type: 'file', accept: 'image/jpeg,image/png,image/webp' });
    const thumbs = el('div', { class: 'thumbs' }, (p.images || []).map((src) => el('img', { src, alt: '' })));
    const images = el(
      'section',
      { class: 'card', 'aria-labelledby': 'images-title' },
      el('h3', { id: 'images-title', text: 'Images' }),
      thumbs,
      el('label', { for: 'i-file', text: 'Add an image (JPEG, PNG or WebP, up to 2 MiB)' }),
      file,
    );
    file.addEventListener('change', async () => {
      const f = file.files[0];
      if (!f) return;
      try {
        const img = await api(`/api/admin/products/${p.id}/images`, { method: 'POST', body: f });
        thumbs.append(el('img', { src: img.url, alt: '' }));
        toast('Image added');
        file.value = '';
        load();
      } catch (e) {
        report(e, editError);
      }
    });
    const remove = el('button', { type: 'button', text: 'Delete product' });
    remove.addEventListener('click', async () => {
      if (!confirm(`Delete ${p.title}? It leaves the shop; its orders stay.`)) return;
      try {
        await api(`/api/admin/products/${p.id}`, { method: 'DELETE' });
        editor.replaceChildren();
        toast('Deleted');
        load();
      } catch (e) {
        report(e, editError);
      }
    });
    editor.replaceChildren(form, editError, stockForm, images, el('p', {}, remove));
    editor.querySelector('h2').focus();
  }

  async function load() {
    try {
      const { products } = await api('/api/admin/products');
      const rows = products.map((p) => {
        const edit = el('button', { type: 'button', text: 'Edit', 'aria-label': `Edit ${p.title}` });
        edit.addEventListener('click', () => openEditor(p));
        const low = p.stock <= p.low_stock_threshold;
        return el(
          'tr',
          { 'data-product': p.id },
          el('td', {}, p.title, p.active ? '' : el('span', { class: 'badge', text: 'off sale' })),
          el('td', { class: 'num', text: money(p.price_minor, p.currency) }),
          el('td', { class: 'num' }, el('span', { class: p.stock === 0 ? 'badge bad' : low ? 'badge warn' : '', text: String(p.stock) })),
          el('td', { class: 'num', text: String(p.low_stock_threshold) }),
          el('td', {}, edit),
        );
      });
      list.replaceChildren(
        rows.length
          ? el(
              'table',
              {},
              el('caption', { class: 'visually-hidden', text: 'Products' }),
              el('thead', {}, el('tr', {}, ['Product', 'Price', 'Stock', 'Low at', ''].map((h, i) => el('th', { class: i && i < 4 ? 'num' : '', scope: 'col', text: h })))),
              el('tbody', {}, rows),
            )
          : el('p', { class: 'muted', text: 'No products yet: create the first one below.' }),
      );
    } catch (e) {
      report(e, error);
    }
  }

  root.append(el('h1', { text: 'Products' }), list, error, editor, create);
  load();
}
