// Settings: the effective values, read-only, and where each one is changed.
import { api, el } from '/js/api.js';

const ms = (v) => (v >= 60000 && v % 60000 === 0 ? `${v / 60000} min` : v >= 1000 ? `${v / 1000} s` : `${v} ms`);

export async function render(root, { report }) {
  const error = el('p', { class: 'notice bad', role: 'alert' });
  root.append(el('h1', { text: 'Settings' }), error);
  try {
    const s = await api('/api/admin/settings');
    const row = (label, value, key) =>
      [el('dt', { text: label }), el('dd', {}, el('strong', { text: value }), ' ', el('code', { class: 'muted', text: key }))];
    const channels = Object.entries(s.hls.channels || {});
    root.append(
      el('section', { class: 'card' },
        el('h2', { text: 'Shop' }),
        el('dl', { class: 'facts' },
          row('Payment window', ms(s.orders.payment_window_ms), 'orders.payment-window'),
          row('Default low-stock threshold', String(s.orders.low_stock_threshold), 'orders.low-stock-threshold'),
          row('Payment provider', s.payments.provider, 'payments.provider'),
          row('Public address', s.public_url, 'public.url'))),
      el('section', { class: 'card' },
        el('h2', { text: 'Live video (LL-HLS)' }),
        el('dl', { class: 'facts' },
          row('Part target', ms(s.hls.part_target_ms), 'hls.part-target'),
          row('Segment target', ms(s.hls.segment_target_ms), 'hls.segment-target'),
          row('Longest segment', ms(s.hls.max_segment_ms), 'hls.max-segment')),
        channels.length
          ? el('p', {}, 'Per-channel overrides: ',
              channels.map(([c, t]) => `${c} (part ${ms(t.part_target_ms)}, segment ${ms(t.segment_target_ms)})`).join('; '))
          : null),
      el('p', { class: 'muted' },
        'These values are read when hawker starts. To change one, set its key in the config file ' +
        '(for example orders.payment-window = "15m"), as a HAWKER_* environment variable ' +
        '(HAWKER_ORDERS_PAYMENT_WINDOW=15m) or as a flag, then restart hawker. ' +
        'Each product has its own low-stock threshold, editable under Products.'),
    );
  } catch (e) {
    report(e, error);
  }
}
