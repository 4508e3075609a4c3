// Pure logic of the Peek Live client: the local ticket model, how deltas are
// applied to it, gap detection, reconnect backoff and the liveness budget.
//
// Nothing in here touches a socket, a timer or the clock: time comes in as an
// argument (`nowMs`) and randomness as a function, so every rule can be unit
// tested in a browser page without a server (see test/model.test.js).

/** Durable delta kinds: they carry a per-ticket `seq` that grows by exactly 1. */
export const DURABLE_KINDS = Object.freeze([
  'message.created',
  'ticket.updated',
  'session.status',
  'summary.updated',
  'time.updated',
  'sla.breached',
]);

/** Ephemeral delta kinds: no `seq`, applied as "latest value wins". */
export const EPHEMERAL_KINDS = Object.freeze([
  'sla.tick',
  'asset.telemetry',
  'presence.updated',
  'agent.status',
  'asset.posture',
  'summary.pending',
  'session.output',
]);

/** Message kinds that count as conversation (not system events). */
const CONVERSATION_CHANNELS = new Set(['customer', 'technician', 'internal_note']);

// ---------------------------------------------------------------------------
// Snapshot -> model

/**
 * Builds the local model of one ticket from a `snapshot` frame.
 *
 * The snapshot's `state` is the whole Peek. The model keeps the same field
 * names so a renderer can read either, plus bookkeeping the renderer needs
 * for local countdowns: when each SLA clock's `remaining` arrived
 * (`sla.<target>.receivedAt`) and the estimated offset between the server
 * clock and ours (from the `at` of the latest delta).
 *
 * Messages from the snapshot carry their own `seq` when the server includes
 * one; otherwise they are marked with `seq: null` (they are known to be at or
 * before the snapshot's seq).
 */
export function modelFromSnapshot(snapshot, nowMs = 0) {
  const state = snapshot && typeof snapshot.state === 'object' && snapshot.state ? snapshot.state : {};
  const seq = Number.isInteger(snapshot?.seq) ? snapshot.seq : 0;
  const messages = Array.isArray(state.messages) ? state.messages.map((m) => normalizeMessage(m, null)) : [];
  return {
    ticketId: snapshot?.ticket ?? state.ticket?.id ?? null,
    seq,
    snapshotSeq: seq,
    ticket: state.ticket ? { ...state.ticket } : null,
    messages,
    // Whether older messages than the first one held may exist: the snapshot
    // holds the SNAPSHOT_MESSAGES most recent, so a shorter list is all of them.
    hasOlder: messages.length >= SNAPSHOT_MESSAGES && (oldestSeq(messages) ?? 0) > 1,
    sla: stampSla(state.sla, nowMs),
    asset: state.asset ? { ...state.asset } : null,
    session: normalizeSession(state.session),
    summary: state.summary ?? null,
    summaryPending: false,
    time: state.time ?? null,
    related: Array.isArray(state.related) ? state.related : [],
    viewers: Array.isArray(state.viewers) ? state.viewers : [],
    contract: state.contract ?? null,
    clockOffsetMs: 0,
    // Messages a stale command told us about, by id; the UI highlights them.
    missedIds: new Set(),
  };
}

/**
 * SLA clocks count down locally between ticks, so each clock remembers when
 * its `remaining` arrived (`receivedAt`, in the caller's clock).
 */
function stampSla(sla, nowMs) {
  if (!sla || typeof sla !== 'object') return null;
  const stamp = (clock) => (clock && typeof clock === 'object' ? { ...clock, receivedAt: nowMs } : null);
  // `targets` says when each target was due and whether it was missed, also
  // once its clock has stopped (null above).
  const targets = sla.targets && typeof sla.targets === 'object' ? sla.targets : null;
  return { response: stamp(sla.response), resolution: stamp(sla.resolution), targets };
}

/** How many messages a snapshot holds at most (protocol.md §3.5). */
export const SNAPSHOT_MESSAGES = 50;

/** The lowest seq among `messages`, or null when none has one. */
export function oldestSeq(messages) {
  let oldest = null;
  for (const m of messages || []) if (Number.isInteger(m.seq) && (oldest === null || m.seq < oldest)) oldest = m.seq;
  return oldest;
}

