// PeekClient: the browser side of the technician socket (/v1/ws).
//
// It owns one WebSocket at a time and hides its losses: it says `hello`
// first, keeps a local model of every subscribed ticket (snapshot, then
// durable deltas in seq order, ephemeral deltas as latest value), resumes
// each subscription with `since` after a reconnect or a detected gap, and
// resends commands that were in flight with the SAME id (the server answers a
// repeated id with its first answer, so a resend never acts twice).
//
// The rules themselves (delta application, gaps, backoff, liveness budget)
// live in peek-model.js, which has no socket or timer and is unit-tested on
// its own. README.md documents the policy.

import {
  applyDelta,
  backoffDelay,
  livenessBudget,
  makeId,
  missedMessages,
  modelFromSnapshot,
  oldestSeq,
  prependHistory,
  recordMissed,
} from './peek-model.js';

/** An `error` frame (or a local failure) as a throwable. */
export class PeekError extends Error {
  constructor(code, message, extra = {}) {
    super(message || code);
    this.name = 'PeekError';
    this.code = code;
    if (extra.id !== undefined) this.id = extra.id;
    if (extra.missed !== undefined) this.missed = extra.missed;
    if (extra.frame !== undefined) this.frame = extra.frame;
  }
}

const WS_OPEN = 1;
/** How often the liveness and housekeeping check runs while connected. */
const LIVENESS_CHECK_MS = 1000;
/**
 * A subscribe answered `rate_limited` (the server busy, or this connection at
 * its subscription quota) is sent again this many times, after full-jitter
 * backoff from SUBSCRIBE_RETRY_BASE_MS, before the view shows the error: a
 * busy server recovers in a moment, and the panel should not need reopening.
 */
const SUBSCRIBE_RETRIES = 5;
const SUBSCRIBE_RETRY_BASE_MS = 500;
/** A sign-in is refreshed when this share of its remaining lifetime has passed. */
const REFRESH_AT = 0.8;
/** A refused or failed refresh is tried again after this long (less if expiry is closer). */
const REFRESH_RETRY_MS = 30000;
/** setTimeout's largest delay (about 24.8 days); later expiries wait in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * The local view of one subscribed ticket. `model` is null until the first
 * snapshot. Handlers (all optional) are called with the view first:
 *   onSnapshot(view)                 a snapshot replaced the model
 *   onDelta(view, delta, outcome)    a delta was applied / dropped
 *   onSessionJoin(view, frame)       the agent's desktop join link (`session_join`), for the requester only
 *   onChange(view, reason)           the model changed in any way
 *   onStatus(view, status)           subscribing | live | resyncing | offline | error | closed
 *   onError(view, error)             the server refused the subscription (e.g. not_found)
 */
export class TicketView {
  constructor(client, ticketId, handlers = {}) {
    this.client = client;
    this.ticketId = ticketId;
    this.handlers = handlers;
    this.model = null;
    this.status = 'subscribing';
    this.error = null;
    /** True while a resume (subscribe with `since`) is in flight. */
    this.resyncing = false;
    this.stats = { applied: 0, duplicates: 0, gaps: 0, resumes: 0, snapshots: 0 };
    /** Subscribes refused as `rate_limited` in a row, and the timer of the next try. */
    this._busyRetries = 0;
    this._retryTimer = null;
    /** True while a `history` request of this view is unanswered. */
    this._loadingOlder = false;
  }

  /** The last durable seq applied, or null before the snapshot. */
  get seq() {
    return this.model ? this.model.seq : null;
  }

  /** Sends a command on this ticket; see PeekClient#command. */
  command(op, args = {}, options = {}) {
    return this.client.command(this.ticketId, op, args, options);
  }

  /** Announces (or, with null, withdraws) that this user is composing. */
  composing(mode) {
    this.client.composing(this.ticketId, mode);
  }

  unsubscribe() {
    this.client.unsubscribe(this.ticketId);
  }

