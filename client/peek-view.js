// The Ticket Peek: a slide-out dialog over the queue, rendered from a
// TicketView's model. One PeekPanel per open Peek; close() tears down the
// subscription and every timer and listener it made.

import { AssistControl } from './assist.js';
import { acceptDroppedFiles, attachmentList, AttachmentLinks, AttachmentTray, DEFAULT_LIMITS, formatBytes } from './composer-attachments.js';
import { DraftStore } from './drafts.js';
import { deliveryTag, Outbox, refreshDeliveryTags, SendLog, sendLogView } from './send-state.js';
import { renderTimeCard } from './time-card.js';
import { RemoteActions } from './remote-console.js';
import { avatar, formatTimestamp, h, icon, priorityTag, PRIORITY_LABELS, relativeTime, replaceChildren, STATUS_LABELS, statusPill } from './dom.js';
import { newMessagesSinceSummary, slaReading } from './peek-model.js';

/** Idle time after the last keystroke before presence says "not composing". */
const COMPOSING_IDLE_MS = 5000;

const FOCUSABLE = 'a[href], button:not([disabled]), textarea:not([disabled]), input:not([disabled]), select:not([disabled]), [tabindex]:not([tabindex="-1"])';

export class PeekPanel {
  /**
   * options: {client, ticketId, me, technicians, drafts (DraftStore), toast(msg, tone),
   *           onClose(), onTicketChange(ticket), onOpenTicket(id), summary (queue row, optional)}
   */
  constructor(options) {
    this.client = options.client;
    this.ticketId = options.ticketId;
    this.me = options.me || {};
    this.getTechnicians = options.getTechnicians || (() => options.technicians || []);
    this.drafts = options.drafts || new DraftStore(null);
    this.toast = options.toast || (() => {});
    this.onClose = options.onClose || (() => {});
    this.onTicketChange = options.onTicketChange || (() => {});
    this.onOpenTicket = options.onOpenTicket || (() => {});
    this.queueRow = options.summary || null;
    // The sign-in token for the page's own HTTP calls (uploads, signed
    // links, the send log): sent as a header, never in a URL.
    this.getToken = options.getToken || (() => null);
    this.links = new AttachmentLinks({ ticketId: this.ticketId, getToken: this.getToken });
    this.sendLog = new SendLog({ ticketId: this.ticketId, getToken: this.getToken, onChange: () => this.onSendLog() });
    this.replyCount = -1;

    this.view = null;
    this.closed = false;
    this.mode = null;
    this.sending = false;
    this.composingSent = null;
    this.composingTimer = null;
    this.tickTimer = null;
    this.disposers = [];
    this.renderedIds = [];
    this.rendered = {};
    this.liveUpdaters = new Map();
    this.popover = null;
    this.busyControls = new Set();
    this.remote = new RemoteActions(this, { getToken: options.getToken });
    this.timerBusy = false;
    this.lastMissed = [];
  }

  get model() {
    return this.view ? this.view.model : null;
  }

  // -------------------------------------------------------------------------
  // Open / close

  open(opener) {
    this.opener = opener || document.activeElement;
    this.build();
    document.body.append(this.scrim, this.panel);
    document.documentElement.classList.add('peek-open');
    const app = document.getElementById('app');
    if (app) {
      app.inert = true;
      this.disposers.push(() => {
        app.inert = false;
      });
    }
    this.listen(document, 'keydown', (e) => this.onKeydown(e));
    this.listen(document, 'pointerdown', (e) => this.onDocumentPointer(e), true);
    this.view = this.client.subscribe(this.ticketId, {
      onChange: (_view, reason) => this.render(reason),
      onDelta: (_view, delta) => this.remote.onDelta(delta),
      onSessionJoin: (_view, frame) => this.remote.onSessionJoin(frame),
      onStatus: (_view, status) => this.renderConnection(status),
      onError: (_view, err) => this.renderError(err),
    });
    this.renderConnection(this.view.status);
    if (this.view.model) this.render('snapshot');
    this.tickTimer = setInterval(() => this.tick(), 1000);
    // Keep the thread pinned to its newest message while the composer grows
    // (errors, stale warnings) or the composing indicator appears.
    this.pinned = true;
    this.listen(this.els.thread, 'scroll', () => {
      const t = this.els.thread;
      this.pinned = t.scrollHeight - t.scrollTop - t.clientHeight < 48;
      if (t.scrollTop < 48) this.loadOlder();
    });
    const resize = new ResizeObserver(() => {
      if (this.pinned) this.els.thread.scrollTop = this.els.thread.scrollHeight;
    });
    resize.observe(this.els.thread);
    this.disposers.push(() => resize.disconnect());
    requestAnimationFrame(() => {
      if (!this.closed) this.panel.classList.add('is-open');
    });
    this.els.title.focus({ preventScroll: true });
  }

  /** Unsubscribes and removes every timer, listener and node this Peek made. */
  close() {
    if (this.closed) return;
    this.closed = true;
    this.assist?.close();
    this.saveDraft();
    if (this.composingSent !== null && this.view) this.view.composing(null);
    this.composingSent = null;
    clearTimeout(this.composingTimer);
    this.composingTimer = null;
    clearInterval(this.tickTimer);
    this.tickTimer = null;
    clearTimeout(this.flashTimer);
    this.liveUpdaters.clear();
    this.remote.dispose();
    if (this.view) this.view.unsubscribe();
    this.view = null;
    for (const dispose of this.disposers.splice(0)) dispose();
    this.scrim.remove();
    this.panel.remove();
    document.documentElement.classList.remove('peek-open');
    if (this.opener && typeof this.opener.focus === 'function' && this.opener.isConnected) {
      this.opener.focus({ preventScroll: true });
    }
    this.onClose();
  }

  listen(target, type, fn, capture = false) {
    target.addEventListener(type, fn, capture);
    this.disposers.push(() => target.removeEventListener(type, fn, capture));
  }

  onKeydown(e) {
    if (e.key === 'Escape') {
      e.preventDefault();
      if (this.popover) this.closePopover(true);
      else this.close();
      return;
    }
    if (e.key === 'Tab') this.trapFocus(e);
  }

  trapFocus(e) {
    const items = [...this.panel.querySelectorAll(FOCUSABLE)].filter((el) => el.offsetParent !== null || el === document.activeElement);
    if (items.length === 0) return;
    const first = items[0];
    const last = items[items.length - 1];
    if (!this.panel.contains(document.activeElement)) {
      e.preventDefault();
      first.focus();
    } else if (e.shiftKey && (document.activeElement === first || document.activeElement === this.els.title)) {
      e.preventDefault();
      last.focus();
    } else if (!e.shiftKey && document.activeElement === last) {
      e.preventDefault();
      first.focus();
    }
  }