/**
 * Puts a `history` page (older messages, oldest first) in front of the
 * model's messages and records whether still older ones exist. A message
 * already held (same id or seq) or not older than the oldest one held is
 * skipped, so a page that overlaps what the live stream delivered never
 * shows a message twice or out of order. Returns how many were added.
 */
export function prependHistory(model, messages, more) {
  const oldest = oldestSeq(model.messages);
  const ids = new Set(model.messages.map((m) => m.id).filter((id) => id != null));
  const older = [];
  for (const raw of Array.isArray(messages) ? messages : []) {
    const m = normalizeMessage(raw, null);
    if (!Number.isInteger(m.seq) || (oldest !== null && m.seq >= oldest)) continue;
    if (m.id != null && ids.has(m.id)) continue;
    if (m.id != null) ids.add(m.id);
    older.push(m);
  }
  older.sort((a, b) => a.seq - b.seq);
  const unique = older.filter((m, i) => i === 0 || m.seq !== older[i - 1].seq);
  model.messages.unshift(...unique);
  // A page that added nothing cannot move `before` on: stop rather than ask again forever.
  model.hasOlder = Boolean(more) && unique.length > 0;
  return unique.length;
}

function normalizeMessage(data, seq) {
  const m = { ...(data || {}) };
  if (!Number.isInteger(m.seq)) m.seq = Number.isInteger(seq) ? seq : null;
  if (!Array.isArray(m.attachments)) m.attachments = [];
  return m;
}

/**
 * The snapshot's `session` and the `session.status` delta name the session id
 * differently (`id` vs `session`); the model always has both.
 */
function normalizeSession(session) {
  if (!session || typeof session !== 'object') return null;
  const id = session.id ?? session.session ?? null;
  return { ...session, id, session: id };
}

// ---------------------------------------------------------------------------
// Delta classification

/**
 * Decides what to do with a delta given the seq the model is at.
 *
 *  - `ephemeral`: no seq (sla.tick, asset.telemetry, presence.updated, agent.status)
 *  - `duplicate`: seq <= current: already applied (a resume may replay it)
 *  - `next`:      seq == current + 1: apply it
 *  - `gap`:       seq > current + 1: something in between was lost; resume
 *  - `invalid`:   a durable kind without an integer seq
 */
export function classifyDelta(currentSeq, delta) {
  const kind = delta?.kind;
  const seq = delta?.seq;
  if (seq === undefined || seq === null) {
    return EPHEMERAL_KINDS.includes(kind) ? 'ephemeral' : 'invalid';
  }
  if (!Number.isInteger(seq)) return 'invalid';
  if (seq <= currentSeq) return 'duplicate';
  if (seq === currentSeq + 1) return 'next';
  return 'gap';
}

/**
 * Applies one delta to the model in place and says what happened.
 *
 * Returns `{outcome}` where outcome is one of `applied` (durable, seq moved
 * on), `ephemeral` (latest value stored), `duplicate` (dropped), `gap` (not
 * applied: the caller must resume from `model.seq`) or `invalid` (dropped).
 * A durable delta of a kind this client does not know still advances `seq`:
 * skipping it would look like a gap forever.
 */
export function applyDelta(model, delta, nowMs = 0) {
  const outcome = classifyDelta(model.seq, delta);
  if (outcome === 'duplicate' || outcome === 'gap' || outcome === 'invalid') return { outcome };
  if (typeof delta.at === 'string') {
    const serverMs = Date.parse(delta.at);
    if (Number.isFinite(serverMs)) model.clockOffsetMs = serverMs - nowMs;
  }
  const data = delta.data && typeof delta.data === 'object' ? delta.data : {};
  if (outcome === 'ephemeral') {
    applyEphemeral(model, delta.kind, data, nowMs);
    return { outcome: 'ephemeral' };
  }
  applyDurable(model, delta.kind, data, delta.seq, nowMs);
  model.seq = delta.seq;
  return { outcome: 'applied' };
}