  /**
   * Loads the page of messages just older than the oldest one held (a
   * `history` request) into the model, then emits onChange('history').
   * Resolves with how many were added: 0 when there is nothing older, a
   * load is already under way, or a new snapshot replaced the model
   * meanwhile. Rejects with the server's PeekError.
   */
  loadOlder(limit) {
    const model = this.model;
    if (!model || !model.hasOlder || this._loadingOlder) return Promise.resolve(0);
    const before = oldestSeq(model.messages);
    if (before === null) return Promise.resolve(0);
    this._loadingOlder = true;
    return this.client.history(this.ticketId, before, limit)
      .then((frame) => {
        if (this.model !== model) return 0;
        const added = prependHistory(model, frame.messages, frame.more);
        this._emit('onChange', 'history');
        return added;
      })
      .finally(() => {
        this._loadingOlder = false;
      });
  }

  _emit(name, ...args) {
    const fn = this.handlers[name];
    if (typeof fn !== 'function') return;
    try {
      fn(this, ...args);
    } catch (err) {
      // A renderer bug must not break the protocol state machine.
      console.error(`PeekClient: ${name} handler failed`, err);
    }
  }

  _setStatus(status) {
    if (this.status === status) return;
    this.status = status;
    this._emit('onStatus', status);
  }
}

/**
 * new PeekClient({url, token | getToken, heartbeat?, WebSocketImpl?, onStatus?,
 *                 backoff?: {baseMs, capMs}, random?, now?, timers?})
 *
 *  - url: the ws:// or wss:// address of /v1/ws
 *  - token: a technician JWT, or getToken: async () => token (called before
 *    every connection, and to refresh the sign-in: at 80% of the time left
 *    until `welcome.exp` the client sends `refresh` with a fresh token, so
 *    the server never closes the connection for an expired sign-in)
 *  - heartbeat: seconds; overrides the server's `welcome.heartbeat` for the
 *    liveness budget (handy in tests)
 *  - onStatus({state, attempt, delayMs, reason, user}): state is one of
 *    idle | connecting | open | reconnecting | unauthorized | closed
 */
export class PeekClient {
  constructor(options = {}) {
    if (!options.url) throw new TypeError('PeekClient needs a url');
    if (!options.token && typeof options.getToken !== 'function') {
      throw new TypeError('PeekClient needs a token or getToken');
    }
    this.url = options.url;
    this._token = options.token ?? null;
    this._getToken = typeof options.getToken === 'function' ? options.getToken : null;
    this._heartbeatOverride = Number.isFinite(options.heartbeat) ? options.heartbeat : null;
    this._WebSocket = options.WebSocketImpl ?? globalThis.WebSocket;
    this._backoff = { baseMs: 250, capMs: 10000, ...(options.backoff || {}) };
    this._random = options.random ?? Math.random;
    this._now = options.now ?? (() => Date.now());
    this._timers = options.timers ?? {
      setTimeout: globalThis.setTimeout.bind(globalThis),
      clearTimeout: globalThis.clearTimeout.bind(globalThis),
      setInterval: globalThis.setInterval.bind(globalThis),
      clearInterval: globalThis.clearInterval.bind(globalThis),
    };
    this._listeners = { status: new Set(), error: new Set(), welcome: new Set(), frame: new Set() };
    if (typeof options.onStatus === 'function') this._listeners.status.add(options.onStatus);

    this.user = null;
    this.limits = null;
    this.heartbeat = null;
    this.state = 'idle';
    this._ws = null;
    this._welcomed = false;
    this._everWelcomed = false;
    this._welcome = null;
    this._closed = false;
    this._attempt = 0;
    this._reconnectTimer = null;
    this._livenessTimer = null;
    this._refreshTimer = null;
    this._refreshId = null;
    /** The `exp` (Unix seconds) of the token in force on this connection. */
    this.expiresAt = null;
    this._holdUntil = 0;
    this._lastFrameAt = 0;
    this._awaitingSince = null;
    this._probeTicket = null;
    this._budget = livenessBudget(this._heartbeatOverride ?? 30);
    this._triedFreshToken = false;
    this._connectWaiters = [];
    /** ticket id -> TicketView */
    this._views = new Map();
    /** command id -> {frame, resolve, reject} (kept in send order) */
    this._pending = new Map();
    /** subscribe id -> ticket id */
    this._requests = new Map();
    /** history id -> {resolve, reject} */
    this._history = new Map();
    /** assist id -> {onChunk, resolve, reject} */
    this._assists = new Map();
    this._onOnline = () => this._reconnectNow('browser online');
    if (typeof globalThis.addEventListener === 'function') {
      globalThis.addEventListener('online', this._onOnline);
    }
  }

