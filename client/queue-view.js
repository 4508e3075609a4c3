// The live ticket queue (protocol.md §3.13): four tiles that are filters, a
// toolbar (mine / unassigned, sort, search), and rows that change as the
// server pushes them: SLA countdown and breach state, who has the ticket
// open (an avatar stack) and who is writing, unread marks for customer
// messages since the technician last opened the ticket. Arrow keys move
// between rows, Enter opens the Peek; the queue stays live under it.

import { avatar, h, icon, priorityTag, replaceChildren, statusPill } from './dom.js';
import { formatDuration } from './peek-model.js';

const TILES = [
  ['open', 'Open'],
  ['breaching', 'Breaching'],
  ['breached', 'Breached'],
  ['resolved_today', 'Resolved today'],
];
const VIEWS = [
  ['mine', 'Mine'],
  ['unassigned', 'Unassigned'],
];
const SORTS = [
  ['sla', 'SLA due'],
  ['priority', 'Priority'],
  ['updated', 'Updated'],
];
const PAGE = 50;
const PRIORITY_RANK = { urgent: 0, high: 1, normal: 2, low: 3 };

/** The earliest running (not paused) SLA due time of a row, ms; Infinity for none. */
export function dueKey(row) {
  let key = Infinity;
  for (const target of ['response', 'resolution']) {
    const clock = row?.sla?.[target];
    if (!clock || clock.paused) continue;
    const due = Date.parse(clock.due_at);
    if (Number.isFinite(due)) key = Math.min(key, due);
  }
  return key;
}

/** The server's order (QueueQuery.Sort): ties by number, so it is total. */
export function compareRows(sort, a, b) {
  if (sort === 'updated') {
    const ua = Date.parse(a.updated_at) || 0;
    const ub = Date.parse(b.updated_at) || 0;
    return ub - ua || b.number - a.number;
  }
  if (sort === 'priority') {
    const pa = PRIORITY_RANK[a.priority] ?? 9;
    const pb = PRIORITY_RANK[b.priority] ?? 9;
    if (pa !== pb) return pa - pb;
  }
  const da = dueKey(a);
  const db = dueKey(b);
  if (da !== db) return da < db ? -1 : 1;
  return a.number - b.number;
}

/**
 * How a row's SLA reads at `nowMs`: {state, text}. The countdown runs here,
 * from `due_at`; the server pushes the state changes (breaching, breached).
 */
export function slaCell(row, nowMs) {
  let best = null;
  for (const target of ['response', 'resolution']) {
    const clock = row?.sla?.[target];
    if (!clock) continue;
    const due = Date.parse(clock.due_at);
    const remaining = clock.paused ? clock.remaining : Number.isFinite(due) ? Math.floor((due - nowMs) / 1000) : null;
    if (remaining === null) continue;
    const candidate = { target, remaining, paused: !!clock.paused, breached: !!clock.breached || (!clock.paused && remaining < 0) };
    if (!best || (candidate.paused === best.paused ? candidate.remaining < best.remaining : best.paused)) best = candidate;
  }
  if (!best) return { state: row?.status === 'resolved' || row?.status === 'closed' ? 'met' : 'none', text: '—' };
  const label = best.target === 'response' ? 'response' : 'resolution';
  if (best.paused) return { state: 'paused', text: `Paused · ${formatDuration(best.remaining)}` };
  if (best.breached) return { state: 'breached', text: `${formatDuration(best.remaining)} over (${label})` };
  const state = row.sla_state === 'breaching' ? 'breaching' : 'ok';
  return { state, text: `${formatDuration(best.remaining)} left (${label})` };
}

/** The last seq of customer messages the technician has seen, per ticket (localStorage). */
class SeenStore {
  constructor(scope) {
    this.key = `peek.seen.${scope}`;
    try {
      this.map = JSON.parse(localStorage.getItem(this.key) || '{}') || {};
    } catch {
      this.map = {};
    }
  }

  get(id) {
    return this.map[id] ?? 0;
  }

  mark(id, seq) {
    if (!(seq > this.get(id))) return;
    this.map[id] = seq;
    try {
      localStorage.setItem(this.key, JSON.stringify(this.map));
    } catch {
      /* private mode: marks last for the page only */
    }
  }
}

