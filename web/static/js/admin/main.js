// The seller dashboard at /admin/{section}: login, then one view per section. Every action is
// a call to the public admin API; this module only routes and keeps the session's CSRF token.
import { api, ApiError, el, setWriteHeaders } from '/js/api.js';

const view = document.getElementById('view');
const nav = document.getElementById('nav');
const CSRF_KEY = 'hawker.csrf';

const sections = {
  products: () => import('/js/admin/products.js'),
  broadcasts: () => import('/js/admin/broadcasts.js'),
  live: () => import('/js/admin/live.js'),
  orders: () => import('/js/admin/orders.js'),
  webhooks: () => import('/js/admin/webhooks.js'),
  settings: () => import('/js/admin/settings.js'),
};

let cleanup = null;

setWriteHeaders(() => {
  const token = sessionStorage.getItem(CSRF_KEY);
  return token ? { 'X-CSRF-Token': token } : {};
});

/** Shows a short message in the toast for a few seconds. */
export function toast(text) {
  const t = document.getElementById('toast');
  t.textContent = text;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => (t.textContent = ''), 4000);
}

/** Reports a failed admin call where the seller is looking; sends them to login when needed. */
export function report(e, where) {
  if (e instanceof ApiError && (e.status === 401 || e.kind === 'csrf')) {
    showLogin('Your session ended. Log in again to continue.');
    return;
  }
  const text = e instanceof ApiError ? e.message : String(e);
  if (where) where.textContent = text;
  else toast(text);
}

function currentSection() {
  const part = location.pathname.split('/').filter(Boolean)[1] || 'products';
  return sections[part] ? part : 'products';
}

async function show(section, focus = false) {
  if (cleanup) cleanup();
  cleanup = null;
  for (const a of nav.querySelectorAll('a')) {
    if (a.getAttribute('href') === `/admin/${section}`) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  view.replaceChildren(el('p', { class: 'muted', text: 'Loading…' }));
  const mod = await sections[section]();
  view.replaceChildren();
  cleanup = (await mod.render(view, { toast, report, go })) || null;
  document.title = `${section[0].toUpperCase()}${section.slice(1)} · Seller dashboard`;
  if (focus) view.focus();
}

/** Navigates within the dashboard without reloading. */
export function go(section) {
  history.pushState(null, '', `/admin/${section}`);
  show(section, true);
}

nav.addEventListener('click', (e) => {
  const a = e.target.closest('a');
  if (!a || e.metaKey || e.ctrlKey) return;
  e.preventDefault();
  go(a.getAttribute('href').split('/').pop());
});
window.addEventListener('popstate', () => show(currentSection()));

function signedIn(login) {
  document.getElementById('who').textContent = login;
  document.getElementById('logout').hidden = false;
  nav.hidden = false;
  show(currentSection());
}

function showLogin(message = '') {
  if (cleanup) cleanup();
  cleanup = null;
  nav.hidden = true;
  document.getElementById('logout').hidden = true;
  document.getElementById('who').textContent = '';
  const error = el('p', { class: 'notice bad', role: 'alert', text: message });
  const login = el('input', { id: 'login', name: 'login', autocomplete: 'username', required: true });
  const password = el('input', {
    id: 'password', name: 'password', type: 'password', autocomplete: 'current-password', required: true,
  });
  const submit = el('button', { class: 'primary', type: 'submit', text: 'Log in' });
  const form = el(
    'form',
    { class: 'card login', 'aria-labelledby': 'login-title' },
    el('h1', { id: 'login-title', text: 'Seller login' }),
    el('label', { for: 'login', text: 'Login' }), login,
    el('label', { for: 'password', text: 'Password' }), password,
    error,
    el('p', {}, submit),
    el('p', { class: 'muted', text: 'No account yet? Run "hawker admin init" on the server.' }),
  );
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    submit.disabled = true;
    error.textContent = '';
    try {
      const me = await api('/api/admin/login', {
        method: 'POST',
        body: { login: login.value.trim(), password: password.value },
      });
      sessionStorage.setItem(CSRF_KEY, me.csrf_token);
      signedIn(me.login);
    } catch (e) {
      error.textContent =
        e.kind === 'bad-credentials' ? 'Wrong login or password.' : e.message;
      password.select();
    } finally {
      submit.disabled = false;
    }
  });
  view.replaceChildren(form);
  login.focus();
}

document.getElementById('logout').addEventListener('click', async () => {
  try {
    await api('/api/admin/logout', { method: 'POST' });
  } catch {
    /* the session is forgotten here either way */
  }
  sessionStorage.removeItem(CSRF_KEY);
  showLogin('You are logged out.');
});

(async () => {
  try {
    const me = await api('/api/admin/me');
    // A session without its CSRF token in this tab can read but not write: log in again.
    if (me.via === 'session' && !sessionStorage.getItem(CSRF_KEY)) return showLogin();
    signedIn(me.subject);
  } catch (e) {
    showLogin(e.status === 401 ? '' : e.message);
  }
})();