  /**
   * on('status' | 'error' | 'welcome' | 'frame', fn) -> function that removes it.
   * 'frame' gets every frame the server sends, parsed, before the client acts
   * on it (the live queue, queue-view.js, reads its frames there).
   */
  on(event, fn) {
    const set = this._listeners[event];
    if (!set) throw new TypeError(`unknown event ${event}`);
    set.add(fn);
    return () => set.delete(fn);
  }

  /** The subscribed views, by ticket id. */
  get views() {
    return this._views;
  }

  /** Ids of commands still waiting for their answer. */
  get pendingCommandIds() {
    return [...this._pending.keys()];
  }

  /**
   * Opens the connection. Resolves with the `welcome` frame of the first
   * successful hello; rejects if the token is refused. Losses after that are
   * repaired in the background (watch onStatus).
   */
  connect() {
    if (this._closed) return Promise.reject(new PeekError('closed', 'The client was closed'));
    if (this._welcomed && this._ws) return Promise.resolve(this._welcome);
    const promise = new Promise((resolve, reject) => this._connectWaiters.push({ resolve, reject }));
    if (!this._ws && !this._reconnectTimer) this._open();
    return promise;
  }

  /**
   * Subscribes to a ticket and returns its TicketView. Subscribing twice to
   * the same ticket returns the existing view (with the new handlers).
   */
  subscribe(ticketId, handlers = {}) {
    if (this._closed) throw new PeekError('closed', 'The client was closed');
    let view = this._views.get(ticketId);
    if (view) {
      view.handlers = handlers;
      return view;
    }
    view = new TicketView(this, ticketId, handlers);
    this._views.set(ticketId, view);
    if (this._isReady()) this._sendSubscribe(view, null);
    else view._setStatus('offline');
    return view;
  }

  /** Stops the ticket's deltas and forgets its view. */
  unsubscribe(ticketId) {
    const view = this._views.get(ticketId);
    if (!view) return;
    this._views.delete(ticketId);
    this._cancelSubscribeRetry(view);
    for (const [id, ticket] of this._requests) if (ticket === ticketId) this._requests.delete(id);
    if (this._probeTicket === ticketId) this._probeTicket = null;
    if (this._isReady()) this._send({ type: 'unsubscribe', ticket: ticketId });
    view._setStatus('closed');
  }

  /**
   * Asks for up to `limit` (server default 50) messages of the ticket with
   * seq < `before`; resolves with the `history` frame ({messages, more}),
   * rejects with a PeekError. Not resent after a reconnect: the new
   * snapshot replaces what it would have extended.
   */
  history(ticketId, before, limit) {
    if (this._closed) return Promise.reject(new PeekError('closed', 'The client was closed'));
    if (!this._isReady()) return Promise.reject(new PeekError('offline', 'Not connected; older messages load once the connection is back.'));
    const frame = { type: 'history', id: makeId('hist'), ticket: ticketId, before };
    if (Number.isInteger(limit)) frame.limit = limit;
    return new Promise((resolve, reject) => {
      this._history.set(frame.id, { resolve, reject });
      this._send(frame);
    });
  }

  /**
   * Asks the tenant's assistant (protocol.md §11.1) to draft or refine
   * `draft` for `mode`. `onChunk(text)` gets each piece as it arrives;
   * resolves with the `assist_done` frame ({text, model}), rejects with a
   * PeekError (`no_assistant`, `assist_failed`, `offline`...). Not resent
   * after a reconnect: the technician asks again.
   */
  assist(ticketId, mode, draft, onChunk = () => {}) {
    if (this._closed) return Promise.reject(new PeekError('closed', 'The client was closed'));
    if (!this._isReady()) return Promise.reject(new PeekError('offline', 'Not connected; ask Nexie again once the connection is back.'));
    const frame = { type: 'assist', id: makeId('assist'), ticket: ticketId, mode, draft: draft ?? '' };
    return new Promise((resolve, reject) => {
      this._assists.set(frame.id, { onChunk, resolve, reject });
      this._send(frame);
    });
  }

