// Unit tests for peek-model.js (pure rules) and for PeekClient driven by a
// fake WebSocket and a fake clock. Open model.test.html in a browser; the
// element #results ends as "N passed, M failed" with data-done="1".

import {
  applyDelta,
  backoffDelay,
  classifyDelta,
  formatClock,
  formatDuration,
  livenessBudget,
  makeId,
  missedMessages,
  modelFromSnapshot,
  newMessagesSinceSummary,
  prependHistory,
  recordMissed,
  slaReading,
  slaRemainingSeconds,
  timerElapsedSeconds,
} from '../peek-model.js';
import { PeekClient, PeekError } from '../peek-client.js';
import { DraftStore } from '../drafts.js';
import { compareRows, dueKey, slaCell } from '../queue-view.js';
import { ansiRuns, stripAnsi } from '../remote-console.js';

const tests = [];
function test(name, fn) {
  tests.push({ name, fn });
}

class AssertionError extends Error {}
function assert(condition, message) {
  if (!condition) throw new AssertionError(message || 'assertion failed');
}
function eq(actual, expected, message) {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) throw new AssertionError(`${message ? `${message}: ` : ''}expected ${e}, got ${a}`);
}

// ---------------------------------------------------------------- fixtures

const T0 = Date.parse('2026-11-29T07:30:00.000Z');

function snapshot(overrides = {}) {
  return {
    type: 'snapshot',
    id: 'sub-1',
    ticket: 'T-1001',
    seq: 5,
    state: {
      ticket: { id: 'T-1001', number: 1001, subject: 'VPN drops', status: 'open', priority: 'high', assignee: { id: 'tech-ana', name: 'Ana Ruiz' }, contact: { name: 'Maria', email: 'm@x.example' }, client: 'Harbor', asset: { id: 'asset-1', name: 'ANA-LAPTOP' }, first_response_at: null, version: 3 },
      messages: [
        { id: 'm1', channel: 'customer', author: { id: 'c1', name: 'Maria' }, body: 'Hi', via: 'email', at: '2026-11-29T07:00:00.000Z', attachments: [] },
        { id: 'm2', channel: 'system', author: { id: 'system', name: 'System' }, body: 'Created', via: 'system', at: '2026-11-29T07:00:01.000Z', attachments: [] },
      ],
      sla: { response: { due_at: '2026-11-29T08:30:00.000Z', remaining: 3600, breached: false, paused: false }, resolution: null },
      asset: { id: 'asset-1', name: 'ANA-LAPTOP', telemetry: null },
      session: null,
      summary: null,
      time: { active: null, entries: [], total: 0 },
      related: [],
      viewers: [{ id: 'tech-ana', name: 'Ana Ruiz', composing: null }],
      ...overrides,
    },
  };
}

function delta(seq, kind, data, at = '2026-11-29T07:30:00.000Z') {
  const frame = { type: 'delta', ticket: 'T-1001', at, kind, data };
  if (seq !== null) frame.seq = seq;
  return frame;
}

function message(id, channel = 'customer', extra = {}) {
  return { id, channel, author: { id: 'c1', name: 'Maria' }, body: `body ${id}`, via: 'email', at: '2026-11-29T07:31:00.000Z', attachments: [], ...extra };
}

// ------------------------------------------------------------- model tests

test('snapshot: builds the model with seq, ticket, messages and stamped SLA clocks', () => {
  const m = modelFromSnapshot(snapshot(), T0);
  eq(m.seq, 5);
  eq(m.ticketId, 'T-1001');
  eq(m.ticket.version, 3);
  eq(m.messages.length, 2);
  eq(m.messages[0].seq, null, 'snapshot messages without seq are marked null');
  eq(m.sla.response.receivedAt, T0);
  eq(m.sla.resolution, null);
  eq(m.viewers.length, 1);
});

test('classifyDelta: ephemeral, duplicate, next, gap, invalid', () => {
  eq(classifyDelta(5, delta(null, 'sla.tick', {})), 'ephemeral');
  eq(classifyDelta(5, delta(null, 'presence.updated', {})), 'ephemeral');
  eq(classifyDelta(5, delta(5, 'message.created', {})), 'duplicate');
  eq(classifyDelta(5, delta(2, 'message.created', {})), 'duplicate');
  eq(classifyDelta(5, delta(6, 'message.created', {})), 'next');
  eq(classifyDelta(5, delta(8, 'message.created', {})), 'gap');
  eq(classifyDelta(5, delta(null, 'message.created', {})), 'invalid', 'a durable kind without seq');
  eq(classifyDelta(5, delta(6.5, 'message.created', {})), 'invalid');
});

test('message.created appends in order and records the seq', () => {
  const m = modelFromSnapshot(snapshot(), T0);
  eq(applyDelta(m, delta(6, 'message.created', message('m3')), T0).outcome, 'applied');
  eq(m.seq, 6);
  eq(m.messages.map((x) => x.id), ['m1', 'm2', 'm3']);
  eq(m.messages[2].seq, 6);
});

test('duplicates (seq <= current) are dropped without touching the model', () => {
  const m = modelFromSnapshot(snapshot(), T0);
  applyDelta(m, delta(6, 'message.created', message('m3')), T0);
  eq(applyDelta(m, delta(6, 'message.created', message('m3')), T0).outcome, 'duplicate');
  eq(applyDelta(m, delta(4, 'ticket.updated', { status: 'closed' }), T0).outcome, 'duplicate');
  eq(m.messages.length, 3);
  eq(m.ticket.status, 'open');
  eq(m.seq, 6);
});