export class QueueView {
  /**
   * options: {client (PeekClient), me ({id, tenant}), els: {tiles, toolbar, body, count, pager},
   *           onOpen(ticketId, opener), activeTicket() -> id or null, onReady(), fallback() -> Promise<rows>}
   */
  constructor(options) {
    this.client = options.client;
    this.me = options.me || {};
    this.els = options.els;
    this.onOpen = options.onOpen || (() => {});
    this.activeTicket = options.activeTicket || (() => null);
    this.onReady = options.onReady || (() => {});
    this.fallback = options.fallback || null;
    this.query = { view: 'open', search: '', sort: 'sla', offset: 0 };
    this.rows = new Map();
    this.tiles = null;
    this.total = 0;
    this.live = false;
    this.ready = false;
    this.seen = new SeenStore(`${this.me.tenant ?? ''}/${this.me.id ?? ''}`);
    this.requestId = null;
    this.renderPending = false;
    this.searchTimer = null;
    this.disposers = [
      this.client.on('frame', (frame) => this._onFrame(frame)),
      this.client.on('welcome', () => this._subscribe()),
    ];
    this.tick = setInterval(() => this._updateCountdowns(), 1000);
    this._buildChrome();
    if (this.client.state === 'open') this._subscribe();
  }

  /** A row as the queue holds it, for the Peek's header before its snapshot. */
  row(id) {
    return this.rows.get(id) || null;
  }

  /** The Peek of `id` is open: its customer messages count as seen. */
  markSeen(id) {
    const row = this.rows.get(id);
    if (row) this.seen.mark(id, row.last_customer_seq ?? 0);
    this._scheduleRender();
  }

  focusRow(id) {
    const tr = this.els.body.querySelector(`[data-testid="queue-row"][data-ticket="${CSS.escape(id)}"]`);
    if (tr) this._focus(tr);
  }

  setActive(id) {
    for (const tr of this.els.body.querySelectorAll('[data-testid="queue-row"]')) {
      tr.classList.toggle('is-active', tr.dataset.ticket === id);
    }
  }

  refresh() {
    this._subscribe();
  }

  close() {
    for (const dispose of this.disposers) dispose();
    this.disposers = [];
    clearInterval(this.tick);
    clearTimeout(this.searchTimer);
    if (this.live) this.client.sendFrame({ type: 'unsubscribe_queue' });
  }

  // -- subscription --------------------------------------------------------

  _subscribe() {
    this.requestId = `queue-${Math.random().toString(16).slice(2, 10)}`;
    const q = this.query;
    this.client.sendFrame({
      type: 'subscribe_queue',
      id: this.requestId,
      filter: { view: q.view, search: q.search },
      sort: q.sort,
      offset: q.offset,
      limit: PAGE,
    });
  }

  _setQuery(change) {
    Object.assign(this.query, change);
    if (!('offset' in change)) this.query.offset = 0;
    this._renderChrome();
    this._subscribe();
  }

  _onFrame(frame) {
    if (frame.type === 'queue') {
      if (frame.id !== this.requestId) return;
      this.live = true;
      this.rows = new Map((frame.rows || []).map((r) => [r.id, r]));
      this.total = frame.total ?? this.rows.size;
      this.tiles = frame.tiles || this.tiles;
      this.floor = this.query.offset > 0 && frame.rows?.length ? frame.rows[0] : null;
      this._renderAll();
      if (!this.ready) {
        this.ready = true;
        this.onReady();
      }
      return;
    }
    if (frame.type === 'error' && frame.id && frame.id === this.requestId) {
      // A server without the live queue (or a refusal): show what the REST call has.
      if (!this.live && this.fallback) {
        this.fallback().then((rows) => {
          this.rows = new Map(rows.map((r) => [r.id, r]));
          this.total = rows.length;
          this._renderAll();
          if (!this.ready) {
            this.ready = true;
            this.onReady();
          }
        });
      }
      return;
    }
    if (frame.type === 'error' && !frame.id && this.live && /queue/i.test(frame.message || '')) {
      this._subscribe(); // "subscribe to it again"
      return;
    }
    if (frame.type !== 'delta' || !this.live) return;
    const data = frame.data || {};
    if (frame.kind === 'queue.tiles') {
      this.tiles = data;
      this._renderTiles();
    } else if (frame.kind === 'queue.row') {
      if (data.removed) this.rows.delete(data.id);
      else if (data.row) {
        this.rows.set(data.row.id, data.row);
        if (data.row.id === this.activeTicket()) this.seen.mark(data.row.id, data.row.last_customer_seq ?? 0);
      }
      if (Number.isFinite(data.total)) this.total = data.total;
      this._scheduleRender();
    }
  }

  // -- rendering -------------------------------------------------------------