  /**
   * Sends a command; resolves with the `result` ({id, ok, seq}) once the
   * change is durable, rejects with a PeekError carrying `code`, `message`
   * (and `missed` for `stale`). A command sent while disconnected, or whose
   * answer was lost with the connection, is (re)sent after the next hello
   * with the same id.
   */
  command(ticketId, op, args = {}, { ifVersion, seen, id } = {}) {
    if (this._closed) return Promise.reject(new PeekError('closed', 'The client was closed'));
    const frame = { type: 'command', id: id ?? makeId('cmd'), ticket: ticketId, op, args: args ?? {} };
    if (ifVersion !== undefined && ifVersion !== null) frame.if_version = ifVersion;
    if (seen !== undefined && seen !== null) frame.seen = seen;
    return new Promise((resolve, reject) => {
      this._pending.set(frame.id, { frame, resolve, reject });
      if (this._isReady()) this._sendExpectingAnswer(frame);
    });
  }

  /**
   * Input to the active shell this technician holds the keyboard of
   * (protocol.md §6.1): not answered, not resent. Answers whether it went out
   * (false while offline).
   */
  sessionInput(ticketId, session, data) {
    if (!this._isReady()) return false;
    return this._send({ type: 'session_input', ticket: ticketId, session, data });
  }

  /** Presence: `mode` is 'reply', 'note' or null. Dropped while offline. */
  composing(ticketId, mode) {
    if (!this._isReady()) return;
    this._send({ type: 'composing', ticket: ticketId, mode: mode ?? null });
  }

  /**
   * Closes for good: every timer and listener is cleared, pending commands
   * are rejected with code `closed`, and nothing reconnects.
   */
  close() {
    if (this._closed) return;
    this._closed = true;
    this._clearReconnect();
    this._stopLiveness();
    this._cancelRefresh();
    if (typeof globalThis.removeEventListener === 'function') {
      globalThis.removeEventListener('online', this._onOnline);
    }
    const ws = this._ws;
    this._ws = null;
    this._welcomed = false;
    if (ws) {
      detach(ws);
      try {
        ws.close(1000, 'client closed');
      } catch {
        /* already closing */
      }
    }
    const closed = new PeekError('closed', 'The connection was closed');
    for (const { reject } of this._pending.values()) reject(closed);
    this._pending.clear();
    this._requests.clear();
    for (const view of this._views.values()) {
      this._cancelSubscribeRetry(view);
      view._setStatus('closed');
    }
    this._views.clear();
    for (const waiter of this._connectWaiters) waiter.reject(closed);
    this._connectWaiters = [];
    this._setState('closed', { reason: 'closed by client' });
    for (const set of Object.values(this._listeners)) set.clear();
  }

  /**
   * Test hook: drops the socket the way a network failure would (no warning
   * to the server protocol, nothing flushed) and stays down at least
   * `holdMs` before reconnecting, so a test can make changes meanwhile.
   */
  dropForTest(holdMs = 0) {
    if (this._closed) return;
    this._holdUntil = this._now() + Math.max(0, holdMs);
    this._lost('dropped for test', { code: 4000 });
  }

  /**
   * Ends a hold set by `dropForTest` and reconnects at once, so a test can
   * do its offline steps first however long the machine takes over them.
   */
  releaseHoldForTest() {
    this._holdUntil = 0;
    this._reconnectNow('hold released for test');
  }

  // -------------------------------------------------------------------------
  // Connection lifecycle

  _isReady() {
    return Boolean(this._ws && this._welcomed && this._ws.readyState === WS_OPEN);
  }