test('a gap (seq > current+1) is reported and not applied', () => {
  const m = modelFromSnapshot(snapshot(), T0);
  eq(applyDelta(m, delta(7, 'message.created', message('m4')), T0).outcome, 'gap');
  eq(m.seq, 5);
  eq(m.messages.length, 2);
  // The missing one, then the one after, apply normally.
  eq(applyDelta(m, delta(6, 'message.created', message('m3')), T0).outcome, 'applied');
  eq(applyDelta(m, delta(7, 'message.created', message('m4')), T0).outcome, 'applied');
  eq(m.messages.map((x) => x.id), ['m1', 'm2', 'm3', 'm4']);
});

test('ticket.updated merges only the changed fields', () => {
  const m = modelFromSnapshot(snapshot(), T0);
  applyDelta(m, delta(6, 'ticket.updated', { status: 'in_progress', version: 4 }), T0);
  eq(m.ticket.status, 'in_progress');
  eq(m.ticket.version, 4);
  eq(m.ticket.priority, 'high', 'untouched field kept');
  eq(m.ticket.subject, 'VPN drops');
});

test('session.status sets the session and keeps details of the same session', () => {
  const m = modelFromSnapshot(snapshot(), T0);
  applyDelta(m, delta(6, 'session.status', { session: 's1', status: 'awaiting_consent', expires_at: '2026-11-29T07:32:00.000Z' }), T0);
  eq(m.session.id, 's1');
  eq(m.session.status, 'awaiting_consent');
  applyDelta(m, delta(7, 'session.status', { session: 's1', status: 'active' }), T0);
  eq(m.session.status, 'active');
  eq(m.session.expires_at, '2026-11-29T07:32:00.000Z', 'same session keeps earlier fields');
  applyDelta(m, delta(8, 'session.status', { session: 's2', status: 'denied' }), T0);
  eq(m.session.id, 's2');
  eq(m.session.expires_at, undefined, 'a new session starts clean');
});

test('summary.updated and time.updated replace their sections', () => {
  const m = modelFromSnapshot(snapshot(), T0);
  applyDelta(m, delta(6, 'summary.updated', { text: 'S', model: 'nexie', at: '2026-11-29T07:30:00.000Z', covers: 5 }), T0);
  eq(m.summary.text, 'S');
  eq(m.summary.covers, 5);
  const time = { active: { technician: { id: 'tech-ana', name: 'Ana' }, started_at: '2026-11-29T07:29:00.000Z' }, entries: [], total: 0 };
  applyDelta(m, delta(7, 'time.updated', time), T0);
  eq(m.time.active.technician.id, 'tech-ana');
  eq(m.seq, 7);
});

test('sla.breached marks the target breached', () => {
  const m = modelFromSnapshot(snapshot(), T0);
  applyDelta(m, delta(6, 'sla.breached', { target: 'response', due_at: '2026-11-29T07:20:00.000Z' }), T0);
  eq(m.sla.response.breached, true);
  assert(m.sla.response.remaining <= 0, 'remaining not positive once breached');
  applyDelta(m, delta(7, 'sla.breached', { target: 'resolution', due_at: '2026-11-29T07:29:00.000Z' }), T0);
  eq(m.sla.resolution.breached, true, 'a stopped clock can be marked breached too');
  eq(m.seq, 7);
});

test('sla.tick replaces the SLA and counts down locally; a paused clock stays', () => {
  const m = modelFromSnapshot(snapshot(), T0);
  const tick = { response: { due_at: null, remaining: 600, breached: false, paused: false }, resolution: { due_at: null, remaining: 7200, breached: false, paused: true } };
  eq(applyDelta(m, delta(null, 'sla.tick', tick), T0 + 1000).outcome, 'ephemeral');
  eq(m.seq, 5, 'ephemeral deltas leave seq alone');
  eq(slaRemainingSeconds(m.sla.response, T0 + 1000), 600);
  eq(slaRemainingSeconds(m.sla.response, T0 + 61000), 540);
  eq(slaRemainingSeconds(m.sla.resolution, T0 + 61000), 7200, 'paused');
  eq(slaRemainingSeconds(m.sla.response, T0 + 701000), -100, 'negative once overdue');
  eq(slaRemainingSeconds(null, T0), null);
});

test('asset.telemetry updates the linked asset only', () => {
  const m = modelFromSnapshot(snapshot(), T0);
  applyDelta(m, delta(null, 'asset.telemetry', { asset: { id: 'asset-1', name: 'ANA-LAPTOP' }, cpu: 12, ram: 40, disk: 70, at: '2026-11-29T07:30:00.000Z' }), T0);
  eq([m.asset.telemetry.cpu, m.asset.telemetry.ram, m.asset.telemetry.disk], [12, 40, 70]);
  eq(m.asset.name, 'ANA-LAPTOP', 'identity kept');
  applyDelta(m, delta(null, 'asset.telemetry', { asset: { id: 'asset-9', name: 'OTHER-PC' }, cpu: 99, ram: 99, disk: 99 }), T0);
  eq(m.asset.telemetry.cpu, 12, 'another asset is ignored');
});

test('agent.status flips the linked asset\'s badge only', () => {
  const m = modelFromSnapshot(snapshot(), T0);
  const before = m.asset;
  eq(applyDelta(m, delta(null, 'agent.status', { asset: { id: 'asset-1', name: 'ANA-LAPTOP' }, online: true }), T0).outcome, 'ephemeral');
  eq(m.asset.agent_online, true);
  eq(m.asset.name, 'ANA-LAPTOP', 'identity kept');
  if (m.asset === before) throw new Error('the asset object is replaced, so the card re-renders');
  applyDelta(m, delta(null, 'agent.status', { asset: { id: 'asset-1', name: 'ANA-LAPTOP' }, online: false }), T0);
  eq(m.asset.agent_online, false);
  applyDelta(m, delta(null, 'agent.status', { asset: { id: 'asset-9', name: 'OTHER-PC' }, online: true }), T0);
  eq(m.asset.agent_online, false, 'another asset is ignored');
});

