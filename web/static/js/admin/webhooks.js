// Webhooks: endpoints (the signing secret shown once, at creation), enable/disable, delete,
// the delivery log with each attempt, and replay.
import { api, el, when } from '/js/api.js';

export async function render(root, { toast, report }) {
  const error = el('p', { class: 'notice bad', role: 'alert' });
  const list = el('div', { 'aria-live': 'polite' });
  const secret = el('div');
  const log = el('div');

  const form = el(
    'form',
    { class: 'card', 'aria-labelledby': 'new-hook' },
    el('h2', { id: 'new-hook', text: 'Add an endpoint' }),
    el('label', { for: 'w-url', text: 'URL' }),
    el('input', { id: 'w-url', type: 'url', required: true, placeholder: 'https://example.com/hooks/hawker' }),
    el('label', { for: 'w-events', text: 'Events (comma separated; * for all)' }),
    el('input', { id: 'w-events', value: '*' }),
    el('label', { for: 'w-description', text: 'Description' }),
    el('input', { id: 'w-description' }),
    el('p', {}, el('button', { class: 'primary', type: 'submit', text: 'Add endpoint' })),
  );
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const v = (id) => form.querySelector(`#${id}`).value.trim();
    try {
      const hook = await api('/api/admin/webhooks', {
        method: 'POST',
        body: {
          url: v('w-url'),
          events: v('w-events').split(',').map((s) => s.trim()).filter(Boolean),
          description: v('w-description'),
        },
      });
      form.reset();
      error.textContent = '';
      secret.replaceChildren(
        el('div', { class: 'card', role: 'status' },
          el('h2', { tabindex: '-1', text: 'Signing secret: copy it now' }),
          el('p', { text: `Your receiver at ${hook.url} verifies each delivery with this secret. It is shown this once.` }),
          el('p', { class: 'secret', 'data-secret': 'webhook', text: hook.secret })),
      );
      secret.querySelector('h2').focus();
      load();
    } catch (e) {
      report(e, error);
    }
  });

  async function deliveries(hook) {
    try {
      const { deliveries: all } = await api(`/api/admin/webhooks/${hook.id}/deliveries`);
      const rows = all.map((d) => {
        const replay = el('button', { type: 'button', text: 'Replay' });
        replay.addEventListener('click', async () => {
          try {
            await api(`/api/admin/webhooks/deliveries/${d.id}/replay`, { method: 'POST' });
            toast('Sent again as a new delivery');
            deliveries(hook);
          } catch (e) {
            report(e, error);
          }
        });
        const last = (d.attempt_log || [])[d.attempt_log.length - 1];
        const outcome = last ? (last.status_code ? `HTTP ${last.status_code}` : last.error || '') : '';
        return el('tr', {},
          el('td', { text: when(d.created_at) }),
          el('td', { text: d.event_type }),
          el('td', {}, el('span', { class: `badge ${d.status === 'succeeded' ? 'ok' : d.status === 'failed' ? 'bad' : 'warn'}`, text: d.status })),
          el('td', { class: 'num', text: String(d.attempts) }),
          el('td', { text: outcome }),
          el('td', {}, replay));
      });
      log.replaceChildren(
        el('section', { class: 'card', 'aria-labelledby': 'log-title' },
          el('h2', { id: 'log-title', tabindex: '-1', text: `Deliveries to ${hook.url}` }),
          rows.length
            ? el('div', { class: 'table-wrap' }, el('table', {},
                el('thead', {}, el('tr', {}, ['When', 'Event', 'Status', 'Attempts', 'Last answer', ''].map((h) => el('th', { scope: 'col', text: h })))),
                el('tbody', {}, rows)))
            : el('p', { class: 'muted', text: 'No deliveries yet.' })),
      );
      log.querySelector('h2').focus();
    } catch (e) {
      report(e, error);
    }
  }

  async function load() {
    try {
      const { webhooks } = await api('/api/admin/webhooks');
      list.replaceChildren(
        webhooks.length
          ? el('div', { class: 'table-wrap' }, el('table', {},
              el('caption', { class: 'visually-hidden', text: 'Webhook endpoints' }),
              el('thead', {}, el('tr', {}, ['Endpoint', 'Events', 'State', ''].map((h) => el('th', { scope: 'col', text: h })))),
              el('tbody', {}, webhooks.map((h) => {
                const toggle = el('button', { type: 'button', text: h.enabled ? 'Disable' : 'Enable' });
                toggle.addEventListener('click', async () => {
                  try {
                    await api(`/api/admin/webhooks/${h.id}/${h.enabled ? 'disable' : 'enable'}`, { method: 'POST' });
                    load();
                  } catch (e) {
                    report(e, error);
                  }
                });
                const show = el('button', { type: 'button', text: 'Deliveries' });
                show.addEventListener('click', () => deliveries(h));
                const remove = el('button', { type: 'button', text: 'Delete' });
                remove.addEventListener('click', async () => {
                  if (!confirm(`Delete the endpoint ${h.url} and its delivery log?`)) return;
                  try {
                    await api(`/api/admin/webhooks/${h.id}`, { method: 'DELETE' });
                    log.replaceChildren();
                    load();
                  } catch (e) {
                    report(e, error);
                  }
                });
                return el('tr', {},
                  el('td', {}, el('code', { text: h.url }), h.description ? el('div', { class: 'muted', text: h.description }) : null),
                  el('td', { text: (h.events || []).join(', ') }),
                  el('td', {}, el('span', { class: `badge ${h.enabled ? 'ok' : 'bad'}`, text: h.enabled ? 'enabled' : 'disabled' })),
                  el('td', {}, el('div', { class: 'actions' }, show, toggle, remove)));
              }))))
          : el('p', { class: 'muted', text: 'No endpoints: add one to hear about every sale.' }),
      );
    } catch (e) {
      report(e, error);
    }
  }

  root.append(el('h1', { text: 'Webhooks' }), error, secret, list, log, form);
  await load();
}