  async _open() {
    if (this._closed) return;
    this._setState(this._attempt === 0 && !this._everWelcomed ? 'connecting' : 'reconnecting', {
      attempt: this._attempt,
    });
    let token = this._token;
    if (this._getToken) {
      try {
        token = await this._getToken();
      } catch (err) {
        this._scheduleReconnect(`token unavailable: ${err?.message ?? err}`);
        return;
      }
    }
    if (this._closed || this._ws) return;
    let ws;
    try {
      ws = new this._WebSocket(this.url);
    } catch (err) {
      this._scheduleReconnect(`cannot open socket: ${err?.message ?? err}`);
      return;
    }
    this._ws = ws;
    this._welcomed = false;
    ws.onopen = () => {
      if (ws !== this._ws) return;
      this._lastFrameAt = this._now();
      this._sendExpectingAnswer({ type: 'hello', token });
      this._startLiveness();
    };
    ws.onmessage = (event) => {
      if (ws !== this._ws) return;
      this._onFrameText(event.data);
    };
    ws.onerror = () => {
      // The close event that follows carries the details; nothing to do here.
    };
    ws.onclose = (event) => {
      if (ws !== this._ws) return;
      this._lost(`socket closed (${event.code}${event.reason ? ` ${event.reason}` : ''})`, { code: event.code });
    };
  }

  /** The connection is gone: forget it and, unless told otherwise, come back. */
  _lost(reason, { code } = {}) {
    const ws = this._ws;
    this._ws = null;
    this._welcomed = false;
    this._awaitingSince = null;
    this._probeTicket = null;
    this._stopLiveness();
    this._cancelRefresh();
    if (ws) {
      detach(ws);
      try {
        if (ws.readyState <= WS_OPEN) ws.close(code && code >= 4000 ? code : 4000, 'client gave up');
      } catch {
        /* already closing */
      }
    }
    // Answers to subscribes and history requests of the old socket will never come.
    this._requests.clear();
    for (const { reject } of this._history.values()) reject(new PeekError('offline', 'The connection was lost before older messages arrived.'));
    this._history.clear();
    for (const { reject } of this._assists.values()) reject(new PeekError('offline', 'The connection was lost before Nexie finished; ask again.'));
    this._assists.clear();
    for (const view of this._views.values()) {
      view.resyncing = false;
      view._setStatus('offline');
    }
    if (this._closed) return;
    if (code === 4401 || this.state === 'unauthorized') {
      this._onUnauthorized(reason);
      return;
    }
    this._scheduleReconnect(reason);
  }

  _scheduleReconnect(reason) {
    if (this._closed || this._reconnectTimer) return;
    const backoff = backoffDelay(this._attempt, { ...this._backoff, random: this._random });
    const hold = Math.max(0, this._holdUntil - this._now());
    const delayMs = Math.max(backoff, hold);
    this._attempt += 1;
    this._setState('reconnecting', { attempt: this._attempt, delayMs, reason });
    this._reconnectTimer = this._timers.setTimeout(() => {
      this._reconnectTimer = null;
      this._open();
    }, delayMs);
  }

  _reconnectNow(reason) {
    if (this._closed || !this._reconnectTimer) return;
    if (this._holdUntil > this._now()) return;
    this._clearReconnect();
    this._setState('reconnecting', { attempt: this._attempt, delayMs: 0, reason });
    this._open();
  }

  _clearReconnect() {
    if (this._reconnectTimer) {
      this._timers.clearTimeout(this._reconnectTimer);
      this._reconnectTimer = null;
    }
  }

  _onUnauthorized(reason) {
    // One retry with a fresh token (it may simply have expired); after that
    // a person has to sign in again.
    if (this._getToken && !this._triedFreshToken) {
      this._triedFreshToken = true;
      this.state = 'reconnecting';
      this._scheduleReconnect(reason);
      return;
    }
    this._setState('unauthorized', { reason });
    const err = new PeekError('unauthorized', reason || 'The sign-in was refused');
    for (const waiter of this._connectWaiters) waiter.reject(err);
    this._connectWaiters = [];
  }

  // -------------------------------------------------------------------------
  // Sign-in lifetime
  //
  // The server closes a connection with 4401 when its token's `exp` passes
  // (protocol.md §3.3). With `getToken`, the client asks for a fresh token
  // when 80% of the time left has passed and sends `refresh`; the answer
  // `refreshed` carries the new `exp` and the cycle starts again. A refused
  // refresh leaves the old token in force: the client tries again later, and
  // if the old token runs out first, the 4401 leads to one reconnect with a
  // fresh token like any other sign-in failure.