function fakeStorage({ refuse = false } = {}) {
  const map = new Map();
  return {
    get length() { return map.size; },
    key: (i) => [...map.keys()][i] ?? null,
    getItem: (k) => (map.has(k) ? map.get(k) : null),
    setItem: (k, v) => { if (refuse) throw new Error('QuotaExceededError'); map.set(k, String(v)); },
    removeItem: (k) => { map.delete(k); },
    map,
  };
}

test('drafts are kept per technician, ticket and mode, and blank text removes one', () => {
  const storage = fakeStorage();
  const ana = new DraftStore(storage, 'demo/tech-ana');
  ana.save('T-1', 'reply', 'Hi Maria');
  ana.save('T-1', 'note', 'checked the VPN logs');
  ana.rememberMode('T-1', 'note');
  const reloaded = new DraftStore(storage, 'demo/tech-ana');
  eq([reloaded.body('T-1', 'reply'), reloaded.body('T-1', 'note'), reloaded.lastMode('T-1')], ['Hi Maria', 'checked the VPN logs', 'note']);
  eq(new DraftStore(storage, 'demo/tech-ben').body('T-1', 'reply'), '', 'another technician sees none');
  eq(reloaded.body('T-2', 'reply'), '', 'another ticket has none');
  reloaded.clear('T-1', 'note');
  reloaded.save('T-1', 'reply', '   ');
  eq([reloaded.body('T-1', 'note'), reloaded.body('T-1', 'reply')], ['', '']);
  reloaded.save('T-1', 'reply', 'again');
  reloaded.clearAll();
  eq([...storage.map.keys()].filter((k) => k.includes('tech-ana')), [], 'sign-out forgets them');
});

test('drafts fall back to memory where the storage refuses writes', () => {
  const drafts = new DraftStore(fakeStorage({ refuse: true }), 'demo/tech-ana');
  drafts.save('T-1', 'note', 'kept for this page');
  eq(drafts.body('T-1', 'note'), 'kept for this page');
  drafts.clear('T-1', 'note');
  eq(drafts.body('T-1', 'note'), '');
  eq(new DraftStore(null).body('T-1', 'reply'), '', 'no storage at all');
});

test('SLA card: a response after its due time reads breached, answered N late, not met', () => {
  const targets = { response: { due_at: '2026-11-29T08:00:00.000Z', breached: true }, resolution: { due_at: '2026-11-29T15:00:00.000Z', breached: false } };
  const m = modelFromSnapshot(snapshot({ sla: { response: null, resolution: { due_at: '2026-11-29T15:00:00.000Z', remaining: 20000, breached: false, paused: false }, targets } }), T0);
  m.ticket.first_response_at = '2026-11-29T08:12:30.000Z';
  const late = slaReading(m, 'response', T0);
  eq([late.state, late.label, late.text], ['breached', 'Breached', 'Answered 12m 30s late']);
  m.ticket.first_response_at = '2026-11-29T07:40:00.000Z';
  m.sla.targets = { ...targets, response: { ...targets.response, breached: false } };
  const met = slaReading(m, 'response', T0);
  eq([met.state, met.label, met.text], ['met', 'Met', 'Responded']);
  eq(slaReading(m, 'resolution', T0).state, 'ok', 'a running clock as before');
});

test('SLA card: a resolved ticket\'s clocks read resolved, and breached if they were', () => {
  const targets = { response: { due_at: '2026-11-29T08:00:00.000Z', breached: false }, resolution: { due_at: '2026-11-29T09:00:00.000Z', breached: true } };
  const m = modelFromSnapshot(snapshot({ sla: { response: null, resolution: null, targets } }), T0);
  m.ticket.status = 'resolved';
  m.ticket.first_response_at = '2026-11-29T07:45:00.000Z';
  const resolution = slaReading(m, 'resolution', T0);
  eq([resolution.state, resolution.label, resolution.text], ['breached', 'Breached', 'Resolved after the due time']);
  m.sla.targets = { ...targets, resolution: { ...targets.resolution, breached: false } };
  eq([slaReading(m, 'resolution', T0).state, slaReading(m, 'resolution', T0).text], ['met', 'Resolved']);
  eq(slaReading(m, 'response', T0).state, 'met');
  m.ticket.first_response_at = null;
  m.ticket.status = 'closed';
  eq(slaReading(m, 'response', T0).text, 'Closed without a first response');
  // An sla.tick keeps the targets.
  applyDelta(m, delta(null, 'sla.tick', { response: null, resolution: null, targets }), T0);
  eq(m.sla.targets.resolution.breached, true);
  // Without targets (an older server) a stopped clock still reads as before.
  const old = modelFromSnapshot(snapshot({ sla: { response: null, resolution: null } }), T0);
  eq(slaReading(old, 'resolution', T0).text, 'Not running');
});

test('presence.updated replaces the viewers', () => {
  const m = modelFromSnapshot(snapshot(), T0);
  applyDelta(m, delta(null, 'presence.updated', { viewers: [{ id: 'tech-ben', name: 'Ben', composing: 'reply' }] }), T0);
  eq(m.viewers, [{ id: 'tech-ben', name: 'Ben', composing: 'reply' }]);
});