  onDocumentPointer(e) {
    if (this.popover && !this.popover.wrap.contains(e.target)) this.closePopover(false);
  }

  // -------------------------------------------------------------------------
  // Skeleton

  build() {
    const els = {};
    this.els = els;
    this.scrim = h('div', { class: 'peek-scrim', 'data-testid': 'peek-scrim', onclick: () => this.close() });
    els.title = h('h2', { id: 'peek-title', class: 'peek-subject', tabindex: '-1', 'data-testid': 'peek-subject' }, this.queueRow?.subject || 'Loading…');
    els.number = h('span', { class: 'ticket-number', 'data-testid': 'peek-number' }, this.queueRow ? `#${this.queueRow.number}` : this.ticketId);
    els.client = h('span', { class: 'peek-client', 'data-testid': 'peek-client' }, this.queueRow?.client || '');
    els.contact = h('span', { class: 'peek-contact', 'data-testid': 'peek-contact' });
    els.presence = h('div', { class: 'presence', 'data-testid': 'presence-list', 'aria-label': 'Also viewing' });
    els.close = h(
      'button',
      { type: 'button', class: 'icon-btn peek-close', 'data-testid': 'peek-close', 'aria-label': 'Close Peek', title: 'Close (Esc)', onclick: () => this.close() },
      icon('close'),
    );

    els.statusControl = this.menuControl('status', 'Status');
    els.priorityControl = this.menuControl('priority', 'Priority');
    els.assigneeControl = this.menuControl('assignee', 'Assignee');
    els.takeOwnership = h(
      'button',
      { type: 'button', class: 'btn btn-secondary btn-sm', 'data-testid': 'take-ownership', onclick: () => this.runControl('take', 'take_ownership', {}) },
      icon('user'),
      h('span', null, 'Take ownership'),
    );

    const header = h(
      'header',
      { class: 'peek-header' },
      h(
        'div',
        { class: 'peek-header-top' },
        h('div', { class: 'peek-crumbs' }, els.number, h('span', { class: 'dot-sep', 'aria-hidden': 'true' }), els.client),
        h('div', { class: 'peek-header-actions' }, els.presence, els.close),
      ),
      els.title,
      h('div', { class: 'peek-meta' }, els.contact),
      h('div', { class: 'peek-controls' }, els.statusControl.wrap, els.priorityControl.wrap, els.assigneeControl.wrap, els.takeOwnership),
    );

    els.banner = h('div', { class: 'peek-banner', 'data-testid': 'peek-banner', role: 'status', hidden: true });

    els.thread = h('div', { class: 'thread', 'data-testid': 'thread', role: 'log', 'aria-live': 'polite', 'aria-label': 'Conversation', tabindex: '0' },
      h('div', { class: 'thread-loading' }, h('span', { class: 'spinner' }), 'Loading conversation…'));
    els.composingIndicator = h('div', { class: 'composing-indicator', 'data-testid': 'composing-indicator', 'aria-live': 'polite' });
    this.buildComposer();

    els.context = h('aside', { class: 'peek-context', 'aria-label': 'Ticket context' });
    els.cards = {};
    for (const [key, title, iconName, testid] of [
      ['sla', 'SLA', 'clock', 'sla-card'],
      ['asset', 'Linked asset', 'laptop', 'asset-card'],
      ['posture', 'RMM-Sentinel', 'shield', 'posture-card'],
      ['remote', 'Remote actions', 'monitor', 'remote-card'],
      ['summary', 'Nexie summary', 'sparkles', 'summary-card'],
      ['time', 'Time + contract', 'timer', 'time-card'],
      ['related', 'Related tickets', 'link', 'related-card'],
    ]) {
      const body = h('div', { class: 'card-body' }, h('div', { class: 'skeleton-line' }), h('div', { class: 'skeleton-line short' }));
      const aside = h('span', { class: 'card-aside' });
      const card = h(
        'section',
        { class: `card card-${key}`, 'data-testid': testid, 'aria-label': title },
        h('header', { class: 'card-header' }, h('h3', { class: 'card-title' }, icon(iconName), title), aside),
        body,
      );
      els.cards[key] = { card, body, aside };
      els.context.append(card);
    }

    this.panel = h(
      'section',
      {
        class: 'peek',
        role: 'dialog',
        'aria-modal': 'true',
        'aria-labelledby': 'peek-title',
        'data-testid': 'peek-dialog',
        'data-ticket': this.ticketId,
      },
      header,
      els.banner,
      h(
        'div',
        { class: 'peek-body' },
        h('section', { class: 'peek-conversation', 'aria-label': 'Conversation and composer' }, els.thread, els.composingIndicator, els.composer),
        els.context,
      ),
    );
  }