  _scheduleRefresh(exp) {
    this._cancelRefresh();
    this.expiresAt = Number.isFinite(exp) ? exp : null;
    if (!this._getToken || this.expiresAt === null) return;
    const left = this.expiresAt * 1000 - this._now();
    this._armRefresh(Math.max(0, left * REFRESH_AT));
  }

  _armRefresh(delayMs) {
    this._refreshTimer = this._timers.setTimeout(() => {
      this._refreshTimer = null;
      this._refresh();
    }, Math.min(delayMs, MAX_TIMER_MS));
  }

  async _refresh() {
    if (!this._isReady()) return;
    const left = this.expiresAt * 1000 - this._now();
    if (left > MAX_TIMER_MS / REFRESH_AT) {
      this._armRefresh(left * REFRESH_AT); // a very long token: wait another step
      return;
    }
    const ws = this._ws;
    let token;
    try {
      token = await this._getToken();
    } catch {
      token = null;
    }
    if (ws !== this._ws || !this._isReady()) return;
    if (!token) {
      this._retryRefresh();
      return;
    }
    this._refreshId = makeId('ref');
    this._sendExpectingAnswer({ type: 'refresh', id: this._refreshId, token });
  }

  _retryRefresh() {
    const left = this.expiresAt * 1000 - this._now();
    if (left > 0) this._armRefresh(Math.min(REFRESH_RETRY_MS, left / 2));
  }

  _cancelRefresh() {
    if (this._refreshTimer) {
      this._timers.clearTimeout(this._refreshTimer);
      this._refreshTimer = null;
    }
    this._refreshId = null;
  }

  // -------------------------------------------------------------------------
  // Liveness
  //
  // Browsers answer the server's WebSocket pings themselves and never tell the
  // page, so a half-open connection (laptop lid, NAT timeout) looks exactly
  // like a quiet ticket. The check: after `silenceMs` (2.5 heartbeats)
  // without any frame, probe with a resume subscribe (`since` = last applied
  // seq) of one subscribed ticket, which the server must answer (`subscribed`
  // or the deltas we missed). Any frame that demands an answer (hello,
  // subscribe, command, probe) that is followed by no frame at all for
  // `probeTimeoutMs` means the connection is dead: close it and reconnect.

  _startLiveness() {
    this._stopLiveness();
    this._livenessTimer = this._timers.setInterval(() => this._checkLiveness(), LIVENESS_CHECK_MS);
  }

  _stopLiveness() {
    if (this._livenessTimer) {
      this._timers.clearInterval(this._livenessTimer);
      this._livenessTimer = null;
    }
  }

  _checkLiveness() {
    if (!this._ws) return;
    const now = this._now();
    if (this._awaitingSince !== null && now - this._awaitingSince > this._budget.probeTimeoutMs) {
      this._lost('no answer from the server (liveness)');
      return;
    }
    if (!this._welcomed || this._awaitingSince !== null) return;
    if (now - this._lastFrameAt <= this._budget.silenceMs) return;
    const view = [...this._views.values()].find((v) => v.model && !v.resyncing);
    if (!view) return;
    this._probeTicket = view.ticketId;
    this._sendSubscribe(view, view.model.seq, { probe: true });
  }

  /** Sends a frame as is if the connection is open; false if it is not. */
  sendFrame(frame) {
    return this._isReady() && this._send(frame);
  }

  // -------------------------------------------------------------------------
  // Frames

  _send(frame) {
    const ws = this._ws;
    if (!ws || ws.readyState !== WS_OPEN) return false;
    try {
      ws.send(JSON.stringify(frame));
      return true;
    } catch {
      return false;
    }
  }

  _sendExpectingAnswer(frame) {
    if (this._send(frame) && this._awaitingSince === null) this._awaitingSince = this._now();
  }

  _sendSubscribe(view, since, { probe = false } = {}) {
    this._cancelSubscribeRetry(view);
    const frame = { type: 'subscribe', id: makeId('sub'), ticket: view.ticketId };
    if (since !== null && since !== undefined) {
      frame.since = since;
      view.resyncing = true;
      view.stats.resumes += 1;
      // A liveness probe is invisible unless it turns out to repair something.
      if (!probe) view._setStatus(view.model ? 'resyncing' : 'subscribing');
    } else {
      view._setStatus('subscribing');
    }
    this._requests.set(frame.id, view.ticketId);
    this._sendExpectingAnswer(frame);
  }