function applyDurable(model, kind, data, seq, nowMs) {
  switch (kind) {
    case 'message.created': {
      // A message can already be present when a resume overlaps a snapshot.
      if (data.id != null && model.messages.some((m) => m.id === data.id)) return;
      model.messages.push(normalizeMessage(data, seq));
      return;
    }
    case 'ticket.updated': {
      model.ticket = { ...(model.ticket || {}), ...data };
      return;
    }
    case 'session.status': {
      const id = data.session ?? data.id ?? null;
      const previous = model.session && model.session.id === id ? model.session : {};
      model.session = normalizeSession({ ...previous, ...data, id });
      return;
    }
    case 'summary.updated': {
      model.summary = { ...data };
      model.summaryPending = false;
      return;
    }
    case 'time.updated': {
      model.time = { ...data };
      return;
    }
    case 'sla.breached': {
      const target = data.target;
      if (target !== 'response' && target !== 'resolution') return;
      const sla = { ...(model.sla || {}) };
      const clock = { due_at: null, remaining: null, paused: false, receivedAt: nowMs, ...(sla[target] || {}) };
      clock.breached = true;
      if (data.due_at) clock.due_at = data.due_at;
      // Until the next sla.tick, count the overdue time from the due date.
      if (clock.due_at && (clock.remaining == null || clock.remaining > 0)) {
        const due = Date.parse(clock.due_at);
        if (Number.isFinite(due)) {
          clock.remaining = Math.min(0, Math.round((due - (nowMs + model.clockOffsetMs)) / 1000));
          clock.receivedAt = nowMs;
        }
      }
      sla[target] = clock;
      model.sla = { response: sla.response ?? null, resolution: sla.resolution ?? null };
      return;
    }
    default:
      return;
  }
}

/** An asset reference {`id`, `name`} from a delta, or null when it names none. */
function assetRef(asset) {
  if (!asset || typeof asset !== 'object' || asset.id == null) return null;
  return { id: asset.id, name: asset.name ?? asset.id };
}

function applyEphemeral(model, kind, data, nowMs) {
  switch (kind) {
    case 'sla.tick':
      model.sla = stampSla(data, nowMs);
      return;
    case 'asset.telemetry': {
      const telemetry = { cpu: data.cpu, ram: data.ram, disk: data.disk, at: data.at ?? null, receivedAt: nowMs };
      const ref = assetRef(data.asset);
      if (!model.asset) model.asset = { id: ref?.id ?? null, name: ref?.name ?? 'Asset' };
      if (ref && model.asset.id != null && model.asset.id !== ref.id) return;
      model.asset = { ...model.asset, telemetry };
      return;
    }
    case 'presence.updated':
      model.viewers = Array.isArray(data.viewers) ? data.viewers : [];
      return;
    case 'asset.posture': {
      // The back end or the agent changed the asset's posture: the pills follow.
      const ref = assetRef(data.asset);
      if (!model.asset || (ref && model.asset.id != null && model.asset.id !== ref.id)) return;
      model.asset = { ...model.asset, posture: data.posture && typeof data.posture === 'object' ? data.posture : null };
      return;
    }
    case 'summary.pending':
      model.summaryPending = data.pending === true;
      return;
    case 'agent.status': {
      // The linked asset's agent connected or went away: the badge follows.
      const ref = assetRef(data.asset);
      if (!model.asset || typeof data.online !== 'boolean') return;
      if (ref && model.asset.id != null && model.asset.id !== ref.id) return;
      model.asset = { ...model.asset, agent_online: data.online };
      return;
    }
    default:
      return;
  }
}

// ---------------------------------------------------------------------------
// Derived values the page shows

/**
 * Seconds left on an SLA clock now, counted locally from the `remaining` the
 * server sent and when it arrived (`clock.receivedAt`), so the browser's and
 * the server's clocks need not agree.
 * A paused clock does not move. Returns null when nothing is known.
 */
export function slaRemainingSeconds(clock, nowMs) {
  if (!clock) return null;
  if (typeof clock.remaining === 'number') {
    if (clock.paused) return clock.remaining;
    const elapsed = Math.max(0, (nowMs - (clock.receivedAt ?? nowMs)) / 1000);
    return Math.round(clock.remaining - elapsed);
  }
  if (clock.due_at) {
    const due = Date.parse(clock.due_at);
    if (Number.isFinite(due)) return Math.round((due - nowMs) / 1000);
  }
  return null;
}

const SLA_DUE_SOON_SECONDS = 3600;

