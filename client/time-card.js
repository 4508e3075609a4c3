// The Time + contract card: the running timer (stopped with a note), manual
// entries (`time_add`), every logged entry the server sends (not only the
// last five), and the contract's hours used this month as the server
// computes them from logged time (`time.contract_used`, protocol.md §3.5).

import { avatar, formatTimestamp, h, icon, replaceChildren } from './dom.js';
import { formatClock, formatDuration, timerElapsedSeconds } from './peek-model.js';

/** Entries shown before "Show all". */
const FIRST_ENTRIES = 5;

/** "12 h/month" in a contract line: its monthly allowance in hours, or null. */
export function contractAllowanceHours(contract) {
  const match = /(\d+(?:[.,]\d+)?)\s*h(?:ours?|rs?)?\s*(?:\/|per\s+|a\s+)\s*month/i.exec(String(contract || ''));
  return match ? Number(match[1].replace(',', '.')) : null;
}

/** Hours with at most one decimal: "4.5 h", "12 h". */
export function formatHours(seconds) {
  const hours = Math.round((seconds / 3600) * 10) / 10;
  return `${Number.isInteger(hours) ? hours : hours.toFixed(1)} h`;
}

/**
 * Renders the card for `panel` (a PeekPanel): reads panel.model, keeps its
 * own UI state in panel.timeUi ({adding, showAll}; replaced, never mutated,
 * so the card's change check sees it), and runs commands through
 * panel.timerCommand(op, args).
 */