  _onFrameText(text) {
    this._lastFrameAt = this._now();
    this._awaitingSince = null;
    let frame;
    try {
      frame = JSON.parse(text);
    } catch {
      return;
    }
    if (!frame || typeof frame.type !== 'string') return;
    for (const fn of this._listeners.frame) safeCall(fn, frame);
    switch (frame.type) {
      case 'welcome':
        return this._onWelcome(frame);
      case 'refreshed':
        if (frame.id !== this._refreshId) return undefined;
        return this._scheduleRefresh(frame.exp);
      case 'snapshot':
        return this._onSnapshot(frame);
      case 'subscribed':
        return this._onSubscribed(frame);
      case 'history':
        return this._onHistory(frame);
      case 'assist_chunk': {
        const waiter = this._assists.get(frame.id);
        if (waiter && typeof frame.text === 'string') safeCall(waiter.onChunk, frame.text);
        return undefined;
      }
      case 'assist_done': {
        const waiter = this._assists.get(frame.id);
        if (!waiter) return undefined;
        this._assists.delete(frame.id);
        return waiter.resolve(frame);
      }
      case 'delta':
        return this._onDelta(frame);
      case 'result':
        return this._onResult(frame);
      case 'error':
        return this._onError(frame);
      case 'session_join': {
        // A desktop session's join link, sent only to the technician who asked.
        const view = this._views.get(frame.ticket);
        return view ? view._emit('onSessionJoin', frame) : undefined;
      }
      default:
        return undefined; // unknown frames are ignored, as the contract says
    }
  }

  _onWelcome(frame) {
    this._welcomed = true;
    this._everWelcomed = true;
    this._welcome = frame;
    this._attempt = 0;
    this._triedFreshToken = false;
    this.user = frame.user ?? null;
    // Upload limits the composer checks before a byte is sent (protocol.md §3.3).
    this.limits = frame.limits && typeof frame.limits === 'object' ? frame.limits : null;
    this.heartbeat = Number.isFinite(frame.heartbeat) ? frame.heartbeat : null;
    this._budget = livenessBudget(this._heartbeatOverride ?? this.heartbeat ?? 30);
    this._scheduleRefresh(frame.exp);
    this._setState('open', { user: this.user });
    for (const fn of this._listeners.welcome) safeCall(fn, frame);
    // Resume every subscription first, then resend what is still unanswered,
    // in the order it was first sent.
    for (const view of this._views.values()) this._sendSubscribe(view, view.model ? view.model.seq : null);
    for (const { frame: command } of this._pending.values()) this._sendExpectingAnswer(command);
    for (const waiter of this._connectWaiters) waiter.resolve(frame);
    this._connectWaiters = [];
  }

  _onSnapshot(frame) {
    if (frame.id) this._requests.delete(frame.id);
    const view = this._views.get(frame.ticket);
    if (!view) return;
    view.model = modelFromSnapshot(frame, this._now());
    view.resyncing = false;
    view.error = null;
    view._busyRetries = 0;
    view.stats.snapshots += 1;
    if (this._probeTicket === frame.ticket) this._probeTicket = null;
    view._setStatus('live');
    view._emit('onSnapshot');
    view._emit('onChange', 'snapshot');
  }

  _onHistory(frame) {
    const waiter = this._history.get(frame.id);
    if (!waiter) return;
    this._history.delete(frame.id);
    waiter.resolve(frame);
  }

  _onSubscribed(frame) {
    if (frame.id) this._requests.delete(frame.id);
    const view = this._views.get(frame.ticket);
    if (!view) return;
    if (this._probeTicket === frame.ticket) this._probeTicket = null;
    view.resyncing = false;
    view._busyRetries = 0;
    if (!view.model) {
      // A resume answer without a model to resume: ask for the whole state.
      this._sendSubscribe(view, null);
      return;
    }
    if (Number.isInteger(frame.seq) && frame.seq > view.model.seq) {
      // The server says there is more than it replayed: start over.
      this._sendSubscribe(view, null);
      return;
    }
    view._setStatus('live');
  }