  _buildChrome() {
    const { toolbar } = this.els;
    this.search = h('input', {
      type: 'search',
      class: 'queue-search',
      placeholder: 'Search number, subject or contact',
      'aria-label': 'Search the queue',
      'data-testid': 'queue-search',
      oninput: () => {
        clearTimeout(this.searchTimer);
        this.searchTimer = setTimeout(() => this._setQuery({ search: this.search.value.trim() }), 250);
      },
    });
    this.sortSelect = h(
      'select',
      { class: 'queue-sort', 'aria-label': 'Sort by', 'data-testid': 'queue-sort', onchange: () => this._setQuery({ sort: this.sortSelect.value }) },
      SORTS.map(([value, label]) => h('option', { value }, label)),
    );
    this.viewButtons = VIEWS.map(([view, label]) =>
      h('button', {
        type: 'button', class: 'queue-chip', 'data-testid': `queue-view-${view}`, 'aria-pressed': 'false',
        onclick: () => this._setQuery({ view: this.query.view === view ? 'open' : view }),
      }, label),
    );
    replaceChildren(toolbar, h('div', { class: 'queue-chips', role: 'group', 'aria-label': 'Views' }, this.viewButtons), this.search, this.sortSelect);
    this.els.body.addEventListener('keydown', (e) => this._onKey(e));
    this._renderChrome();
  }

  _renderChrome() {
    for (const button of this.viewButtons) button.setAttribute('aria-pressed', String(button.dataset.testid === `queue-view-${this.query.view}`));
    this.sortSelect.value = this.query.sort;
    this._renderTiles();
  }

  _renderTiles() {
    const tiles = this.tiles || {};
    replaceChildren(
      this.els.tiles,
      TILES.map(([key, label]) =>
        h(
          'button',
          {
            type: 'button',
            class: `queue-tile tile-${key}`,
            'data-testid': `tile-${key}`,
            'data-count': tiles[key] ?? '',
            'aria-pressed': String(this.query.view === key),
            onclick: () => this._setQuery({ view: this.query.view === key && key !== 'open' ? 'open' : key }),
          },
          h('span', { class: 'tile-count' }, tiles[key] ?? '–'),
          h('span', { class: 'tile-label' }, label),
        ),
      ),
    );
  }

  _scheduleRender() {
    if (this.renderPending) return;
    this.renderPending = true;
    requestAnimationFrame(() => {
      this.renderPending = false;
      this._renderRows();
    });
  }

  _renderAll() {
    this._renderChrome();
    this._renderRows();
  }

  /** The rows of the window in the asked order: those before the page's first (an earlier page's) and past its size are not shown. */
  _windowRows() {
    const sort = this.query.sort;
    let list = [...this.rows.values()].sort((a, b) => compareRows(sort, a, b));
    if (this.floor) list = list.filter((r) => compareRows(sort, r, this.floor) >= 0);
    if (list.length > PAGE) {
      for (const r of list.slice(PAGE)) this.rows.delete(r.id);
      list = list.slice(0, PAGE);
    }
    return list;
  }

  _renderRows() {
    const body = this.els.body;
    const list = this._windowRows();
    const q = this.query;
    this.els.count.textContent = `${this.total} ticket${this.total === 1 ? '' : 's'}`;
    const focused = document.activeElement?.closest?.('[data-testid="queue-row"]')?.dataset.ticket;
    const focusOnLink = !!document.activeElement?.classList?.contains('row-link');
    if (list.length === 0) {
      replaceChildren(body, h('tr', null, h('td', { colspan: '8', class: 'queue-empty' }, q.search ? 'Nothing matches the search.' : 'No tickets here. Enjoy the quiet.')));
    } else {
      const active = this.activeTicket();
      replaceChildren(body, list.map((row, i) => this._row(row, active, focused ? row.id === focused : i === 0)));
      if (focused) {
        const tr = body.querySelector(`[data-testid="queue-row"][data-ticket="${CSS.escape(focused)}"]`);
        if (tr) (focusOnLink ? tr.querySelector('.row-link') : tr).focus({ preventScroll: true });
      }
    }
    this._renderPager(list.length);
  }

  _renderPager(shown) {
    const q = this.query;
    const first = shown ? q.offset + 1 : 0;
    replaceChildren(
      this.els.pager,
      h('span', { class: 'pager-range', 'data-testid': 'queue-range' }, `${first}–${q.offset + shown} of ${this.total}`),
      h('button', { type: 'button', class: 'btn btn-ghost btn-sm', 'data-testid': 'queue-prev', disabled: q.offset === 0,
        onclick: () => this._setQuery({ offset: Math.max(0, q.offset - PAGE) }) }, '‹ Previous'),
      h('button', { type: 'button', class: 'btn btn-ghost btn-sm', 'data-testid': 'queue-next', disabled: q.offset + PAGE >= this.total,
        onclick: () => this._setQuery({ offset: q.offset + PAGE }) }, 'Next ›'),
    );
  }

