// Home: live and upcoming broadcasts with their products, refreshed while the page is open.
import { api, el, money, when } from '/js/api.js';

const live = document.getElementById('live');
const upcoming = document.getElementById('upcoming');
const problem = document.getElementById('problem');

function productLine(p) {
  const stock =
    typeof p.stock === 'number' ? (p.stock === 0 ? ' — sold out' : ` — ${p.stock} left`) : '';
  return el('li', {}, `${p.title} · ${money(p.price_minor, p.currency)}${stock}`);
}

function showCard(b) {
  const isLive = b.status === 'live';
  const products = Array.isArray(b.products) ? b.products : [];
  return el(
    'article',
    { class: 'card show' },
    el(
      'p',
      { class: 'muted' },
      isLive ? el('span', { class: 'badge live', text: 'LIVE' }) : when(b.starts_at),
      b.channel ? ` · ${b.channel}` : '',
    ),
    el('h3', {}, el('a', { href: `/watch/${encodeURIComponent(b.channel)}` }, b.title || b.channel)),
    b.description ? el('p', {}, b.description) : null,
    products.length ? el('ul', { 'aria-label': 'Products in this show' }, products.map(productLine)) : null,
    el('a', {
      class: isLive ? 'button primary' : 'button',
      href: `/watch/${encodeURIComponent(b.channel)}`,
      text: isLive ? 'Watch and shop' : 'Open the show page',
    }),
  );
}

async function refresh() {
  try {
    const data = await api('/api/broadcasts');
    const all = Array.isArray(data) ? data : data.broadcasts || [];
    const now = all.filter((b) => b.status === 'live');
    const next = all.filter((b) => b.status === 'scheduled');
    live.replaceChildren(...(now.length ? now.map(showCard) : [el('p', { class: 'muted', text: 'Nobody is live right now.' })]));
    upcoming.replaceChildren(...(next.length ? next.map(showCard) : [el('p', { class: 'muted', text: 'No shows scheduled yet.' })]));
    problem.textContent = '';
  } catch (e) {
    live.replaceChildren(el('p', { class: 'muted', text: 'Shows are not available.' }));
    upcoming.replaceChildren();
    problem.textContent = e.status === 404 ? 'This shop has no shows to list yet.' : e.message;
  } finally {
    live.removeAttribute('aria-busy');
    upcoming.removeAttribute('aria-busy');
  }
}

refresh();
setInterval(() => {
  if (!document.hidden) refresh();
}, 20000);