  _onDelta(frame) {
    const view = this._views.get(frame.ticket);
    if (!view || !view.model) return;
    const { outcome } = applyDelta(view.model, frame, this._now());
    if (outcome === 'applied') view.stats.applied += 1;
    if (outcome === 'duplicate') view.stats.duplicates += 1;
    if (outcome === 'gap') {
      view.stats.gaps += 1;
      // Resume once from the last applied seq; deltas past the gap are
      // dropped until then (the resume replays them in order).
      if (!view.resyncing) {
        view._emit('onResync', 'gap');
        this._sendSubscribe(view, view.model.seq);
      }
    }
    view._emit('onDelta', frame, outcome);
    if (outcome === 'applied' || outcome === 'ephemeral') view._emit('onChange', frame.kind);
  }

  _onResult(frame) {
    const pending = this._pending.get(frame.id);
    if (!pending) return;
    this._pending.delete(frame.id);
    pending.resolve(frame);
  }

  _onError(frame) {
    const id = frame.id ?? null;
    if (id !== null && id === this._refreshId) {
      // The old token stays in force; try again before it runs out.
      this._refreshId = null;
      this._retryRefresh();
      return;
    }
    const assistWaiter = id !== null ? this._assists.get(id) : undefined;
    if (assistWaiter) {
      this._assists.delete(id);
      assistWaiter.reject(new PeekError(frame.code, frame.message, { id, frame }));
      return;
    }
    const historyWaiter = id !== null ? this._history.get(id) : undefined;
    if (historyWaiter) {
      this._history.delete(id);
      historyWaiter.reject(new PeekError(frame.code, frame.message, { id, frame }));
      return;
    }
    const pending = id !== null ? this._pending.get(id) : undefined;
    if (pending) {
      this._pending.delete(id);
      const missed = missedMessages(frame);
      const err = new PeekError(frame.code, frame.message, { id, frame, missed: frame.code === 'stale' ? missed : undefined });
      if (frame.code === 'stale') {
        const view = this._views.get(pending.frame.ticket);
        if (view && view.model) {
          recordMissed(view.model, missed);
          view._emit('onChange', 'missed');
        }
      }
      pending.reject(err);
      return;
    }
    if (id !== null && this._requests.has(id)) {
      const ticket = this._requests.get(id);
      this._requests.delete(id);
      const view = this._views.get(ticket);
      if (view && frame.code === 'rate_limited' && view._busyRetries < SUBSCRIBE_RETRIES) {
        // Nothing changed on the server; keep the model and the status
        // (subscribing or resyncing) and ask again shortly.
        const delay = backoffDelay(view._busyRetries, { baseMs: SUBSCRIBE_RETRY_BASE_MS, random: this._random });
        view._busyRetries += 1;
        view._retryTimer = this._timers.setTimeout(() => {
          view._retryTimer = null;
          if (this._views.get(ticket) === view && this._isReady()) this._sendSubscribe(view, view.model ? view.model.seq : null);
        }, delay);
        return;
      }
      if (view) {
        view.resyncing = false;
        view.error = new PeekError(frame.code, frame.message, { id, frame });
        view._setStatus('error');
        view._emit('onError', view.error);
      }
      return;
    }
    if (frame.code === 'unauthorized') {
      this.state = 'unauthorized';
      this._lost(frame.message || 'unauthorized', { code: 4401 });
      return;
    }
    const err = new PeekError(frame.code, frame.message, { id: id ?? undefined, frame });
    for (const fn of this._listeners.error) safeCall(fn, err);
  }

  _cancelSubscribeRetry(view) {
    if (view._retryTimer === null) return;
    this._timers.clearTimeout(view._retryTimer);
    view._retryTimer = null;
  }

  _setState(state, details = {}) {
    this.state = state;
    const status = { state, attempt: this._attempt, user: this.user, ...details };
    for (const fn of this._listeners.status) safeCall(fn, status);
  }
}

function detach(ws) {
  ws.onopen = null;
  ws.onmessage = null;
  ws.onerror = null;
  ws.onclose = null;
}

function safeCall(fn, ...args) {
  try {
    fn(...args);
  } catch (err) {
    console.error('PeekClient: listener failed', err);
  }
}
