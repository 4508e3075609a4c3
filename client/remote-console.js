// The Peek's remote actions card (protocol.md §6): Remote desktop, Shell and
// Start session through the asset's RMM agent, the consent status, the
// shell console every viewer of the ticket watches, the keyboard hand-over,
// the desktop join link (the requester's only) and the shell transcript.
//
// One RemoteActions per open Peek. The card is re-rendered whenever the
// session or the agent changes; the console's output node survives those
// re-renders, so typed text, scroll position and output are kept.

import { formatTimestamp, h, icon, replaceChildren } from './dom.js';
import { formatClock, formatDuration, timerElapsedSeconds } from './peek-model.js';

const KIND_TEXT = { recording: 'recorded session', desktop: 'remote desktop session', shell: 'remote shell session' };

/** What the status line says, per status and kind. */
function statusText(status, kind) {
  const what = KIND_TEXT[kind] || KIND_TEXT.recording;
  switch (status) {
    case 'awaiting_consent':
      return `Waiting for the end user to accept the ${what}`;
    case 'active':
      return kind === 'shell' ? 'Shell active' : kind === 'desktop' ? 'Remote desktop active' : 'Recording';
    case 'denied':
      return `The end user declined the ${what}`;
    case 'expired':
      return `The consent request for the ${what} expired`;
    case 'ended':
      return kind === 'shell' ? 'Shell session ended' : kind === 'desktop' ? 'Remote desktop session ended' : 'Session ended';
    default:
      return status;
  }
}

// ---------------------------------------------------------------------------
// ANSI: SGR colours rendered as classes, every other escape sequence dropped.

const SGR_COLOURS = ['black', 'red', 'green', 'yellow', 'blue', 'magenta', 'cyan', 'white'];

/**
 * Splits console text into styled runs. `state` ({fg, bg, bold, carry})
 * carries the style and an escape sequence cut off at a chunk's end into
 * the next call. Answers [{text, fg, bg, bold}].
 */