/**
 * How the SLA card reads one target (`response` or `resolution`) at `nowMs`:
 * {state, label, text, at?, dueAt?}. `state` is one of met, breached,
 * stopped, paused, due-soon, ok. A stopped clock tells the truth about how it
 * stopped: a first response after the due time is "Breached, answered N
 * late", not "Met"; a resolved or closed ticket's clocks say so.
 */
export function slaReading(model, target, nowMs) {
  const clock = model?.sla ? model.sla[target] : null;
  const goal = model?.sla?.targets?.[target] ?? null;
  const ticket = model?.ticket ?? {};
  const dueAt = goal?.due_at ?? clock?.due_at ?? null;
  if (clock) {
    const remaining = slaRemainingSeconds(clock, nowMs);
    const breached = clock.breached || (remaining !== null && remaining < 0);
    if (clock.paused) {
      return { state: breached ? 'breached' : 'paused', label: breached ? 'Breached' : 'Paused', dueAt,
        text: remaining === null ? 'Paused' : breached ? `Paused · ${formatDuration(remaining)} over` : `Paused · ${formatDuration(remaining)} left` };
    }
    if (breached) return { state: 'breached', label: 'Breached', dueAt, text: remaining === null ? 'Breached' : `${formatDuration(remaining)} overdue` };
    const soon = remaining !== null && remaining < SLA_DUE_SOON_SECONDS;
    return { state: soon ? 'due-soon' : 'ok', label: soon ? 'Due soon' : 'On track', dueAt, text: remaining === null ? '—' : `${formatDuration(remaining)} left` };
  }
  const closedAs = ticket.status === 'resolved' ? 'Resolved' : ticket.status === 'closed' ? 'Closed' : null;
  if (target === 'response' && ticket.first_response_at) {
    const late = dueAt ? Math.ceil((Date.parse(ticket.first_response_at) - Date.parse(dueAt)) / 1000) : NaN;
    if ((Number.isFinite(late) && late > 0) || (goal?.breached && !Number.isFinite(late))) {
      return { state: 'breached', label: 'Breached', at: ticket.first_response_at,
        text: Number.isFinite(late) ? `Answered ${formatDuration(late)} late` : 'Answered late' };
    }
    return { state: 'met', label: 'Met', text: 'Responded', at: ticket.first_response_at };
  }
  if (closedAs && goal) {
    if (target === 'response') {
      return goal.breached
        ? { state: 'breached', label: 'Breached', dueAt, text: `${closedAs} without a first response` }
        : { state: 'stopped', label: 'Stopped', dueAt, text: `${closedAs} without a first response` };
    }
    return goal.breached
      ? { state: 'breached', label: 'Breached', dueAt, text: `${closedAs} after the due time` }
      : { state: 'met', label: 'Met', dueAt, text: closedAs };
  }
  return { state: 'stopped', label: 'Stopped', text: closedAs ?? 'Not running' };
}

/** Seconds an active timer has run, using the server clock offset when known. */
export function timerElapsedSeconds(active, nowMs, clockOffsetMs = 0) {
  if (!active || !active.started_at) return null;
  const started = Date.parse(active.started_at);
  if (!Number.isFinite(started)) return null;
  return Math.max(0, Math.floor((nowMs + clockOffsetMs - started) / 1000));
}

/**
 * How many conversation messages arrived after the summary was written.
 * Uses `covers` (the last seq the summary took into account) against each
 * message's seq; messages without a seq (from a snapshot that did not say)
 * are compared by time against the summary's `at` instead. Returns null when
 * there is no summary.
 */
export function newMessagesSinceSummary(summary, messages) {
  if (!summary) return null;
  const covers = Number.isInteger(summary.covers) ? summary.covers : null;
  const summaryAt = summary.at ? Date.parse(summary.at) : NaN;
  let count = 0;
  for (const m of messages || []) {
    if (!CONVERSATION_CHANNELS.has(m.channel)) continue;
    if (covers !== null && Number.isInteger(m.seq)) {
      if (m.seq > covers) count += 1;
    } else if (Number.isFinite(summaryAt) && m.at) {
      const at = Date.parse(m.at);
      if (Number.isFinite(at) && at > summaryAt) count += 1;
    }
  }
  return count;
}