test('an unknown durable kind still advances seq (no false gap later)', () => {
  const m = modelFromSnapshot(snapshot(), T0);
  eq(applyDelta(m, delta(6, 'something.new', { x: 1 }), T0).outcome, 'applied');
  eq(m.seq, 6);
  eq(applyDelta(m, delta(7, 'message.created', message('m3')), T0).outcome, 'applied');
});

test('history: a page goes in front once, oldest first; overlaps and newer ones are skipped', () => {
  const msg = (seq) => ({ id: `M-${seq}`, seq, channel: 'internal_note', body: `m${seq}` });
  const snapshot = { ticket: 'T-1', seq: 120, state: { messages: Array.from({ length: 50 }, (_, i) => msg(71 + i)) } };
  const model = modelFromSnapshot(snapshot);
  assert(model.hasOlder, 'a full snapshot may have older messages');
  eq(modelFromSnapshot({ seq: 3, state: { messages: [msg(1), msg(2)] } }).hasOlder, false, 'a short snapshot is all of them');
  // A page answered out of order, overlapping what is held, with a repeat.
  const page = [msg(70), msg(69), msg(71), msg(120), msg(69)];
  eq(prependHistory(model, page, true), 2, 'only the two older ones are new');
  eq(model.messages.slice(0, 3).map((m) => m.seq), [69, 70, 71]);
  eq(model.messages.length, 52);
  assert(model.hasOlder, 'more: true keeps loading');
  eq(prependHistory(model, [msg(69)], true), 0, 'nothing new');
  eq(model.hasOlder, false, 'a page that adds nothing stops the loading');
});

test('stale: missed messages are extracted, recorded once and highlighted', () => {
  const err = { code: 'stale', message: '1 new message', missed: [message('m9', 'customer', { at: '2026-11-29T07:00:00.500Z' })] };
  const missed = missedMessages(err);
  eq(missed.length, 1);
  eq(missedMessages({ code: 'no_email_account', missed: [message('x')] }), [], 'only stale has missed');
  eq(missedMessages(null), []);
  const m = modelFromSnapshot(snapshot(), T0);
  eq(recordMissed(m, missed), 1);
  eq(m.messages.map((x) => x.id), ['m1', 'm9', 'm2'], 'inserted in time order');
  assert(m.missedIds.has('m9'));
  eq(m.seq, 5, 'seq untouched: the delta still comes');
  // Its delta arriving later is not a second copy.
  applyDelta(m, delta(6, 'message.created', message('m9')), T0);
  eq(m.messages.filter((x) => x.id === 'm9').length, 1);
  eq(m.seq, 6);
  eq(recordMissed(m, missed), 0, 'recording again adds nothing');
});

test('summary: N new messages since covers, by seq, with a time fallback', () => {
  const m = modelFromSnapshot(snapshot(), T0);
  applyDelta(m, delta(6, 'message.created', message('m3')), T0);
  applyDelta(m, delta(7, 'message.created', message('m4', 'internal_note')), T0);
  applyDelta(m, delta(8, 'message.created', message('m5', 'system')), T0);
  eq(newMessagesSinceSummary({ text: 's', covers: 6, at: '2026-11-29T07:30:00.000Z' }, m.messages), 1, 'm4 only (system excluded)');
  eq(newMessagesSinceSummary({ text: 's', covers: 5 }, m.messages), 2);
  eq(newMessagesSinceSummary({ text: 's', covers: 8 }, m.messages), 0);
  // covers null: count by time against the summary's at.
  eq(newMessagesSinceSummary({ text: 's', covers: null, at: '2026-11-29T07:00:00.500Z' }, m.messages), 2);
  eq(newMessagesSinceSummary(null, m.messages), null);
});

test('backoff: full jitter within [0, min(cap, base*2^n)) and capped at 10 s', () => {
  const zero = () => 0;
  const almostOne = () => 0.999999;
  for (let n = 0; n < 25; n += 1) {
    const ceiling = Math.min(10000, 250 * 2 ** n);
    eq(backoffDelay(n, { random: zero }), 0);
    const high = backoffDelay(n, { random: almostOne });
    assert(high < ceiling && high >= ceiling - 1, `attempt ${n}: ${high} vs ceiling ${ceiling}`);
  }
  eq(backoffDelay(0, { random: almostOne }), 249);
  eq(backoffDelay(3, { random: () => 0.5 }), 1000);
  eq(backoffDelay(100, { random: almostOne }), 9999, 'huge attempt stays capped');
  eq(backoffDelay(-3, { random: almostOne }), 249, 'negative attempt treated as 0');
  const samples = Array.from({ length: 400 }, () => backoffDelay(6));
  assert(samples.every((d) => d >= 0 && d < 10000), 'every sample in range');
  assert(new Set(samples).size > 100, 'jitter spreads the delays');
  const mean = samples.reduce((a, b) => a + b, 0) / samples.length;
  assert(mean > 3500 && mean < 6500, `mean ${mean} near half the ceiling`);
});

test('liveness budget: 2.5 heartbeats of silence, probe timeout bounded', () => {
  eq(livenessBudget(20), { silenceMs: 50000, probeTimeoutMs: 20000 });
  eq(livenessBudget(2), { silenceMs: 5000, probeTimeoutMs: 5000 });
  eq(livenessBudget(120), { silenceMs: 300000, probeTimeoutMs: 30000 });
  eq(livenessBudget(undefined), { silenceMs: 75000, probeTimeoutMs: 30000 });
  eq(livenessBudget(-1).silenceMs, 75000);
});