  buildComposer() {
    const els = this.els;
    els.modeReply = h('button', { type: 'button', class: 'mode-btn', 'data-testid': 'mode-reply', 'aria-pressed': 'false', onclick: () => this.setMode('reply', true) }, icon('mail'), 'Reply');
    els.modeNote = h('button', { type: 'button', class: 'mode-btn', 'data-testid': 'mode-note', 'aria-pressed': 'false', onclick: () => this.setMode('note', true) }, icon('note'), 'Internal note');
    els.replyReason = h('p', { class: 'composer-reason', 'data-testid': 'reply-disabled-reason', hidden: true });
    els.input = h('textarea', {
      class: 'composer-input',
      'data-testid': 'composer-input',
      rows: '3',
      'aria-label': 'Message',
      placeholder: 'Write a reply…',
    });
    // The draft is filled in by setMode once the snapshot says which modes apply.
    els.input.addEventListener('input', () => this.onInput());
    els.input.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
        e.preventDefault();
        this.send(false);
      }
    });
    els.input.addEventListener('blur', () => this.saveDraft());
    els.stale = h('div', { class: 'composer-stale', 'data-testid': 'composer-stale', hidden: true, role: 'alert' });
    els.error = h('div', { class: 'composer-error', 'data-testid': 'composer-error', role: 'alert', hidden: true });
    els.sendState = h('span', { class: 'composer-state', 'data-testid': 'composer-state', 'aria-live': 'polite' });
    els.send = h('button', { type: 'submit', class: 'btn btn-primary', 'data-testid': 'send-button' }, icon('send'), h('span', { class: 'send-label' }, 'Send reply'));
    this.tray = new AttachmentTray({
      ticketId: this.ticketId,
      getToken: this.getToken,
      limits: () => this.client.limits || DEFAULT_LIMITS,
      onChange: () => this.renderSendState(),
    });
    this.outbox = new Outbox({
      onRetry: () => this.send(false, true),
      onDiscard: () => this.outbox.hide(),
      openLog: () => this.openSendLog(),
    });
    els.sendLog = h('div', { class: 'send-log-wrap', hidden: true });
    this.assist = new AssistControl({
      input: els.input,
      mode: () => this.mode,
      ask: (mode, draft, onChunk) => this.client.assist(this.ticketId, mode, draft, onChunk),
      changed: () => this.onInput(),
    });
    els.composer = h(
      'form',
      { class: 'composer', 'data-testid': 'composer', onsubmit: (e) => { e.preventDefault(); this.send(false); } },
      h('div', { class: 'composer-modes', role: 'group', 'aria-label': 'Composer mode' }, els.modeReply, els.modeNote),
      els.replyReason,
      els.input,
      this.assist.bar,
      this.assist.error,
      this.tray.element,
      els.stale,
      els.error,
      this.outbox.element,
      els.sendLog,
      h('div', { class: 'composer-footer' }, this.tray.button, this.assist.button, h('span', { class: 'composer-hint' }, h('kbd', null, 'Ctrl'), '+', h('kbd', null, 'Enter'), ' to send'), els.sendState, els.send),
    );
    this.disposers.push(acceptDroppedFiles(els.composer, els.input, this.tray));
    // Uploads still running when the Peek closes are abandoned with it.
    this.disposers.push(() => this.tray.clear());
  }

  // -------------------------------------------------------------------------
  // Header controls (status, priority, assignee popovers)

  menuControl(name, label) {
    const value = h('span', { class: 'control-value' }, '—');
    const button = h(
      'button',
      {
        type: 'button',
        class: `control control-${name}`,
        'data-testid': `${name}-control`,
        'aria-haspopup': 'listbox',
        'aria-expanded': 'false',
        onclick: () => this.togglePopover(name),
      },
      h('span', { class: 'control-label' }, label),
      value,
      icon('chevron', 'control-chevron'),
    );
    const menu = h('div', { class: 'popover', role: 'listbox', 'aria-label': label, 'data-testid': `${name}-menu`, hidden: true });
    const wrap = h('div', { class: 'control-wrap' }, button, menu);
    menu.addEventListener('keydown', (e) => this.onMenuKey(e, menu));
    return { name, wrap, button, menu, value };
  }

  menuOptions(name) {
    const t = this.model?.ticket || {};
    if (name === 'status') {
      return Object.keys(STATUS_LABELS).map((v) => ({ value: v, node: statusPill(v), current: t.status === v }));
    }
    if (name === 'priority') {
      return Object.keys(PRIORITY_LABELS).map((v) => ({ value: v, node: priorityTag(v), current: t.priority === v }));
    }
    return this.getTechnicians().map((tech) => ({
      value: tech.id,
      node: h('span', { class: 'option-person' }, avatar(tech, 'xs'), tech.name, tech.id === this.me.id ? h('span', { class: 'muted' }, ' (you)') : null),
      current: t.assignee?.id === tech.id,
    }));
  }

  togglePopover(name) {
    const control = this.controlFor(name);
    if (this.popover === control) {
      this.closePopover(true);
      return;
    }
    this.closePopover(false);
    if (!this.model) return;
    const options = this.menuOptions(name);
    replaceChildren(
      control.menu,
      options.length === 0 ? h('div', { class: 'popover-empty' }, 'Nothing to choose from') : null,
      options.map((opt) =>
        h(
          'button',
          {
            type: 'button',
            role: 'option',
            class: `popover-option${opt.current ? ' is-current' : ''}`,
            'aria-selected': opt.current ? 'true' : 'false',
            'data-testid': `${name}-option-${opt.value}`,
            'data-value': opt.value,
            onclick: () => this.choose(name, opt.value),
          },
          opt.node,
          opt.current ? icon('check', 'option-check') : null,
        ),
      ),
    );
    control.menu.hidden = false;
    control.button.setAttribute('aria-expanded', 'true');
    this.popover = control;
    const current = control.menu.querySelector('.is-current') || control.menu.querySelector('button');
    if (current) current.focus();
  }

  closePopover(returnFocus) {
    const control = this.popover;
    if (!control) return;
    control.menu.hidden = true;
    control.button.setAttribute('aria-expanded', 'false');
    this.popover = null;
    if (returnFocus) control.button.focus();
  }

  onMenuKey(e, menu) {
    if (e.key !== 'ArrowDown' && e.key !== 'ArrowUp') return;
    e.preventDefault();
    const items = [...menu.querySelectorAll('button')];
    const index = items.indexOf(document.activeElement);
    const next = e.key === 'ArrowDown' ? (index + 1) % items.length : (index - 1 + items.length) % items.length;
    items[next]?.focus();
  }

  controlFor(name) {
    return { status: this.els.statusControl, priority: this.els.priorityControl, assignee: this.els.assigneeControl }[name];
  }

  choose(name, value) {
    this.closePopover(true);
    const t = this.model?.ticket || {};
    if (name === 'status' && value !== t.status) this.runControl('status', 'set_status', { status: value });
    if (name === 'priority' && value !== t.priority) this.runControl('priority', 'set_priority', { priority: value });
    if (name === 'assignee' && value !== t.assignee?.id) this.runControl('assignee', 'assign', { technician: value });
  }

  /** Runs a header command; the change shows when its delta arrives, never before. */
  async runControl(name, op, args) {
    if (!this.view || this.busyControls.has(name)) return;
    this.busyControls.add(name);
    this.renderHeader();
    const version = this.model?.ticket?.version;
    try {
      await this.view.command(op, args, { ifVersion: Number.isInteger(version) ? version : undefined });
    } catch (err) {
      if (err.code !== 'closed') this.toast(err.message || 'The change failed', 'danger');
    } finally {
      this.busyControls.delete(name);
      if (!this.closed) this.renderHeader();
    }
  }

  // -------------------------------------------------------------------------
  // Composer

  hasContactEmail() {
    const email = this.model?.ticket?.contact?.email;
    return typeof email === 'string' && email.trim() !== '';
  }

  setMode(mode, fromUser = false) {
    if (mode === 'reply' && !this.hasContactEmail()) mode = 'note';
    const changed = this.mode !== mode;
    const els = this.els;
    if (changed) {
      this.assist?.abandon();
      // Each mode has its own draft: the text stays with the mode it was
      // written in. Text typed before the first snapshot is kept unless a
      // stored draft of that mode exists.
      if (this.mode !== null) this.saveDraft();
      const stored = this.drafts.body(this.ticketId, mode);
      if (this.mode !== null || stored !== '') els.input.value = stored;
    }
    this.mode = mode;
    if (changed && fromUser) this.drafts.rememberMode(this.ticketId, mode);
    els.modeReply.setAttribute('aria-pressed', String(mode === 'reply'));
    els.modeNote.setAttribute('aria-pressed', String(mode === 'note'));
    els.composer.dataset.mode = mode;
    els.composer.classList.toggle('is-note', mode === 'note');
    els.input.placeholder = mode === 'reply' ? 'Write a reply to the customer…' : 'Add an internal note (staff only)…';
    els.send.querySelector('.send-label').textContent = mode === 'reply' ? 'Send reply' : 'Add note';
    if (changed && fromUser) {
      this.hideFeedback();
      if (els.input.value.trim() !== '') this.announceComposing(mode);
      els.input.focus();
    }
  }

  onInput() {
    this.saveDraft();
    this.hideError();
    if (this.els.input.value.trim() === '') {
      this.announceComposing(null);
      return;
    }
    this.announceComposing(this.mode);
    clearTimeout(this.composingTimer);
    this.composingTimer = setTimeout(() => {
      this.composingTimer = null;
      this.announceComposing(null);
    }, COMPOSING_IDLE_MS);
  }

  announceComposing(mode) {
    if (!this.view) return;
    if (mode === null) {
      clearTimeout(this.composingTimer);
      this.composingTimer = null;
    }
    if (this.composingSent === mode) return;
    this.composingSent = mode;
    this.view.composing(mode);
  }

  saveDraft() {
    if (!this.els || this.mode === null || this.assist?.state === 'streaming') return;
    const body = this.els.input.value;
    this.drafts.save(this.ticketId, this.mode, body);
    if (body.trim() !== '') this.drafts.rememberMode(this.ticketId, this.mode);
  }

  async send(force, retry = false) {
    if (!this.view || !this.model || this.sending || this.assist?.state === 'streaming') return;
    this.assist?.reset();
    const els = this.els;
    const body = els.input.value.trim();
    if (body === '') {
      this.showError('Write something first.');
      els.input.focus();
      return;
    }
    if (this.tray.uploading) {
      this.showError('Wait for the attachments to finish uploading, or remove them.');
      return;
    }
    if (this.tray.failed) {
      this.showError('An attachment did not upload; remove it (and attach it again) before sending.');
      return;
    }
    const mode = this.mode;
    if (mode === 'reply' && !this.hasContactEmail()) return;
    const attachments = this.tray.ids();
    const replyLimit = (this.client.limits || DEFAULT_LIMITS).reply_attachment_bytes;
    if (mode === 'reply' && this.tray.bytes() > replyLimit) {
      this.showError(`The attachments total ${formatBytes(this.tray.bytes())} and one email may carry at most ${formatBytes(replyLimit)}; send some of them in a second reply.`);
      return;
    }
    this.sending = true;
    this.hideFeedback();
    this.renderSendState();
    const to = this.model.ticket?.contact?.email;
    if (mode === 'reply') this.outbox.show(retry ? 'retrying' : 'sending', { to, body });
    const args = { body };
    if (force) args.force = true;
    if (attachments.length) args.attachments = attachments;
    try {
      await this.view.command(mode, args, { seen: this.view.seq });
      // Only now, with the server's `result`, is the message real: its
      // draft goes, even if the Peek was closed meanwhile.
      this.drafts.clear(this.ticketId, mode);
      if (this.closed) return;
      if (mode === 'reply') this.outbox.hide();
      if (attachments.length) this.tray.clear();
      if (this.mode === mode && els.input.value.trim() === body) els.input.value = '';
      else if (this.mode === mode) this.saveDraft();
      this.announceComposing(null);
      this.flashState(mode === 'reply' ? 'Reply sent' : 'Note added');
      this.lastMissed = [];
    } catch (err) {
      if (this.closed || err.code === 'closed') return;
      // A reply that reached a mail server and failed stays in the outbox
      // with the server's answer; anything refused before that is an error.
      if (mode === 'reply' && err.code === 'dispatch_failed') {
        this.outbox.show('failed', { to, body, reason: err.message || 'Sending failed' });
        this.sendLog.refresh();
        return;
      }
      if (mode === 'reply') this.outbox.hide();
      if (err.code === 'stale') this.showStale(err.missed || [], err.frame?.missed_total);
      else this.showError(err.message || 'Sending failed');
    } finally {
      this.sending = false;
      if (!this.closed) this.renderSendState();
    }
  }

  openSendLog() {
    this.sendLogOpen = true;
    this.renderSendLog();
    this.sendLog.refresh();
  }

  renderSendLog() {
    const wrap = this.els.sendLog;
    wrap.hidden = !this.sendLogOpen;
    replaceChildren(wrap, this.sendLogOpen ? sendLogView(this.sendLog, () => {
      this.sendLogOpen = false;
      this.renderSendLog();
    }) : null);
  }

  /** The send log arrived: replies say where and when they were emailed. */
  onSendLog() {
    if (this.closed || !this.model) return;
    refreshDeliveryTags(this.els.thread, this.model.messages, this.sendLog);
    if (this.sendLogOpen) this.renderSendLog();
  }

  renderSendState() {
    const els = this.els;
    els.send.disabled = this.sending || !this.model || Boolean(this.tray?.uploading);
    els.input.readOnly = this.sending;
    els.composer.setAttribute('aria-busy', String(this.sending));
    if (this.sending) els.sendState.textContent = this.view && this.view.status !== 'live' ? 'Waiting for connection…' : 'Sending…';
    else if (!els.sendState.dataset.flash) els.sendState.textContent = '';
  }

  flashState(text) {
    const el = this.els.sendState;
    el.textContent = text;
    el.dataset.flash = '1';
    clearTimeout(this.flashTimer);
    this.flashTimer = setTimeout(() => {
      delete el.dataset.flash;
      el.textContent = '';
    }, 2500);
  }

  showError(message) {
    const el = this.els.error;
    replaceChildren(el, icon('warning'), h('span', { 'data-testid': 'composer-error-text' }, message));
    el.hidden = false;
  }

  hideError() {
    this.els.error.hidden = true;
  }

  hideFeedback() {
    this.hideError();
    this.els.stale.hidden = true;
  }

  /** `total`: every unseen message; the server lists only the most recent (`missed_total`, protocol.md §3.9). */
  showStale(missed, total) {
    this.lastMissed = missed;
    const el = this.els.stale;
    const n = Math.max(Number.isInteger(total) ? total : 0, missed.length);
    replaceChildren(
      el,
      h('p', { class: 'stale-title' }, icon('warning'), `${n} new message${n === 1 ? '' : 's'} arrived while you were writing. Nothing was sent.`),
      h(
        'ul',
        { class: 'stale-list', 'data-testid': 'stale-missed' },
        missed.map((m) =>
          h('li', { 'data-testid': 'stale-missed-message', 'data-id': m.id ?? '' }, h('strong', null, m.author?.name || 'Someone'), ': ', truncate(m.body, 140)),
        ),
      ),
      h(
        'div',
        { class: 'stale-actions' },
        h('button', { type: 'button', class: 'btn btn-secondary btn-sm', 'data-testid': 'stale-review', onclick: () => this.reviewMissed() }, 'Review first'),
        h('button', { type: 'button', class: 'btn btn-primary btn-sm', 'data-testid': 'send-anyway', onclick: () => this.send(true) }, 'Send anyway'),
      ),
    );
    el.hidden = false;
    this.scrollToMessage(missed.find((m) => m.id != null)?.id);
  }

  /**
   * Near the top of the thread: fetch the page before the oldest message
   * shown. renderThread puts it in front without moving what is in view.
   */
  loadOlder() {
    if (!this.view || !this.model?.hasOlder) return;
    const thread = this.els.thread;
    thread.setAttribute('aria-busy', 'true');
    this.view.loadOlder()
      .catch((err) => {
        // Scrolling to the top again retries; the thread stays as it was.
        thread.title = `Older messages could not be loaded: ${err?.message || err}`;
      })
      .finally(() => thread.removeAttribute('aria-busy'));
  }

  /** Scrolls the thread (only the thread) so the message is in view. */
  scrollToMessage(id) {
    if (id == null) return;
    const thread = this.els.thread;
    const node = thread.querySelector(`[data-id="${CSS.escape(String(id))}"]`);
    if (!node) return;
    const offset = node.getBoundingClientRect().top - thread.getBoundingClientRect().top;
    thread.scrollTop += offset - 16;
    this.pinned = thread.scrollHeight - thread.scrollTop - thread.clientHeight < 48;
  }

  reviewMissed() {
    this.els.stale.hidden = true;
    this.scrollToMessage(this.lastMissed.find((m) => m.id != null)?.id);
    this.els.input.focus({ preventScroll: true });
  }

  // -------------------------------------------------------------------------
  // Rendering

  render(reason) {
    if (this.closed || !this.model) return;
    if (reason === 'snapshot') {
      this.rendered = {};
      this.renderedIds = [];
      this.panel.classList.remove('is-error');
      if (this.mode === null) {
        this.setMode(this.drafts.lastMode(this.ticketId) || (this.hasContactEmail() ? 'reply' : 'note'));
      }
    }
    this.renderHeader();
    this.renderThread(reason === 'snapshot');
    const replies = this.model.messages.filter((m) => m.channel === 'technician').length;
    if (replies !== this.replyCount) {
      this.replyCount = replies;
      if (replies > 0) this.sendLog.refresh();
    }
    this.renderPresence();
    this.renderComposerAvailability();
    this.renderCards();
    this.renderSendState();
    this.onTicketChange(this.model.ticket);
  }

  renderConnection(status) {
    if (this.closed) return;
    const banner = this.els.banner;
    this.panel.dataset.status = status;
    // A new connection starts with "not composing" on the server's side.
    if (status === 'offline') this.composingSent = null;
    if (status === 'offline') {
      replaceChildren(banner, h('span', { class: 'spinner' }), 'Connection lost — reconnecting. Changes made meanwhile will appear when it is back.');
      banner.hidden = false;
    } else if (status === 'resyncing') {
      replaceChildren(banner, h('span', { class: 'spinner' }), 'Catching up on what changed…');
      banner.hidden = false;
    } else {
      banner.hidden = true;
    }
    if (this.sending) this.renderSendState();
  }

  renderError(err) {
    if (this.closed) return;
    this.panel.classList.add('is-error');
    const message = err.code === 'not_found' ? 'This ticket does not exist or you cannot see it.' : err.message;
    replaceChildren(this.els.thread, h('div', { class: 'empty-state', 'data-testid': 'peek-error' }, icon('warning'), h('p', null, message)));
    this.els.title.textContent = this.queueRow?.subject || this.ticketId;
  }

  renderHeader() {
    const t = this.model?.ticket;
    if (!t) return;
    const els = this.els;
    els.number.textContent = `#${t.number ?? this.ticketId}`;
    els.title.textContent = t.subject || '(no subject)';
    els.client.textContent = t.client || '';
    const email = t.contact?.email;
    replaceChildren(
      els.contact,
      avatar({ id: `contact:${t.contact?.name}`, name: t.contact?.name }, 'sm', 'avatar-customer'),
      h('span', { class: 'contact-name' }, t.contact?.name || 'Unknown contact'),
      email
        ? h('a', { class: 'contact-email', 'data-testid': 'contact-email', href: `mailto:${email}` }, email)
        : h('span', { class: 'badge badge-muted', 'data-testid': 'no-contact-email' }, 'No email on file'),
    );
    this.setControl(els.statusControl, statusPill(t.status), this.busyControls.has('status'));
    this.setControl(els.priorityControl, priorityTag(t.priority), this.busyControls.has('priority'));
    this.setControl(
      els.assigneeControl,
      t.assignee ? h('span', { class: 'option-person' }, avatar(t.assignee, 'xs'), t.assignee.name) : h('span', { class: 'muted' }, 'Unassigned'),
      this.busyControls.has('assignee'),
    );
    els.statusControl.button.dataset.value = t.status || '';
    els.priorityControl.button.dataset.value = t.priority || '';
    els.assigneeControl.button.dataset.value = t.assignee?.id || '';
    const mine = t.assignee && t.assignee.id === this.me.id;
    els.takeOwnership.disabled = Boolean(mine) || this.busyControls.has('take');
    els.takeOwnership.querySelector('span:last-child').textContent = mine ? 'You own this' : this.busyControls.has('take') ? 'Taking…' : 'Take ownership';
    els.takeOwnership.classList.toggle('is-done', Boolean(mine));
  }

  setControl(control, valueNode, busy) {
    replaceChildren(control.value, valueNode);
    control.button.classList.toggle('is-busy', busy);
    control.button.setAttribute('aria-busy', String(busy));
  }

  renderThread(full) {
    const messages = this.model.messages;
    const ids = messages.map((m) => m.id);
    const thread = this.els.thread;
    // A history page went in front: insert its nodes above the first shown
    // and move scrollTop by the height they added, so the view stays put.
    const shift = !full && this.renderedIds.length > 0 ? ids.indexOf(this.renderedIds[0]) : -1;
    if (shift > 0 && this.renderedIds.every((id, i) => id === ids[shift + i])) {
      const heightBefore = thread.scrollHeight;
      const topBefore = thread.scrollTop;
      const older = document.createDocumentFragment();
      for (let i = 0; i < shift; i += 1) older.append(this.messageNode(messages[i]));
      thread.insertBefore(older, thread.querySelector('.msg'));
      this.renderedIds = ids.slice(0, shift).concat(this.renderedIds);
      thread.scrollTop = topBefore + (thread.scrollHeight - heightBefore);
      this.pinned = thread.scrollHeight - thread.scrollTop - thread.clientHeight < 48;
    }
    const prefixOk = !full && this.renderedIds.length <= ids.length && this.renderedIds.every((id, i) => id === ids[i]);
    const nearBottom = this.pinned !== false;
    if (!prefixOk || this.renderedIds.length === 0) {
      replaceChildren(thread);
      this.renderedIds = [];
      if (messages.length === 0) thread.append(h('div', { class: 'empty-state' }, 'No messages yet.'));
    } else if (messages.length > this.renderedIds.length) {
      thread.querySelector('.empty-state')?.remove();
    }
    for (let i = this.renderedIds.length; i < messages.length; i += 1) {
      thread.append(this.messageNode(messages[i]));
      this.renderedIds.push(ids[i]);
    }
    for (const node of thread.querySelectorAll('.msg')) {
      node.classList.toggle('is-missed', this.model.missedIds.has(node.dataset.id));
    }
    if (full || nearBottom || !prefixOk) {
      thread.scrollTop = thread.scrollHeight;
      this.pinned = true;
    }
  }

  messageNode(m) {
    const channel = m.channel || 'system';
    const via = m.via || '';
    const base = {
      class: `msg msg-${channel}`,
      'data-testid': 'thread-message',
      'data-kind': channel,
      'data-via': via,
      'data-id': m.id ?? '',
    };
    const time = h('time', { class: 'msg-time', datetime: m.at || '', title: m.at || '' }, formatTimestamp(m.at));
    if (channel === 'system') {
      return h('div', { ...base, role: 'note' }, h('span', { class: 'msg-system-text' }, m.body), time, attachmentList(m.attachments, this.links, (message) => this.toast(message, 'danger')));
    }
    const author = m.author?.name || 'Unknown';
    let tag = null;
    if (channel === 'customer') {
      tag =
        via === 'agent_mtls'
          ? h('span', { class: 'via-badge via-agent', 'data-testid': 'via-agent', title: 'Sent through the RMM agent over mutual TLS' }, icon('lock'), 'via agent (mTLS)')
          : h('span', { class: 'via-badge' }, icon('mail'), via === 'email' ? 'via email' : `via ${via || 'web'}`);
    } else if (channel === 'technician') {
      tag = deliveryTag(m, this.sendLog);
    } else if (channel === 'internal_note') {
      tag = h('span', { class: 'via-badge via-note' }, icon('lock'), 'Internal note · staff only');
    }
    const attachments = attachmentList(m.attachments, this.links, (message) => this.toast(message, 'danger'));
    return h(
      'article',
      base,
      avatar(m.author || { name: author }, 'sm', channel === 'customer' ? 'avatar-customer' : ''),
      h(
        'div',
        { class: 'msg-main' },
        h('div', { class: 'msg-head' }, h('span', { class: 'msg-author' }, author), tag, time),
        h('div', { class: 'msg-bubble' }, h('div', { class: 'msg-body' }, m.body || ''), attachments),
      ),
    );
  }

  renderPresence() {
    const viewers = (this.model.viewers || []).filter((v) => v.id !== this.me.id);
    const list = this.els.presence;
    replaceChildren(
      list,
      viewers.length === 0
        ? h('span', { class: 'presence-alone' }, 'Only you')
        : h('span', { class: 'presence-label' }, 'Also here'),
      viewers.map((v) =>
        h(
          'span',
          {
            class: `presence-viewer${v.composing ? ' is-composing' : ''}`,
            'data-testid': 'presence-viewer',
            'data-id': v.id,
            'data-composing': v.composing || '',
            title: `${v.name}${v.composing ? (v.composing === 'note' ? ' — writing a note' : ' — writing a reply') : ' — viewing'}`,
          },
          avatar(v, 'sm'),
          h('span', { class: 'presence-name' }, v.name),
        ),
      ),
    );
    const composing = viewers.filter((v) => v.composing === 'reply' || v.composing === 'note');
    const indicator = this.els.composingIndicator;
    if (composing.length === 0) {
      indicator.textContent = '';
      indicator.classList.remove('is-active');
    } else {
      const first = composing[0];
      const what = first.composing === 'note' ? 'an internal note' : 'a reply';
      const who = composing.length === 1 ? `${firstName(first.name)} is` : `${composing.map((v) => firstName(v.name)).join(' and ')} are`;
      replaceChildren(indicator, h('span', { class: 'typing-dots', 'aria-hidden': 'true' }, h('i'), h('i'), h('i')), `${who} writing ${composing.length === 1 ? what : ''}…`.replace(' …', '…'));
      indicator.classList.add('is-active');
    }
  }

  renderComposerAvailability() {
    const els = this.els;
    const can = this.hasContactEmail();
    els.modeReply.disabled = !can;
    els.modeReply.title = can ? '' : 'This contact has no email address';
    if (!can) {
      const name = this.model.ticket?.contact?.name || 'This contact';
      els.replyReason.textContent = `Reply is unavailable: ${name} has no email address on file, so nothing can be sent to them. You can still post an internal note.`;
      els.replyReason.hidden = false;
      if (this.mode === 'reply') this.setMode('note');
    } else {
      els.replyReason.hidden = true;
    }
  }

  // -------------------------------------------------------------------------
  // Context cards: each is re-rendered only when its inputs changed, so a
  // telemetry tick does not rebuild (and steal focus from) the timer buttons.

  renderCards() {
    const m = this.model;
    const inputs = {
      sla: [m.sla, m.ticket?.first_response_at, m.ticket?.status],
      asset: [m.asset, m.ticket?.asset],
      posture: [m.asset?.posture, m.asset],
      remote: this.remote.deps(),
      summary: [m.summary, m.messages.length, m.summaryPending],
      time: [m.time, m.contract, this.timerBusy, this.timeUi],
      related: [m.related],
    };
    for (const [key, deps] of Object.entries(inputs)) {
      const previous = this.rendered[key];
      if (previous && previous.length === deps.length && previous.every((d, i) => d === deps[i])) continue;
      this.rendered[key] = deps;
      const card = this.els.cards[key];
      const focusKey = card.card.contains(document.activeElement) ? document.activeElement.dataset.testid : null;
      this.liveUpdaters.delete(key);
      this[`render${key[0].toUpperCase()}${key.slice(1)}Card`](card);
      if (focusKey) card.card.querySelector(`[data-testid="${focusKey}"]`)?.focus();
    }
    this.tick();
  }

  live(key, fn) {
    this.liveUpdaters.set(key, fn);
  }

  tick() {
    if (this.closed || !this.model) return;
    const now = Date.now();
    for (const fn of this.liveUpdaters.values()) fn(now);
  }

  renderSlaCard({ body, aside }) {
    const m = this.model;
    const rows = [
      ['response', 'First response'],
      ['resolution', 'Resolution'],
    ].map(([target, label]) => {
      const state = h('span', { class: 'sla-state' });
      const countdown = h('span', { class: 'sla-countdown', 'data-testid': `sla-${target}-countdown` });
      const due = h('span', { class: 'sla-due' });
      const row = h('div', { class: 'sla-row', 'data-testid': `sla-${target}` }, h('div', { class: 'sla-label' }, label, state), h('div', { class: 'sla-values' }, countdown, due));
      return { target, row, state, countdown, due };
    });
    replaceChildren(body, rows.map((r) => r.row));
    const update = (now) => {
      let worst = 'ok';
      for (const r of rows) {
        const { state, label, text, at, dueAt } = slaReading(m, r.target, now);
        r.row.dataset.state = state;
        r.state.textContent = label;
        r.state.className = `sla-state badge badge-${state}`;
        r.countdown.textContent = text;
        r.due.textContent = at ? relativeTime(at, now) : dueAt ? `Due ${formatTimestamp(dueAt, now)}` : '';
        if (state === 'breached') worst = 'breached';
        else if (state === 'due-soon' && worst !== 'breached') worst = 'due-soon';
      }
      body.parentElement.dataset.state = worst;
    };
    replaceChildren(aside);
    this.live('sla', update);
  }

  renderAssetCard({ body, aside }) {
    const asset = this.model.asset;
    if (!asset) {
      replaceChildren(aside);
      replaceChildren(body, h('p', { class: 'empty-note' }, 'No asset is linked to this ticket.'));
      return;
    }
    const online = asset.agent_online;
    replaceChildren(
      aside,
      online === undefined || online === null
        ? null
        : h('span', { class: `badge ${online ? 'badge-ok' : 'badge-muted'}`, 'data-testid': 'asset-online' }, h('span', { class: 'status-dot' }), online ? 'Agent online' : 'Agent offline'),
    );
    const telemetry = asset.telemetry || (Number.isFinite(asset.cpu) ? { cpu: asset.cpu, ram: asset.ram, disk: asset.disk, at: asset.at } : null);
    const tile = (key, label) => {
      const value = telemetry && Number.isFinite(Number(telemetry[key])) ? Math.round(Number(telemetry[key])) : null;
      const level = value === null ? 'none' : value >= 90 ? 'danger' : value >= 75 ? 'warn' : 'ok';
      return h(
        'div',
        { class: `tile tile-${level}`, 'data-testid': `telemetry-${key}`, 'data-value': value ?? '' },
        h('span', { class: 'tile-label' }, label),
        h('span', { class: 'tile-value' }, value === null ? '—' : `${value}`, value === null ? null : h('small', null, '%')),
        h('span', { class: 'tile-meter', 'aria-hidden': 'true' }, h('span', { style: { width: `${value ?? 0}%` } })),
      );
    };
    const age = h('span', { class: 'muted', 'data-testid': 'telemetry-age' });
    replaceChildren(
      body,
      h('div', { class: 'asset-id' }, h('span', { class: 'asset-name', 'data-testid': 'asset-name' }, asset.name || asset.id), asset.agent ? h('code', { class: 'asset-agent', title: 'Agent certificate CN' }, asset.agent) : null),
      h('div', { class: 'tiles' }, tile('cpu', 'CPU'), tile('ram', 'RAM'), tile('disk', 'Disk')),
      compliancePills(asset.posture, 'asset-compliance'),
      h('div', { class: 'card-foot' }, telemetry ? age : h('span', { class: 'muted' }, online === false ? 'No live telemetry while the agent is offline' : 'Waiting for telemetry from the agent')),
    );
    if (telemetry) {
      this.live('asset', (now) => {
        const at = telemetry.receivedAt ?? Date.parse(telemetry.at);
        age.textContent = Number.isFinite(at) ? `Live · updated ${Math.max(0, Math.round((now - at) / 1000))}s ago` : 'Live';
      });
    }
  }

  renderPostureCard({ body, aside }) {
    const posture = this.model.asset?.posture;
    replaceChildren(aside);
    if (!posture || typeof posture !== 'object') {
      replaceChildren(body, h('p', { class: 'empty-note', 'data-testid': 'posture-empty' }, 'No posture data'));
      return;
    }
    const checks = postureChecks(posture);
    const worst = checks.some((c) => c.tone === 'breached') ? 'breached' : checks.some((c) => c.tone === 'due-soon') ? 'due-soon' : 'ok';
    const stated = posture.status || posture.level;
    const tone = stated ? toneOf(stated) : worst;
    const label = stated ? String(stated).replace(/_/g, ' ') : { ok: 'Healthy', 'due-soon': 'Needs attention', breached: 'At risk' }[worst];
    replaceChildren(aside, h('span', { class: `badge badge-${tone}`, 'data-testid': 'posture-status' }, label));
    const scanned = posture.at || posture.last_scan || posture.scanned_at;
    replaceChildren(
      body,
      posture.summary ? h('p', { class: 'posture-summary' }, posture.summary) : null,
      compliancePills(posture, 'posture-checks'),
      scanned ? h('div', { class: 'card-foot muted' }, `Scanned ${relativeTime(scanned)}`) : null,
    );
  }

  renderRemoteCard(card) {
    this.remote.render(card);
  }

  renderSummaryCard({ body, aside }) {
    const m = this.model;
    const summary = m.summary;
    // The tenant's summariser was asked (summary.pending) and has not answered yet.
    const writing = m.summaryPending ? h('span', { class: 'badge badge-muted summary-pending', 'data-testid': 'summary-pending' }, icon('sparkles'), 'Nexie is writing…') : null;
    if (!summary || !summary.text) {
      replaceChildren(aside, writing);
      replaceChildren(body, h('p', { class: 'empty-note' }, 'No summary yet. Nexie writes one as the conversation grows.'));
      return;
    }
    const fresh = newMessagesSinceSummary(summary, m.messages);
    replaceChildren(
      aside,
      writing ??
      h(
        'span',
        { class: `badge ${fresh ? 'badge-due-soon' : 'badge-ok'}`, 'data-testid': 'summary-new', 'data-count': fresh ?? 0 },
        fresh ? `${fresh} new message${fresh === 1 ? '' : 's'} since` : 'Up to date',
      ),
    );
    const when = h('span', null);
    replaceChildren(
      body,
      h('p', { class: 'summary-text', 'data-testid': 'summary-text' }, summary.text),
      h('div', { class: 'card-foot muted' }, summary.model ? h('span', { class: 'summary-model' }, summary.model) : null, when),
    );
    this.live('summary', (now) => {
      when.textContent = summary.at ? `${summary.model ? ' · ' : ''}${relativeTime(summary.at, now)}` : '';
    });
  }

  renderTimeCard(card) {
    renderTimeCard(this, card);
  }

  /** A time command (timer_start, timer_stop with a note, time_add); the card changes when its delta arrives. */
  async timerCommand(op, args = {}) {
    if (!this.view || this.timerBusy) return false;
    this.timerBusy = true;
    this.renderCards();
    try {
      await this.view.command(op, args);
      return true;
    } catch (err) {
      if (err.code !== 'closed') this.toast(err.message || 'The timer request failed', 'danger');
      return false;
    } finally {
      this.timerBusy = false;
      if (!this.closed) this.renderCards();
    }
  }

  renderRelatedCard({ body, aside }) {
    const related = this.model.related || [];
    replaceChildren(aside, related.length ? h('span', { class: 'muted' }, String(related.length)) : null);
    if (related.length === 0) {
      replaceChildren(body, h('p', { class: 'empty-note' }, 'No related tickets.'));
      return;
    }
    replaceChildren(
      body,
      h(
        'ul',
        { class: 'related' },
        related.map((r) =>
          h(
            'li',
            null,
            h(
              'button',
              { type: 'button', class: 'related-item', 'data-testid': 'related-ticket', 'data-ticket': r.id, onclick: () => this.onOpenTicket(r.id) },
              h('span', { class: 'ticket-number' }, `#${r.number ?? r.id}`),
              h('span', { class: 'related-subject' }, r.subject || ''),
              statusPill(r.status),
            ),
          ),
        ),
      ),
    );
  }
}