export function renderTimeCard(panel, { body, aside }) {
  const m = panel.model;
  const ui = panel.timeUi || { adding: false, showAll: false };
  const setUi = (change) => {
    panel.timeUi = { ...ui, ...change };
    panel.renderCards();
  };
  const time = m.time || { active: null, entries: [], total: 0 };
  const active = time.active;
  const entries = Array.isArray(time.entries) ? time.entries : [];
  const count = Number.isInteger(time.entry_count) ? time.entry_count : entries.length;
  const busy = panel.timerBusy;
  replaceChildren(aside, h('span', { class: 'muted', 'data-testid': 'time-total' }, `Total ${formatDuration(time.total || 0)}`));

  const elapsed = h('span', { class: 'timer-clock', 'data-testid': 'timer-elapsed' }, '0:00:00');
  const stopNote = h('input', { type: 'text', class: 'timer-note', 'data-testid': 'timer-note', maxlength: '500', placeholder: 'What was done? (optional note)', 'aria-label': 'Note for this time entry' });
  const stop = () => {
    const note = stopNote.value.trim();
    panel.timerCommand('timer_stop', note ? { note } : {});
  };
  stopNote.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') {
      e.preventDefault();
      stop();
    }
  });
  const timerRow = active
    ? h(
        'div',
        { class: 'timer is-running' },
        h('span', { class: 'status-dot pulse' }),
        h('div', { class: 'timer-text' }, elapsed, h('span', { class: 'muted' }, `${active.technician?.name || 'Someone'} · since ${formatTimestamp(active.started_at)}`)),
        h('button', { type: 'button', class: 'btn btn-secondary btn-sm', 'data-testid': 'timer-stop', disabled: busy, onclick: stop }, icon('stop'), 'Stop'),
      )
    : h(
        'div',
        { class: 'timer' },
        h('div', { class: 'timer-text' }, h('span', { class: 'muted' }, 'No timer running')),
        h('button', { type: 'button', class: 'btn btn-secondary btn-sm', 'data-testid': 'timer-start', disabled: busy, onclick: () => panel.timerCommand('timer_start') }, icon('play'), 'Start timer'),
      );

  let manual;
  if (ui.adding) {
    const minutes = h('input', { type: 'number', min: '1', max: '1440', step: '1', class: 'time-add-minutes', 'data-testid': 'time-add-minutes', 'aria-label': 'Minutes worked', placeholder: 'Minutes', required: true });
    const note = h('input', { type: 'text', class: 'time-add-note', 'data-testid': 'time-add-note', maxlength: '500', placeholder: 'What was done?', 'aria-label': 'Note' });
    const problem = h('p', { class: 'attach-error', 'data-testid': 'time-add-error', hidden: true });
    manual = h(
      'form',
      {
        class: 'time-add',
        'data-testid': 'time-add-form',
        onsubmit: async (e) => {
          e.preventDefault();
          const n = Number(minutes.value);
          if (!Number.isInteger(n) || n < 1 || n > 1440) {
            problem.textContent = 'Enter whole minutes, from 1 to 1440 (a day).';
            problem.hidden = false;
            return;
          }
          const args = { seconds: n * 60 };
          if (note.value.trim()) args.note = note.value.trim();
          if (await panel.timerCommand('time_add', args)) setUi({ adding: false });
        },
      },
      minutes,
      h('span', { class: 'muted' }, 'min'),
      note,
      h('button', { type: 'submit', class: 'btn btn-primary btn-sm', 'data-testid': 'time-add-submit', disabled: busy }, 'Log'),
      h('button', { type: 'button', class: 'btn btn-ghost btn-sm', 'data-testid': 'time-add-cancel', onclick: () => setUi({ adding: false }) }, 'Cancel'),
      problem,
    );
    queueMicrotask(() => minutes.focus());
  } else {
    manual = h('button', { type: 'button', class: 'btn btn-ghost btn-sm time-add-open', 'data-testid': 'time-add-open', onclick: () => setUi({ adding: true }) }, icon('timer'), 'Add time manually');
  }

  const shown = ui.showAll ? entries.slice().reverse() : entries.slice(-FIRST_ENTRIES).reverse();
  const list = entries.length
    ? h(
        'ul',
        { class: 'entries', 'data-testid': 'time-entries', 'data-count': String(shown.length) },
        shown.map((e) =>
          h(
            'li',
            { 'data-testid': 'time-entry', title: `${e.technician?.name || ''} · ${formatTimestamp(e.started_at)}` },
            avatar(e.technician, 'xs'),
            h('span', { class: 'entry-note' }, e.note || e.technician?.name || 'Time'),
            h('span', { class: 'entry-dur' }, formatDuration(e.seconds)),
          ),
        ),
      )
    : h('p', { class: 'empty-note' }, 'No time logged yet.');
  const more = entries.length > FIRST_ENTRIES
    ? h(
        'button',
        { type: 'button', class: 'btn btn-ghost btn-sm', 'data-testid': 'time-show-all', 'aria-expanded': String(Boolean(ui.showAll)), onclick: () => setUi({ showAll: !ui.showAll }) },
        ui.showAll ? 'Show fewer' : `Show all ${entries.length} entries`,
      )
    : null;
  const beyond = ui.showAll && count > entries.length
    ? h('p', { class: 'muted', 'data-testid': 'time-older' }, `The ${entries.length} most recent of ${count} entries are listed; the total counts all ${count}.`)
    : null;

  replaceChildren(body, timerRow, active ? h('div', { class: 'timer-note-row' }, stopNote) : null, list, more, beyond, manual, contractFoot(m.contract ?? time.contract ?? null, time));
  if (active) {
    panel.live('time', (now) => {
      elapsed.textContent = formatClock(timerElapsedSeconds(active, now, m.clockOffsetMs));
    });
  }
}

function contractFoot(contract, time) {
  if (!contract) return h('div', { class: 'card-foot contract' }, icon('note'), h('span', { class: 'muted' }, 'No contract on file'));
  const name = typeof contract === 'string' ? contract : contract.name || 'Contract';
  const used = Number.isFinite(time.contract_used) ? time.contract_used : null;
  const allowance = contractAllowanceHours(name);
  let usage = null;
  if (used !== null) {
    const text = allowance ? `${formatHours(used)} of ${allowance} h used this month` : `${formatHours(used)} used this month`;
    const pct = allowance ? Math.min(100, Math.round((100 * used) / (allowance * 3600))) : null;
    usage = h(
      'div',
      { class: `contract-usage${pct !== null && pct >= 90 ? ' is-near' : ''}`, 'data-testid': 'contract-used', 'data-seconds': String(used) },
      h('span', null, text),
      pct !== null ? h('progress', { max: '100', value: String(pct), 'aria-label': text }) : null,
    );
  }
  return h('div', { class: 'card-foot contract' }, icon('note'), h('div', { class: 'contract-text' }, h('span', { 'data-testid': 'contract' }, name), usage));
}