test('timer and formatting helpers', () => {
  eq(timerElapsedSeconds({ started_at: '2026-11-29T07:29:00.000Z' }, T0), 60);
  eq(timerElapsedSeconds({ started_at: '2026-11-29T07:29:00.000Z' }, T0, 5000), 65, 'server clock offset applied');
  eq(timerElapsedSeconds(null, T0), null);
  eq(formatDuration(45), '45s');
  eq(formatDuration(843), '14m 03s');
  eq(formatDuration(-7500), '2h 05m');
  eq(formatDuration(90000), '1d 1h');
  eq(formatClock(3723), '1:02:03');
});

test('makeId: prefixed and unique', () => {
  const ids = new Set(Array.from({ length: 500 }, () => makeId('cmd')));
  eq(ids.size, 500);
  assert([...ids].every((id) => /^cmd-[0-9a-f]{24}$/.test(id)));
});

// ------------------------------------------------- client with fake socket

class FakeClock {
  constructor() {
    this.now = T0;
    this.nextId = 1;
    this.timers = new Map();
  }
  api() {
    return {
      setTimeout: (fn, ms) => this.add(fn, ms, false),
      clearTimeout: (id) => this.timers.delete(id),
      setInterval: (fn, ms) => this.add(fn, ms, true),
      clearInterval: (id) => this.timers.delete(id),
    };
  }
  add(fn, ms, repeat) {
    const id = this.nextId++;
    this.timers.set(id, { fn, at: this.now + Math.max(0, ms), ms, repeat });
    return id;
  }
  advance(ms) {
    const end = this.now + ms;
    for (;;) {
      let next = null;
      for (const [id, t] of this.timers) if (t.at <= end && (!next || t.at < next[1].at)) next = [id, t];
      if (!next) break;
      const [id, t] = next;
      this.now = t.at;
      if (t.repeat) t.at += t.ms;
      else this.timers.delete(id);
      t.fn();
    }
    this.now = end;
  }
}

