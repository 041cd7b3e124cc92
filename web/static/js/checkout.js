// Reservation and payment steps shared by the watch page and the order page.
import { api, ApiError } from '/js/api.js';

/** Where the buyer follows an order's status. */
export function orderPage(order) {
  return `/orders/${encodeURIComponent(order.token)}`;
}

/**
 * The local time (ms) at which a reservation ends. The server's own created/expires pair gives
 * the window's length, so a phone whose clock is off still counts down the right time.
 */
export function reservationDeadline(order, receivedAt = Date.now(), serverNow = null) {
  const expires = Date.parse(order.expires_at);
  if (serverNow !== null && !Number.isNaN(serverNow)) return receivedAt + (expires - serverNow);
  return receivedAt + (expires - Date.parse(order.created_at));
}

/** Whether the shop's provider takes the buyer's confirmation here (the test provider). */
export function paysOnHawker(order) {
  try {
    return new URL(order.payment_url, location.href).pathname.endsWith(
      `/api/orders/${order.token}/pay`,
    );
  } catch {
    return false;
  }
}

/**
 * Pays a reserved order: the test provider is confirmed with one POST (safe to repeat: a second
 * payment of the same order is recognised as a duplicate); a hosted provider is a redirect to
 * its checkout. Resolves to the updated order, or never (when the page navigates away).
 */
export async function pay(order) {
  if (!paysOnHawker(order)) {
    location.assign(order.payment_url);
    return new Promise(() => {});
  }
  return api(`/api/orders/${encodeURIComponent(order.token)}/pay`, { method: 'POST' });
}

/** The buyer calls off a reservation; its units go back on sale. */
export function cancel(order) {
  return api(`/api/orders/${encodeURIComponent(order.token)}/cancel`, { method: 'POST' });
}

/** A sentence for a buyer about a failed order step. */
export function explain(e) {
  if (!(e instanceof ApiError)) return 'Something went wrong. Please try again.';
  switch (e.kind) {
    case 'network':
      return 'Network trouble: we could not reach the shop. Your order is safe; try again.';
    case 'sold-out':
      return 'Sold out: someone bought the last one.';
    case 'insufficient-stock':
      return `Only ${e.problem.available} left: lower the quantity and try again.`;
    case 'product-not-found':
      return 'This product is no longer on sale.';
    case 'conflict':
      return /expire/i.test(e.message)
        ? 'Your reservation expired and the units went back on sale.'
        : `This order can no longer change: ${e.message}.`;
    case 'unavailable':
      return 'The shop is busy right now. Please try again in a moment.';
    default:
      return e.message;
  }
}