/** The last customer/technician/note message, or null. */
export function latestConversationMessage(messages) {
  for (let i = (messages || []).length - 1; i >= 0; i -= 1) {
    if (CONVERSATION_CHANNELS.has(messages[i].channel)) return messages[i];
  }
  return null;
}

// ---------------------------------------------------------------------------
// Stale commands

/**
 * The messages a `stale` error says the technician has not seen, normalised
 * to message shape. Returns [] for any other error.
 */
export function missedMessages(error) {
  if (!error || error.code !== 'stale' || !Array.isArray(error.missed)) return [];
  return error.missed.filter((m) => m && typeof m === 'object').map((m) => normalizeMessage(m, null));
}

/**
 * Records the missed messages on the model: any the model lacks are inserted
 * (in time order) so the thread shows them even if their deltas have not
 * arrived yet, and all are marked so the UI can highlight them. Returns the
 * number of messages that were new to the model. The seq does NOT move: the
 * deltas that carry these messages still arrive and are dropped by id.
 */
export function recordMissed(model, missed) {
  let added = 0;
  for (const m of missed) {
    if (m.id != null) model.missedIds.add(m.id);
    if (m.id != null && model.messages.some((x) => x.id === m.id)) continue;
    model.messages.push(m);
    added += 1;
  }
  if (added) {
    model.messages.sort((a, b) => (Date.parse(a.at) || 0) - (Date.parse(b.at) || 0));
  }
  return added;
}

// ---------------------------------------------------------------------------
// Reconnect and liveness

/**
 * Reconnect delay for the given attempt (0 = first retry): "full jitter",
 * uniformly random in [0, min(cap, base * 2^attempt)). Full jitter spreads a
 * crowd of clients that lost the same server instead of having them return in
 * waves.
 */
export function backoffDelay(attempt, { baseMs = 250, capMs = 10000, random = Math.random } = {}) {
  const n = Math.max(0, Math.floor(attempt));
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.min(n, 30));
  return Math.floor(random() * ceiling);
}

/**
 * The liveness budget for a connection whose server pings every
 * `heartbeatSeconds`. Browsers answer WebSocket pings without telling the
 * page, so silence is all the page can see:
 *  - `silenceMs`: after this long without any frame, send a probe
 *    (a resume `subscribe` with `since`, which the server must answer);
 *  - `probeTimeoutMs`: no frame at all this long after a frame that demands
 *    an answer (probe, subscribe or command) means the connection is dead.
 */
export function livenessBudget(heartbeatSeconds) {
  const h = Number.isFinite(heartbeatSeconds) && heartbeatSeconds > 0 ? heartbeatSeconds : 30;
  return {
    silenceMs: Math.round(2.5 * h * 1000),
    probeTimeoutMs: Math.round(Math.max(5, Math.min(h, 30)) * 1000),
  };
}

/** A command or subscription id, unique enough to be an idempotency key. */
export function makeId(prefix = 'c', random = defaultRandomBytes) {
  const bytes = random(12);
  let hex = '';
  for (const b of bytes) hex += b.toString(16).padStart(2, '0');
  return `${prefix}-${hex}`;
}

function defaultRandomBytes(n) {
  const bytes = new Uint8Array(n);
  globalThis.crypto.getRandomValues(bytes);
  return bytes;
}

// ---------------------------------------------------------------------------
// Formatting

/** "45s", "14m 03s", "2h 05m", "3d 4h" for a number of seconds (sign ignored). */
export function formatDuration(seconds) {
  if (seconds == null || !Number.isFinite(seconds)) return '—';
  let s = Math.abs(Math.round(seconds));
  const d = Math.floor(s / 86400); s -= d * 86400;
  const h = Math.floor(s / 3600); s -= h * 3600;
  const m = Math.floor(s / 60); s -= m * 60;
  if (d > 0) return `${d}d ${h}h`;
  if (h > 0) return `${h}h ${String(m).padStart(2, '0')}m`;
  if (m > 0) return `${m}m ${String(s).padStart(2, '0')}s`;
  return `${s}s`;
}

/** "0:04:09" style stopwatch text. */
export function formatClock(seconds) {
  if (seconds == null || !Number.isFinite(seconds)) return '—';
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = s % 60;
  return `${h}:${String(m).padStart(2, '0')}:${String(r).padStart(2, '0')}`;
}