class FakeSocket {
  static instances = [];
  constructor(url) {
    this.url = url;
    this.readyState = 0;
    this.sent = [];
    this.closedWith = null;
    FakeSocket.instances.push(this);
  }
  send(text) {
    this.sent.push(JSON.parse(text));
  }
  close(code) {
    this.closedWith = code ?? 1005;
    this.readyState = 3;
  }
  // server side helpers
  serverOpen() {
    this.readyState = 1;
    this.onopen?.({});
  }
  serverSend(frame) {
    this.onmessage?.({ data: JSON.stringify(frame) });
  }
  serverClose(code = 1006) {
    this.readyState = 3;
    this.onclose?.({ code, reason: '' });
  }
  last(type) {
    return [...this.sent].reverse().find((f) => f.type === type);
  }
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

async function connected(options = {}) {
  FakeSocket.instances = [];
  const clock = new FakeClock();
  const client = new PeekClient({
    url: 'ws://test/v1/ws',
    token: 'tok',
    WebSocketImpl: FakeSocket,
    timers: clock.api(),
    now: () => clock.now,
    random: () => 0.5,
    ...options,
  });
  const welcome = client.connect();
  await tick();
  const ws = FakeSocket.instances[0];
  ws.serverOpen();
  ws.serverSend({ type: 'welcome', user: { id: 'tech-ana', name: 'Ana Ruiz', tenant: 'demo' }, heartbeat: 20 });
  await welcome;
  return { client, clock, ws };
}

test('client: hello first, subscribe after welcome, snapshot builds the view', async () => {
  const { client, ws } = await connected();
  eq(ws.sent[0], { type: 'hello', token: 'tok' });
  const changes = [];
  const view = client.subscribe('T-1001', { onChange: (_v, why) => changes.push(why) });
  const sub = ws.last('subscribe');
  eq([sub.ticket, sub.since], ['T-1001', undefined]);
  ws.serverSend({ ...snapshot(), id: sub.id });
  eq(view.seq, 5);
  eq(view.status, 'live');
  eq(changes, ['snapshot']);
  client.close();
});

test('client: a gap resumes with since = last applied seq; replay dedups', async () => {
  const { client, ws } = await connected();
  const view = client.subscribe('T-1001');
  ws.serverSend({ ...snapshot(), id: ws.last('subscribe').id });
  ws.serverSend(delta(6, 'message.created', message('m3')));
  ws.serverSend(delta(8, 'message.created', message('m5')));
  const resume = ws.last('subscribe');
  eq(resume.since, 6, 'resume from the last applied seq');
  eq(view.status, 'resyncing');
  ws.serverSend(delta(9, 'message.created', message('m6'))); // still past the gap: dropped, no second resume
  eq(ws.sent.filter((f) => f.type === 'subscribe').length, 2);
  ws.serverSend(delta(6, 'message.created', message('m3'))); // overlap: duplicate
  ws.serverSend(delta(7, 'message.created', message('m4')));
  ws.serverSend(delta(8, 'message.created', message('m5')));
  ws.serverSend(delta(9, 'message.created', message('m6')));
  ws.serverSend({ type: 'subscribed', id: resume.id, ticket: 'T-1001', seq: 9 });
  eq(view.status, 'live');
  eq(view.model.messages.map((m) => m.id), ['m1', 'm2', 'm3', 'm4', 'm5', 'm6']);
  eq(view.stats.duplicates, 1);
  client.close();
});

test('client: a subscribe refused as busy is retried with backoff; after 5 refusals the view shows the error', async () => {
  const { client, clock, ws } = await connected();
  const errors = [];
  const view = client.subscribe('T-1001', { onError: (_v, err) => errors.push(err.code) });
  const subscribes = () => ws.sent.filter((f) => f.type === 'subscribe');
  const busy = (frame) => ws.serverSend({ type: 'error', id: frame.id, code: 'rate_limited', message: 'The server is busy and did not take this; nothing changed. Send it again in a moment.' });
  busy(ws.last('subscribe'));
  eq(view.status, 'subscribing', 'a busy answer is not shown as an error');
  eq(subscribes().length, 1, 'not resent at once');
  clock.advance(250); // random 0.5 of the first ceiling (500 ms)
  eq(subscribes().length, 2, 'resent after the backoff');
  ws.serverSend({ ...snapshot(), id: ws.last('subscribe').id });
  eq(view.status, 'live');
  eq(errors, []);

  // A resume refused as busy keeps the model and resumes with the same since.
  ws.serverSend(delta(7, 'message.created', message('m4')));
  const resume = ws.last('subscribe');
  eq(resume.since, 5);
  busy(resume);
  eq([view.status, view.seq], ['resyncing', 5]);
  clock.advance(250);
  eq(ws.last('subscribe').since, 5);

  // Refused every time: five retries, then the error is shown.
  for (let i = 0; i < 5; i++) {
    busy(ws.last('subscribe'));
    clock.advance(20000);
  }
  const before = subscribes().length;
  busy(ws.last('subscribe'));
  clock.advance(30000);
  eq(subscribes().length, before, 'no sixth retry');
  eq(view.status, 'error');
  eq(errors, ['rate_limited']);

  // Another error code is shown at once, without a retry.
  const other = client.subscribe('T-404');
  ws.serverSend({ type: 'error', id: ws.last('subscribe').id, code: 'not_found', message: 'No ticket T-404 is visible to you.' });
  eq(other.status, 'error');
  client.close();
  eq(clock.timers.size, 0, 'no retry timer left behind');
});

test('client: commands resolve on result and reject with the server error', async () => {
  const { client, ws } = await connected();
  const view = client.subscribe('T-1001');
  ws.serverSend({ ...snapshot(), id: ws.last('subscribe').id });
  const ok = view.command('note', { body: 'hi' }, { seen: 5 });
  const cmd = ws.last('command');
  eq([cmd.op, cmd.args.body, cmd.seen, cmd.ticket], ['note', 'hi', 5, 'T-1001']);
  assert(/^cmd-/.test(cmd.id));
  ws.serverSend({ type: 'result', id: cmd.id, ok: true, seq: 6 });
  eq((await ok).seq, 6);

  const failing = view.command('reply', { body: 'x' }, { ifVersion: 3 });
  const cmd2 = ws.last('command');
  eq(cmd2.if_version, 3);
  ws.serverSend({ type: 'error', id: cmd2.id, code: 'no_email_account', message: 'No email account is configured' });
  let caught = null;
  try {
    await failing;
  } catch (err) {
    caught = err;
  }
  assert(caught instanceof PeekError, 'rejects with PeekError');
  eq([caught.code, caught.message], ['no_email_account', 'No email account is configured']);

  const stale = view.command('reply', { body: 'y' }, { seen: 5 });
  const cmd3 = ws.last('command');
  ws.serverSend({ type: 'error', id: cmd3.id, code: 'stale', message: '1 new message', missed: [message('m7')] });
  caught = null;
  try {
    await stale;
  } catch (err) {
    caught = err;
  }
  eq(caught.code, 'stale');
  eq(caught.missed.map((m) => m.id), ['m7']);
  assert(view.model.missedIds.has('m7'), 'missed recorded on the view');
  client.close();
});

test('client: reconnect backs off, re-hellos, resumes with since and resends with the same id', async () => {
  const statuses = [];
  const { client, clock, ws } = await connected({ onStatus: (s) => statuses.push(s) });
  const view = client.subscribe('T-1001');
  ws.serverSend({ ...snapshot(), id: ws.last('subscribe').id });
  ws.serverSend(delta(6, 'message.created', message('m3')));
  const pending = view.command('note', { body: 'in flight' });
  const firstId = ws.last('command').id;
  ws.serverClose(1006);
  eq(view.status, 'offline');
  const reconnecting = statuses[statuses.length - 1];
  eq(reconnecting.state, 'reconnecting');
  eq(reconnecting.delayMs, 125, 'attempt 0 with random 0.5: half of 250');
  eq(FakeSocket.instances.length, 1, 'waits before reconnecting');
  clock.advance(125);
  await tick();
  eq(FakeSocket.instances.length, 2);
  const ws2 = FakeSocket.instances[1];
  ws2.serverOpen();
  eq(ws2.sent[0].type, 'hello', 'hello first again');
  ws2.serverSend({ type: 'welcome', user: { id: 'tech-ana', name: 'Ana Ruiz', tenant: 'demo' }, heartbeat: 20 });
  const resume = ws2.last('subscribe');
  eq([resume.ticket, resume.since], ['T-1001', 6]);
  const resent = ws2.last('command');
  eq(resent.id, firstId, 'same id so the server can answer idempotently');
  ws2.serverSend(delta(7, 'message.created', message('m4')));
  ws2.serverSend({ type: 'subscribed', id: resume.id, ticket: 'T-1001', seq: 7 });
  ws2.serverSend({ type: 'result', id: firstId, ok: true, seq: 7 });
  eq((await pending).seq, 7);
  eq(view.model.messages.length, 4);
  eq(view.status, 'live');
  client.close();
});

test('client: backoff grows with consecutive failures and resets after welcome', async () => {
  const statuses = [];
  const { client, clock, ws } = await connected({ onStatus: (s) => statuses.push(s), random: () => 0.999 });
  ws.serverClose(1006);
  const delays = [];
  for (let i = 0; i < 8; i += 1) {
    delays.push(statuses[statuses.length - 1].delayMs);
    clock.advance(10000);
    await tick();
    FakeSocket.instances[FakeSocket.instances.length - 1].serverClose(1006); // fails before open
  }
  eq(delays, [249, 499, 999, 1998, 3996, 7992, 9990, 9990]);
  clock.advance(10000);
  await tick();
  const wsN = FakeSocket.instances[FakeSocket.instances.length - 1];
  wsN.serverOpen();
  wsN.serverSend({ type: 'welcome', user: { id: 'tech-ana', name: 'Ana' }, heartbeat: 20 });
  wsN.serverClose(1006);
  eq(statuses[statuses.length - 1].delayMs, 249, 'back to the first step');
  client.close();
});

test('client: silence past 2.5 heartbeats sends a resume probe; no answer reconnects', async () => {
  const { client, clock, ws } = await connected();
  client.subscribe('T-1001');
  ws.serverSend({ ...snapshot(), id: ws.last('subscribe').id });
  const before = ws.sent.length;
  clock.advance(49000);
  eq(ws.sent.length, before, 'quiet but within budget: nothing sent');
  clock.advance(2000);
  const probe = ws.last('subscribe');
  eq(ws.sent.length, before + 1);
  eq([probe.ticket, probe.since], ['T-1001', 5]);
  ws.serverSend({ type: 'subscribed', id: probe.id, ticket: 'T-1001', seq: 5 });
  clock.advance(21000);
  eq(ws.closedWith, null, 'answered probe keeps the connection');
  clock.advance(51000); // silence again -> probe; then no answer
  clock.advance(21000);
  assert(ws.closedWith !== null, 'unanswered probe closes the socket');
  eq(client.state, 'reconnecting');
  client.close();
});

test('client: close() clears every timer, closes the socket, rejects pending, never reconnects', async () => {
  const { client, clock, ws } = await connected();
  const view = client.subscribe('T-1001');
  ws.serverSend({ ...snapshot(), id: ws.last('subscribe').id });
  const pending = view.command('note', { body: 'x' });
  client.close();
  eq(clock.timers.size, 0, 'no timers left');
  eq(ws.closedWith, 1000);
  let code = null;
  try {
    await pending;
  } catch (err) {
    code = err.code;
  }
  eq(code, 'closed');
  clock.advance(60000);
  eq(FakeSocket.instances.length, 1, 'no reconnect after close');
  eq(view.status, 'closed');
});

test('client: unauthorized stops reconnecting and rejects connect()', async () => {
  FakeSocket.instances = [];
  const clock = new FakeClock();
  const statuses = [];
  const client = new PeekClient({ url: 'ws://x', token: 'bad', WebSocketImpl: FakeSocket, timers: clock.api(), now: () => clock.now, onStatus: (s) => statuses.push(s.state) });
  const connecting = client.connect();
  await tick();
  const ws = FakeSocket.instances[0];
  ws.serverOpen();
  ws.serverSend({ type: 'error', code: 'unauthorized', message: 'The token was refused' });
  let code = null;
  try {
    await connecting;
  } catch (err) {
    code = err.code;
  }
  eq(code, 'unauthorized');
  eq(statuses[statuses.length - 1], 'unauthorized');
  clock.advance(60000);
  eq(FakeSocket.instances.length, 1, 'no retry with a refused static token');
  client.close();
});

test('client: dropForTest holds the connection down for the given time', async () => {
  const { client, clock, ws } = await connected();
  client.subscribe('T-1001');
  ws.serverSend({ ...snapshot(), id: ws.last('subscribe').id });
  client.dropForTest(3000);
  assert(ws.closedWith !== null, 'socket closed');
  clock.advance(2900);
  await tick();
  eq(FakeSocket.instances.length, 1, 'still down');
  clock.advance(200);
  await tick();
  eq(FakeSocket.instances.length, 2, 'back after the hold');
  client.close();
});

test('client: unsubscribe sends unsubscribe and drops later deltas', async () => {
  const { client, ws } = await connected();
  const view = client.subscribe('T-1001');
  ws.serverSend({ ...snapshot(), id: ws.last('subscribe').id });
  client.unsubscribe('T-1001');
  eq(ws.last('unsubscribe'), { type: 'unsubscribe', ticket: 'T-1001' });
  ws.serverSend(delta(6, 'message.created', message('m3')));
  eq(view.model.messages.length, 2);
  eq(view.status, 'closed');
  client.composing('T-1001', 'reply');
  eq(ws.last('composing'), { type: 'composing', ticket: 'T-1001', mode: 'reply' });
  client.close();
});

test('client: with getToken, refreshes at 80% of the time left before exp; a refused refresh keeps the connection', async () => {
  FakeSocket.instances = [];
  const clock = new FakeClock();
  let issued = 0;
  const client = new PeekClient({
    url: 'ws://x', getToken: async () => `tok-${++issued}`, WebSocketImpl: FakeSocket, timers: clock.api(), now: () => clock.now, random: () => 0.5,
  });
  const connecting = client.connect();
  await tick();
  const ws = FakeSocket.instances[0];
  ws.serverOpen();
  eq(ws.sent[0], { type: 'hello', token: 'tok-1' });
  const t0 = clock.now / 1000;
  ws.serverSend({ type: 'welcome', user: { id: 'tech-ana', name: 'Ana Ruiz', tenant: 'demo' }, heartbeat: 3600, exp: t0 + 100 });
  await connecting;
  eq(client.expiresAt, t0 + 100);
  clock.advance(79000);
  await tick();
  eq(ws.last('refresh'), undefined, 'not before 80% of the lifetime');
  clock.advance(1500);
  await tick();
  const first = ws.last('refresh');
  eq([first?.token, typeof first?.id], ['tok-2', 'string'], 'a refresh with a fresh token at 80%');
  ws.serverSend({ type: 'refreshed', id: first.id, exp: t0 + 200 });
  eq(client.expiresAt, t0 + 200);
  // 119.5 s left at the answer: the next refresh comes 95.6 s later.
  clock.advance(95000);
  await tick();
  eq(ws.sent.filter((f) => f.type === 'refresh').length, 1, 'one refresh per lifetime');
  clock.advance(1000);
  await tick();
  const second = ws.last('refresh');
  eq(second.token, 'tok-3');
  // Refused: the connection stays open on its old token, and the client tries again.
  ws.serverSend({ type: 'error', id: second.id, code: 'unauthorized', message: 'That token is not for tech-ana of demo.' });
  eq([client.state, ws.closedWith, FakeSocket.instances.length], ['open', null, 1], 'a refused refresh does not drop the connection');
  clock.advance(12000);
  await tick();
  eq(ws.last('refresh').token, 'tok-4', 'tried again before the old token runs out');
  client.close();
  eq(clock.timers.size, 0, 'close clears the refresh timer');
});

test('client: with a fixed token nothing is refreshed', async () => {
  const { client, clock, ws } = await connected();
  ws.serverSend({ type: 'welcome', user: { id: 'tech-ana', name: 'Ana Ruiz', tenant: 'demo' }, heartbeat: 20, exp: clock.now / 1000 + 10 });
  clock.advance(20000);
  await tick();
  eq(ws.last('refresh'), undefined);
  client.close();
});

// ------------------------------------------------------------------ runner

// -- the live queue's pure helpers (queue-view.js) -----------------------------

function queueRow(number, fields = {}) {
  return { id: `T-${number}`, number, priority: 'normal', updated_at: '2026-11-29T07:00:00.000Z', sla: { response: null, resolution: null }, ...fields };
}

test('queue: rows sort like the server (SLA due, priority, updated; ties by number)', () => {
  const early = queueRow(3, { sla: { response: { due_at: '2026-11-29T08:00:00.000Z', paused: false }, resolution: null } });
  const paused = queueRow(1, { sla: { response: null, resolution: { due_at: '2026-11-29T07:30:00.000Z', paused: true, remaining: 60 } } });
  const urgent = queueRow(4, { priority: 'urgent', updated_at: '2026-11-29T07:10:00.000Z' });
  const plain = queueRow(2);
  eq(dueKey(paused), Infinity, 'a paused clock is not running');
  const by = (sort) => [plain, urgent, paused, early].sort((a, b) => compareRows(sort, a, b)).map((r) => r.number);
  eq(JSON.stringify(by('sla')), JSON.stringify([3, 1, 2, 4]));
  eq(JSON.stringify(by('priority')), JSON.stringify([4, 3, 1, 2]));
  eq(JSON.stringify(by('updated')), JSON.stringify([4, 3, 2, 1]));
});

test('queue: the SLA cell counts down from due_at and reads breached past it', () => {
  const now = Date.parse('2026-11-29T07:00:00.000Z');
  const row = queueRow(1, { sla_state: 'breaching', sla: { response: { due_at: '2026-11-29T07:05:00.000Z', paused: false, breached: false }, resolution: null } });
  const soon = slaCell(row, now);
  eq(soon.state, 'breaching');
  eq(soon.text, '5m 00s left (response)');
  const late = slaCell(row, now + 6 * 60 * 1000);
  eq(late.state, 'breached');
  eq(late.text, '1m 00s over (response)');
  eq(slaCell(queueRow(2), now).state, 'none');
});

test('console: ANSI colours become runs, other escapes and CRs go, a split sequence waits', () => {
  const state = {};
  const runs = ansiRuns('\u001b[32m$\u001b[0m echo hi\r\n\u001b[2Kdone\u001b[1;3', state);
  eq(runs.map((r) => [r.text, r.fg, r.bold]), [['$', 'green', false], [' echo hi\ndone', null, false]]);
  eq(state.carry, '\u001b[1;3');
  const next = ansiRuns('1mred\u001b[mplain', state);
  eq(next.map((r) => [r.text, r.fg, r.bold]), [['red', 'red', true], ['plain', null, false]]);
  eq(stripAnsi('\u001b[31mrefused\u001b[0m: x\u0007'), 'refused: x');
});

test('session.output is ephemeral: no seq needed, the model unchanged', () => {
  const model = modelFromSnapshot(snapshot(), T0);
  const before = model.seq;
  eq(applyDelta(model, { kind: 'session.output', data: { session: 'S-1', data: 'hi' } }, T0).outcome, 'ephemeral');
  eq(model.seq, before);
});

async function run() {
  const log = document.getElementById('log');
  let passed = 0;
  let failed = 0;
  for (const { name, fn } of tests) {
    const li = document.createElement('li');
    try {
      await fn();
      passed += 1;
      li.className = 'pass';
      li.textContent = `PASS ${name}`;
    } catch (err) {
      failed += 1;
      li.className = 'fail';
      li.textContent = `FAIL ${name}`;
      const pre = document.createElement('pre');
      pre.textContent = err && err.stack ? err.stack : String(err);
      li.append(pre);
    }
    log.append(li);
  }
  const results = document.getElementById('results');
  results.textContent = `${passed} passed, ${failed} failed`;
  results.dataset.passed = String(passed);
  results.dataset.failed = String(failed);
  results.dataset.done = '1';
}

run();