const GOOD_VALUES = new Set(['ok', 'pass', 'passed', 'good', 'healthy', 'on', 'enabled', 'compliant', 'true', 'yes', 'up_to_date', 'current']);
const WARN_VALUES = new Set(['warn', 'warning', 'at_risk', 'degraded', 'outdated', 'pending', 'unknown']);
const BAD_VALUES = new Set(['fail', 'failed', 'bad', 'critical', 'off', 'disabled', 'unhealthy', 'missing', 'false', 'no', 'noncompliant', 'infected']);

function toneOf(value) {
  const v = String(value).toLowerCase();
  if (GOOD_VALUES.has(v)) return 'ok';
  if (BAD_VALUES.has(v)) return 'breached';
  if (WARN_VALUES.has(v)) return 'due-soon';
  return 'muted';
}

/**
 * Posture comes either as {checks: [{name, status, detail}]} or as a flat
 * object of facts ({antivirus: "healthy", firewall: "on", pending_patches: 3});
 * both become pills with a tone.
 */
/** The posture's checks as pills (the asset card and the RMM-Sentinel card), or null. */
function compliancePills(posture, testid) {
  if (!posture || typeof posture !== 'object') return null;
  const checks = postureChecks(posture);
  if (!checks.length) return null;
  return h(
    'ul',
    { class: 'pills', 'data-testid': testid },
    checks.map((c) => h('li', { class: `pill pill-${c.tone}`, 'data-check': c.name, 'data-tone': c.tone, title: c.detail || c.name }, c.name, c.detail ? h('span', { class: 'pill-detail' }, `· ${c.detail}`) : null)),
  );
}

function postureChecks(posture) {
  if (Array.isArray(posture.checks)) {
    return posture.checks.map((c) => ({
      name: c.name || 'check',
      detail: c.detail || null,
      tone: toneOf(c.status ?? (c.ok === true ? 'pass' : c.ok === false ? 'fail' : 'unknown')),
    }));
  }
  const skip = new Set(['status', 'level', 'summary', 'at', 'last_scan', 'scanned_at', 'checks']);
  const out = [];
  for (const [key, value] of Object.entries(posture)) {
    if (skip.has(key) || value === null || typeof value === 'object') continue;
    const name = key.replace(/_/g, ' ').replace(/^./, (c) => c.toUpperCase());
    if (typeof value === 'number') {
      out.push({ name, detail: String(value), tone: value === 0 ? 'ok' : 'due-soon' });
    } else if (typeof value === 'boolean') {
      out.push({ name, detail: null, tone: value ? 'ok' : 'breached' });
    } else {
      out.push({ name, detail: String(value).replace(/_/g, ' '), tone: toneOf(value) });
    }
  }
  return out;
}

function firstName(name) {
  return String(name || 'Someone').split(/\s+/)[0];
}

function truncate(text, n) {
  const s = String(text || '');
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
}