  _row(row, active, tabbable) {
    const sla = slaCell(row, Date.now());
    const unread = (row.last_customer_seq ?? 0) > this.seen.get(row.id) && row.id !== active;
    const others = (row.viewers || []).filter((v) => v.id !== this.me.id);
    const writers = others.filter((v) => v.composing);
    const open = (e) => {
      if (e.target.closest('a')) return;
      this.onOpen(row.id, e.currentTarget.querySelector('.row-link'));
    };
    return h(
      'tr',
      {
        class: `queue-row${row.id === active ? ' is-active' : ''}${unread ? ' is-unread' : ''} sla-${sla.state}`,
        'data-testid': 'queue-row',
        'data-ticket': row.id,
        'data-status': row.status,
        'data-sla': row.sla_state,
        'data-unread': unread ? '1' : '0',
        tabindex: tabbable ? '0' : '-1',
        onclick: open,
      },
      h('td', { class: 'col-number' }, unread ? h('span', { class: 'unread-dot', 'data-testid': 'unread', title: 'New customer message' }) : null,
        h('span', { class: 'ticket-number' }, `#${row.number}`)),
      h(
        'td',
        { class: 'col-subject' },
        h('button', { type: 'button', class: 'row-link', tabindex: '-1', 'data-testid': `open-${row.id}` }, row.subject),
        h(
          'span',
          { class: 'row-sub' },
          h('span', { class: 'row-contact' }, row.contact?.name || ''),
          row.last_message ? h('span', { class: `row-preview preview-${row.last_message.channel}`, 'data-testid': 'row-preview' }, row.last_message.preview) : null,
        ),
        writers.length
          ? h('span', { class: 'row-writing', 'data-testid': 'row-writing' }, `${writers.map((w) => w.name).join(', ')} ${writers.length === 1 ? 'is' : 'are'} writing…`)
          : null,
      ),
      h('td', { class: 'col-client' }, row.client || ''),
      h('td', { class: 'col-status' }, statusPill(row.status)),
      h('td', { class: 'col-priority' }, priorityTag(row.priority)),
      h('td', { class: 'col-sla' }, h('span', { class: `sla-cell sla-${sla.state}`, 'data-testid': 'row-sla', 'data-state': sla.state }, sla.state === 'breached' ? icon('warning') : icon('clock'), h('span', { class: 'sla-text' }, sla.text))),
      h('td', { class: 'col-assignee' }, row.assignee ? h('span', { class: 'option-person' }, avatar(row.assignee, 'xs'), row.assignee.name) : h('span', { class: 'muted' }, 'Unassigned')),
      h(
        'td',
        { class: 'col-viewers' },
        h(
          'span',
          { class: 'avatar-stack', 'data-testid': 'row-viewers', 'data-ids': others.map((v) => v.id).join(' '), title: others.map((v) => v.name).join(', ') },
          others.slice(0, 3).map((v) => avatar(v, 'xs', v.composing ? 'is-composing' : '')),
          others.length > 3 ? h('span', { class: 'avatar-more' }, `+${others.length - 3}`) : null,
        ),
      ),
    );
  }

  _updateCountdowns() {
    const now = Date.now();
    for (const tr of this.els.body.querySelectorAll('[data-testid="queue-row"]')) {
      const row = this.rows.get(tr.dataset.ticket);
      const cell = tr.querySelector('[data-testid="row-sla"]');
      if (!row || !cell) continue;
      const sla = slaCell(row, now);
      if (cell.dataset.state !== sla.state) {
        this._scheduleRender();
        return;
      }
      const text = cell.querySelector('.sla-text');
      if (text && text.textContent !== sla.text) text.textContent = sla.text;
    }
  }

  // -- keyboard ----------------------------------------------------------------

  _focus(tr) {
    for (const other of this.els.body.querySelectorAll('[data-testid="queue-row"]')) other.tabIndex = -1;
    tr.tabIndex = 0;
    tr.focus();
  }

  _onKey(e) {
    const tr = e.target.closest?.('[data-testid="queue-row"]');
    if (!tr) return;
    const rows = [...this.els.body.querySelectorAll('[data-testid="queue-row"]')];
    const i = rows.indexOf(tr);
    let next = null;
    if (e.key === 'ArrowDown') next = rows[i + 1];
    else if (e.key === 'ArrowUp') next = rows[i - 1];
    else if (e.key === 'Home') next = rows[0];
    else if (e.key === 'End') next = rows[rows.length - 1];
    else if (e.key === 'Enter' && e.target === tr) {
      e.preventDefault();
      this.onOpen(tr.dataset.ticket, tr.querySelector('.row-link'));
      return;
    } else return;
    e.preventDefault();
    if (next) this._focus(next);
  }
}
