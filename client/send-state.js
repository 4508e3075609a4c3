// A reply's sending state. On the message: "Emailed to pat@… at 10:32",
// from the ticket's send log (protocol.md §9.2 `GET /v1/tickets/{id}/sends`,
// which a technician of the tenant may read). In the composer's outbox: the
// reply on its way ("Sending to …"), failed (the mail server's answer, Retry,
// Send log) or retrying. A failed reply stores no message (CONTRACT), so the
// outbox is where it stays visible until it is sent or dropped.

import { formatTimestamp, h, icon, replaceChildren } from './dom.js';

/** The send log of one ticket, fetched when asked and kept in memory. */
export class SendLog {
  constructor({ ticketId, getToken, onChange }) {
    this.ticketId = ticketId;
    this.getToken = getToken || (() => null);
    this.onChange = onChange || (() => {});
    this.attempts = [];
    this.loaded = false;
    this.inFlight = null;
    this.again = false;
  }

  /** Fetches the log again; overlapping calls coalesce into one more fetch. */
  refresh() {
    if (this.inFlight) {
      this.again = true;
      return this.inFlight;
    }
    const token = this.getToken();
    this.inFlight = fetch(`/v1/tickets/${encodeURIComponent(this.ticketId)}/sends`, {
      headers: token ? { Authorization: `Bearer ${token}`, Accept: 'application/json' } : { Accept: 'application/json' },
      cache: 'no-store',
    })
      .then(async (response) => {
        const payload = await response.json().catch(() => null);
        if (!response.ok) throw new Error(payload?.error?.message || `The send log could not be read (${response.status}).`);
        this.attempts = Array.isArray(payload?.attempts) ? payload.attempts : [];
        this.loaded = true;
        this.error = null;
      })
      .catch((err) => {
        this.error = err.message || String(err);
      })
      .finally(() => {
        this.inFlight = null;
        this.onChange();
        if (this.again) {
          this.again = false;
          this.refresh();
        }
      });
    return this.inFlight;
  }

  /**
   * The attempt that sent this technician message: the server records the
   * attempt and stores the reply at the same instant, by the same technician.
   */
  attemptFor(message) {
    if (message?.channel !== 'technician') return null;
    const at = Date.parse(message.at);
    return this.attempts.find((a) => a.outcome === 'sent' && a.technician?.id === message.author?.id && Date.parse(a.at) === at) || null;
  }
}

/** The tag on a technician reply: where and when it was emailed. */
export function deliveryTag(message, log) {
  const attempt = log ? log.attemptFor(message) : null;
  const text = attempt ? `Emailed to ${attempt.to} at ${formatTimestamp(attempt.at)}` : 'Reply · emailed';
  return h('span', { class: 'via-badge via-emailed', 'data-testid': 'delivery', 'data-state': attempt ? 'sent' : 'unknown', title: attempt?.reply || '' }, icon('mail'), text);
}

/** Updates the delivery tags already in the thread once the log has arrived. */
export function refreshDeliveryTags(thread, messages, log) {
  for (const node of thread.querySelectorAll('.msg-technician')) {
    const m = messages.find((x) => String(x.id) === node.dataset.id);
    const old = node.querySelector('[data-testid="delivery"]');
    if (m && old && old.dataset.state !== 'sent') old.replaceWith(deliveryTag(m, log));
  }
}

/**
 * The composer's outbox: the one reply being sent, failed or retried.
 * options: {onRetry(), onDiscard(), openLog()}.
 */
export class Outbox {
  constructor(options) {
    this.options = options;
    this.entry = null;
    this.element = h('div', { class: 'outbox', 'data-testid': 'outbox', 'aria-live': 'polite', hidden: true });
  }

  /** state: 'sending' | 'retrying' | 'failed'; to: the recipient; reason: the failure. */
  show(state, { to, body, reason } = {}) {
    this.entry = { state, to: to ?? this.entry?.to, body: body ?? this.entry?.body, reason, at: new Date().toISOString() };
    this.render();
  }

  hide() {
    this.entry = null;
    this.render();
  }

  render() {
    const e = this.entry;
    this.element.hidden = !e;
    if (!e) {
      replaceChildren(this.element);
      return;
    }
    const label = {
      sending: `Sending to ${e.to || 'the contact'}…`,
      retrying: `Retrying to ${e.to || 'the contact'}…`,
      failed: `Not sent to ${e.to || 'the contact'} at ${formatTimestamp(e.at)}`,
    }[e.state];
    replaceChildren(
      this.element,
      h(
        'div',
        { class: `outbox-item is-${e.state}`, 'data-testid': 'outbox-item', 'data-state': e.state },
        h('div', { class: 'outbox-head' }, e.state === 'failed' ? icon('warning') : h('span', { class: 'spinner' }), h('strong', { 'data-testid': 'outbox-state' }, label)),
        h('div', { class: 'outbox-body' }, truncate(e.body || '', 160)),
        e.state === 'failed' && e.reason ? h('div', { class: 'outbox-reason', 'data-testid': 'outbox-reason' }, e.reason) : null,
        e.state === 'failed'
          ? h(
              'div',
              { class: 'outbox-actions' },
              h('button', { type: 'button', class: 'btn btn-primary btn-sm', 'data-testid': 'outbox-retry', onclick: () => this.options.onRetry() }, 'Retry'),
              h('button', { type: 'button', class: 'btn btn-secondary btn-sm', 'data-testid': 'outbox-log', onclick: () => this.options.openLog() }, 'Send log'),
              h('button', { type: 'button', class: 'btn btn-ghost btn-sm', 'data-testid': 'outbox-dismiss', onclick: () => this.options.onDiscard() }, 'Dismiss'),
            )
          : null,
      ),
    );
  }
}

/** The send log as a list, newest first, with the mail server's answers. */
export function sendLogView(log, onClose) {
  const attempts = [...log.attempts].reverse();
  return h(
    'div',
    { class: 'send-log', 'data-testid': 'send-log', role: 'dialog', 'aria-label': 'Send log' },
    h(
      'div',
      { class: 'send-log-head' },
      h('strong', null, 'Send log'),
      h('button', { type: 'button', class: 'icon-btn', 'data-testid': 'send-log-close', 'aria-label': 'Close the send log', onclick: onClose }, icon('close')),
    ),
    log.error ? h('p', { class: 'composer-error' }, log.error) : null,
    attempts.length === 0 && !log.error
      ? h('p', { class: 'empty-note' }, log.loaded ? 'No reply has been sent on this ticket yet.' : 'Loading…')
      : h(
          'ol',
          { class: 'send-log-list' },
          attempts.map((a) =>
            h(
              'li',
              { class: `send-attempt is-${a.outcome}`, 'data-testid': 'send-attempt', 'data-outcome': a.outcome },
              h('div', null, h('strong', null, OUTCOME_LABEL[a.outcome] || 'Failed'), ` to ${a.to || '—'} · ${formatTimestamp(a.at)} · ${a.technician?.name || ''}`),
              h('code', { class: 'send-reply', 'data-testid': 'send-reply' }, a.reply || ''),
            ),
          ),
        ),
  );
}

// protocol.md §8.2: `sending` while the mail server is talked to, `unknown`
// when the server stopped before its answer was recorded (check before resending).
const OUTCOME_LABEL = { sent: 'Sent', failed: 'Failed', sending: 'Being sent', unknown: 'Outcome unknown' };

function truncate(text, n) {
  const s = String(text ?? '');
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
}