export function ansiRuns(text, state) {
  const input = (state.carry || '') + text;
  state.carry = '';
  state.fg = state.fg ?? null;
  state.bg = state.bg ?? null;
  state.bold = Boolean(state.bold);
  const runs = [];
  let plain = '';
  const flush = () => {
    if (plain) runs.push({ text: plain, fg: state.fg, bg: state.bg, bold: state.bold });
    plain = '';
  };
  let i = 0;
  while (i < input.length) {
    const ch = input[i];
    if (ch === '\u001b') {
      const rest = input.slice(i);
      const csi = /^\u001b\[([0-9;?]*)([@-~])/.exec(rest);
      if (csi) {
        if (csi[2] === 'm') {
          flush();
          applySgr(state, csi[1]);
        }
        i += csi[0].length;
        continue;
      }
      if (/^\u001b(\[[0-9;?]*)?$/.test(rest)) {
        state.carry = rest; // the rest of the sequence comes with the next chunk
        break;
      }
      const other = /^\u001b[\]PX^_][^\u0007\u001b]*(\u0007|\u001b\\)?/.exec(rest) || /^\u001b./.exec(rest);
      i += other ? other[0].length : 1;
      continue;
    }
    if (ch === '\r') {
      i += 1;
      continue;
    }
    if (ch < ' ' && ch !== '\n' && ch !== '\t') {
      i += 1; // bells, backspaces and the like: a console, not a terminal
      continue;
    }
    plain += ch;
    i += 1;
  }
  flush();
  return runs;
}

function applySgr(state, params) {
  const codes = params === '' ? [0] : params.split(';').map((p) => (p === '' ? 0 : Number(p)));
  for (let k = 0; k < codes.length; k += 1) {
    const c = codes[k];
    if (c === 0) {
      state.fg = null;
      state.bg = null;
      state.bold = false;
    } else if (c === 1) state.bold = true;
    else if (c === 22) state.bold = false;
    else if (c >= 30 && c <= 37) state.fg = SGR_COLOURS[c - 30];
    else if (c >= 90 && c <= 97) state.fg = `bright-${SGR_COLOURS[c - 90]}`;
    else if (c === 39) state.fg = null;
    else if (c >= 40 && c <= 47) state.bg = SGR_COLOURS[c - 40];
    else if (c >= 100 && c <= 107) state.bg = `bright-${SGR_COLOURS[c - 100]}`;
    else if (c === 49) state.bg = null;
    else if (c === 38 || c === 48) k += codes[k + 1] === 5 ? 2 : codes[k + 1] === 2 ? 4 : 0; // 256/true colour: not rendered
  }
}

/** Console text without any escape sequence (what a transcript reader wants). */
export function stripAnsi(text) {
  return ansiRuns(text, {}).map((r) => r.text).join('');
}

// ---------------------------------------------------------------------------

/** Output kept per console (characters): older output scrolls away. */
const MAX_CONSOLE_CHARS = 200_000;

export class RemoteActions {
  /**
   * panel: the PeekPanel (model, view, me, live(), renderCards(), closed);
   * getToken: () => the technician token, for the transcript download.
   */
  constructor(panel, { getToken } = {}) {
    this.panel = panel;
    this.getToken = getToken || (() => null);
    this.busy = false;
    this.error = null;
    this.consoleSession = null;
    this.output = h('pre', { class: 'shell-output', 'data-testid': 'shell-output', tabindex: '0', 'aria-label': 'Shell output', 'aria-live': 'off' });
    this.input = h('input', {
      type: 'text',
      class: 'shell-input',
      'data-testid': 'shell-input',
      autocomplete: 'off',
      spellcheck: 'false',
      'aria-label': 'Shell input',
      onkeydown: (e) => this.onKey(e),
    });
    this.ansi = {};
    this.chars = 0;
    this.sentSize = null;
    this.join = null; // {session, url, expires_at}
    this.joinWindow = null;
    this.transcript = null; // {session, text} | {session, error}
    this.resize = new ResizeObserver(() => this.sendResizeHint());
    this.resize.observe(this.output);
  }

  dispose() {
    this.resize.disconnect();
    if (this.joinWindow && !this.joinWindow.closed && !this.join) this.joinWindow.close();
    this.joinWindow = null;
  }

  get model() {
    return this.panel.model;
  }

  /** What the card's re-render depends on (PeekPanel.renderCards). */
  deps() {
    const m = this.model;
    return [m.session, m.asset?.agent_online, Boolean(m.asset || m.ticket?.asset), this.busy, this.error, this.join, this.transcript,
      this.keyboardHolder()?.id, m.viewers, this.transcriptRef()?.id];
  }

  // -- frames -------------------------------------------------------------

  onDelta(frame) {
    if (frame.kind !== 'session.output') return;
    const data = frame.data || {};
    if (typeof data.data !== 'string') return;
    this.adoptConsole(data.session);
    this.appendOutput(data.data);
  }

  /** The agent's join link for the desktop session this technician asked for. */
  onSessionJoin(frame) {
    if (!frame || typeof frame.url !== 'string' || !/^https:\/\//i.test(frame.url)) return;
    this.join = { session: frame.session, url: frame.url, expires_at: frame.expires_at };
    const win = this.joinWindow;
    this.joinWindow = null;
    if (win && !win.closed) {
      win.opener = null;
      win.location.href = frame.url;
    } else {
      // The placeholder tab was blocked or closed: open it now if the browser lets us.
      window.open(frame.url, '_blank', 'noopener');
    }
    this.panel.renderCards();
  }

  // -- console --------------------------------------------------------------

  adoptConsole(session) {
    if (!session || this.consoleSession === session) return;
    this.consoleSession = session;
    this.output.replaceChildren();
    this.ansi = {};
    this.chars = 0;
    this.sentSize = null;
  }

  appendOutput(text) {
    const pinned = this.output.scrollHeight - this.output.scrollTop - this.output.clientHeight < 24;
    const fragment = document.createDocumentFragment();
    for (const run of ansiRuns(text, this.ansi)) {
      const classes = [];
      if (run.fg) classes.push(`ansi-fg-${run.fg}`);
      if (run.bg) classes.push(`ansi-bg-${run.bg}`);
      if (run.bold) classes.push('ansi-bold');
      fragment.append(classes.length ? h('span', { class: classes.join(' ') }, run.text) : document.createTextNode(run.text));
      this.chars += run.text.length;
    }
    this.output.append(fragment);
    while (this.chars > MAX_CONSOLE_CHARS && this.output.firstChild) {
      this.chars -= this.output.firstChild.textContent.length;
      this.output.firstChild.remove();
    }
    if (pinned) this.output.scrollTop = this.output.scrollHeight;
  }

  /** The active shell session, if there is one. */
  activeShell() {
    const s = this.model?.session;
    return s && s.kind === 'shell' && s.status === 'active' ? s : null;
  }

  /**
   * Who holds the shell's keyboard: the technician who started it, then
   * whoever the system events say it was handed to (protocol.md §6.1).
   */
  keyboardHolder() {
    const s = this.model?.session;
    if (!s || s.kind !== 'shell' || s.status !== 'active') return null;
    let holder = s.technician || null;
    const since = Date.parse(s.started_at || s.created_at || '') || 0;
    for (const m of this.model.messages || []) {
      if (m.channel !== 'system' || (Date.parse(m.at) || 0) < since) continue;
      const handed = /^(.+) handed the shell keyboard to (.+)\.$/.exec(m.body || '');
      if (!handed) continue;
      const name = handed[2];
      const viewer = (this.model.viewers || []).find((v) => v.name === name);
      holder = { id: viewer ? viewer.id : null, name };
    }
    return holder;
  }

  iHoldKeyboard() {
    const holder = this.keyboardHolder();
    const me = this.panel.me || {};
    return Boolean(holder && ((holder.id && holder.id === me.id) || (!holder.id && holder.name === me.name)));
  }

  sendInput(data) {
    const s = this.activeShell();
    if (!s || !this.iHoldKeyboard()) return false;
    return this.panel.client.sessionInput(this.panel.ticketId, s.id, data);
  }

  onKey(e) {
    if (e.key === 'Enter') {
      e.preventDefault();
      const line = this.input.value;
      if (this.sendInput(`${line}\n`)) this.input.value = '';
    } else if ((e.key === 'c' || e.key === 'C') && e.ctrlKey && !e.shiftKey && this.input.selectionStart === this.input.selectionEnd) {
      e.preventDefault();
      this.sendInput('\u0003');
      this.input.value = '';
    }
  }

  /** The console's size in characters, as an xterm resize sequence, when it changed. */
  sendResizeHint() {
    if (!this.activeShell() || !this.iHoldKeyboard() || !this.output.isConnected) return;
    const probe = h('span', { class: 'shell-probe' }, 'MMMMMMMMMM');
    this.output.append(probe);
    const charWidth = probe.getBoundingClientRect().width / 10 || 8;
    const lineHeight = probe.getBoundingClientRect().height || 16;
    probe.remove();
    const columns = Math.max(20, Math.floor((this.output.clientWidth - 16) / charWidth));
    const rows = Math.max(5, Math.floor((this.output.clientHeight - 8) / lineHeight));
    const size = `${rows};${columns}`;
    if (size === this.sentSize) return;
    if (this.sendInput(`\u001b[8;${rows};${columns}t`)) this.sentSize = size;
  }

  // -- commands -------------------------------------------------------------

  async command(op, args) {
    if (!this.panel.view || this.busy) return;
    this.busy = true;
    this.error = null;
    this.panel.renderCards();
    try {
      await this.panel.view.command(op, args);
    } catch (err) {
      if (err.code !== 'closed') this.error = err.message || 'The request failed';
      if (op === 'start_session' && this.joinWindow && !this.joinWindow.closed) this.joinWindow.close();
    } finally {
      this.busy = false;
      if (!this.panel.closed) this.panel.renderCards();
    }
  }

  start(kind) {
    if (kind === 'desktop') {
      // Opened now, inside the click, so no pop-up blocker stops it; the
      // agent's link replaces the placeholder once the end user accepts.
      this.join = null;
      const win = window.open('', '_blank');
      if (win) {
        try {
          win.document.title = 'Remote desktop: waiting for consent';
          win.document.body.textContent = 'Waiting for the end user to accept the remote desktop session…';
        } catch {
          // Not ours to write: it still gets the link.
        }
      }
      this.joinWindow = win;
    }
    this.command('start_session', kind === 'recording' ? {} : { kind });
  }

  // -- transcript -------------------------------------------------------------

  /** The transcript attachment of the latest shell session, once stored. */
  transcriptRef() {
    const s = this.model?.session;
    if (!s || s.kind !== 'shell' || s.status !== 'ended') return null;
    const name = `shell-${s.id}.txt`;
    for (const m of this.model.messages || []) {
      for (const a of m.attachments || []) if ((a.filename || a.name) === name) return a;
    }
    return null;
  }

  async openTranscript(ref) {
    const session = this.model.session.id;
    try {
      const response = await fetch(`/v1/attachments/${encodeURIComponent(ref.id)}`, {
        headers: { Authorization: `Bearer ${this.getToken()}` },
        cache: 'no-store',
      });
      if (!response.ok) throw new Error(`The transcript could not be loaded (${response.status})`);
      const text = await response.text();
      this.transcript = { session, text, url: URL.createObjectURL(new Blob([text], { type: 'text/plain' })) };
    } catch (err) {
      this.transcript = { session, error: err.message };
    }
    if (!this.panel.closed) this.panel.renderCards();
  }

  // -- the card ---------------------------------------------------------------

  render({ body, aside }) {
    const m = this.model;
    const session = m.session;
    const status = session?.status || null;
    const kind = session?.kind || 'recording';
    const running = status === 'awaiting_consent' || status === 'active';
    const hasAsset = Boolean(m.asset || m.ticket?.asset);
    const online = m.asset?.agent_online;
    if (kind === 'shell' && running) this.adoptConsole(session.id);
    if (kind === 'desktop' && (status === 'denied' || status === 'expired' || status === 'ended') && this.joinWindow) {
      // No link is coming: the placeholder tab goes.
      if (!this.joinWindow.closed) this.joinWindow.close();
      this.joinWindow = null;
    }
    replaceChildren(aside);

    // Why the buttons are off, in one phrase, or null when they are on.
    let why = null;
    if (!hasAsset) why = 'Link an asset first';
    else if (online === false) why = 'The agent is offline';
    else if (running) why = 'A session is in progress';
    const disabled = Boolean(why) || this.busy;
    const action = (iconName, label, sub, opts) =>
      h('button', { type: 'button', class: 'action', ...opts }, icon(iconName), h('span', { class: 'action-text' }, h('span', { class: 'action-label' }, label), h('span', { class: 'action-sub' }, sub)));
    // Start session keeps its old rule (the server answers agent_offline).
    const startWhy = !hasAsset ? 'Link an asset first' : running ? 'A session is in progress' : null;
    const buttons = h(
      'div',
      { class: 'actions' },
      action('monitor', 'Remote desktop', why || 'Through the RMM agent, needs consent', {
        'data-testid': 'remote-desktop', disabled, title: why || 'Ask the end user to let you see their screen', onclick: () => this.start('desktop'),
      }),
      action('terminal', 'Shell', why || 'Live console, shared with viewers', {
        'data-testid': 'remote-shell', disabled, title: why || 'Ask the end user to allow a remote shell', onclick: () => this.start('shell'),
      }),
      action('record', 'Start session', startWhy || 'Recorded, needs end-user consent', {
        'data-testid': 'start-session', class: 'action action-primary', disabled: Boolean(startWhy) || this.busy, onclick: () => this.start('recording'),
      }),
    );

    const statusLine = h('div', { class: `session-status session-${status || 'none'}`, 'data-testid': 'session-status', 'data-status': status || 'none', 'data-kind': session ? kind : 'none', role: 'status' });
    const clock = h('span', { class: 'session-expiry muted', 'data-testid': 'session-clock' });
    if (status) {
      replaceChildren(
        statusLine,
        status === 'awaiting_consent' ? h('span', { class: 'spinner' }) : h('span', { class: 'status-dot' }),
        h('span', { class: 'session-text' }, statusText(status, kind)),
        clock,
      );
    } else {
      replaceChildren(statusLine, h('span', { class: 'muted' }, online === false ? 'No session yet · the agent is offline' : 'No session yet'));
    }

    replaceChildren(
      body,
      buttons,
      statusLine,
      kind === 'desktop' ? this.renderDesktop(session) : null,
      kind === 'shell' && (status === 'active' || (status === 'ended' && this.consoleSession === session.id)) ? this.renderConsole(session) : null,
      kind === 'shell' && status === 'ended' ? this.renderTranscript() : null,
      status === 'active'
        ? h('button', { type: 'button', class: 'btn btn-danger btn-sm', 'data-testid': 'end-session', disabled: this.busy, onclick: () => this.command('end_session', {}) }, icon('stop'), kind === 'shell' ? 'End shell' : 'End session')
        : null,
      this.error ? h('p', { class: 'inline-error', 'data-testid': 'session-error', role: 'alert' }, this.error) : null,
    );

    if (status === 'awaiting_consent' && session.expires_at) {
      this.panel.live('remote', (now) => {
        const left = Math.round((Date.parse(session.expires_at) - now - (m.clockOffsetMs || 0)) / 1000);
        clock.textContent = Number.isFinite(left) ? (left > 0 ? `Consent request expires in ${formatDuration(left)}` : 'Consent request expiring…') : '';
      });
    } else if (status === 'active' && session.started_at) {
      this.panel.live('remote', (now) => {
        clock.textContent = `Elapsed ${formatClock(timerElapsedSeconds(session, now, m.clockOffsetMs))}`;
      });
    }
    if (this.activeShell()) requestAnimationFrame(() => this.sendResizeHint());
  }

  renderDesktop(session) {
    if (session.status !== 'active') return null;
    const me = this.panel.me || {};
    const mine = session.technician?.id === me.id;
    const link = this.join && this.join.session === session.id ? this.join : null;
    if (mine && link) {
      return h(
        'div',
        { class: 'desktop-join', 'data-testid': 'desktop-join' },
        h('a', { href: link.url, target: '_blank', rel: 'noopener noreferrer', class: 'btn btn-sm', 'data-testid': 'desktop-link' }, icon('link'), 'Open remote desktop'),
        link.expires_at ? h('span', { class: 'muted' }, `Link valid until ${formatTimestamp(link.expires_at)}`) : null,
      );
    }
    return h('p', { class: 'muted', 'data-testid': 'desktop-join' },
      mine ? 'Waiting for the agent’s join link…' : `${session.technician?.name || 'A technician'} is connected to the end user’s screen.`);
  }

  renderConsole(session) {
    const active = session.status === 'active';
    const holder = this.keyboardHolder();
    const mine = active && this.iHoldKeyboard();
    this.input.disabled = !mine;
    this.input.placeholder = !active ? 'The session has ended' : mine ? 'Type a command and press Enter' : `${holder?.name || 'Another technician'} has the keyboard`;
    const others = (this.model.viewers || []).filter((v) => v.id !== (this.panel.me || {}).id);
    let handover = null;
    if (mine && others.length) {
      const select = h('select', { class: 'shell-handover-to', 'data-testid': 'shell-handover-to', 'aria-label': 'Hand the keyboard to' },
        others.map((v) => h('option', { value: v.id }, v.name || v.id)));
      handover = h('span', { class: 'shell-handover' }, select,
        h('button', { type: 'button', class: 'btn btn-sm', 'data-testid': 'shell-handover', disabled: this.busy,
          onclick: () => this.command('session_handover', { session: session.id, technician: select.value }) }, 'Hand over'));
    }
    return h(
      'div',
      { class: 'shell-console', 'data-testid': 'shell-console', 'data-active': active ? 'true' : 'false' },
      this.output,
      active
        ? h('div', { class: 'shell-inputline' },
          h('span', { class: 'shell-prompt', 'aria-hidden': 'true' }, '›'),
          this.input,
          h('button', { type: 'button', class: 'btn btn-sm', 'data-testid': 'shell-ctrl-c', disabled: !mine, title: 'Stop the running command (Ctrl-C)', onclick: () => this.sendInput('\u0003') }, 'Ctrl-C'))
        : null,
      active
        ? h('div', { class: 'shell-keyboard muted', 'data-testid': 'shell-keyboard' },
          mine ? 'You have the keyboard' : `${holder?.name || 'Another technician'} has the keyboard`, handover)
        : null,
    );
  }

  renderTranscript() {
    const ref = this.transcriptRef();
    const session = this.model.session.id;
    if (!ref) return h('p', { class: 'muted', 'data-testid': 'shell-transcript-pending' }, 'Storing the transcript…');
    const shown = this.transcript && this.transcript.session === session ? this.transcript : null;
    return h(
      'div',
      { class: 'shell-transcript' },
      h('button', { type: 'button', class: 'btn btn-sm', 'data-testid': 'shell-transcript', onclick: () => this.openTranscript(ref) }, icon('note'), `Transcript (${ref.filename || ref.name})`),
      shown?.url ? h('a', { href: shown.url, download: ref.filename || 'transcript.txt', class: 'btn btn-sm btn-ghost', 'data-testid': 'transcript-download' }, 'Download') : null,
      shown?.error ? h('p', { class: 'inline-error', role: 'alert' }, shown.error) : null,
      shown?.text !== undefined ? h('pre', { class: 'shell-output shell-transcript-text', 'data-testid': 'transcript-text' }, stripAnsi(shown.text)) : null,
    );
  }
}
