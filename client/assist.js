// Nexie assist in the composer (protocol.md §11.1): the button sends the
// draft to the tenant's assistant, the answer streams into the message box
// as it is written, and the technician keeps it (then edits and sends it
// like any draft) or discards it, which puts their own draft back.
// Nothing is sent to the customer or stored by asking.

import { h, icon } from './dom.js';

export class AssistControl {
  /**
   * @param {object} options
   *   input: the composer's textarea
   *   mode(): the composer's mode ('reply' or 'note')
   *   ask(mode, draft, onChunk): the client's `assist` (a promise of the done frame)
   *   changed(): the draft changed (saved, presence)
   */
  constructor({ input, mode, ask, changed }) {
    this.input = input;
    this.mode = mode;
    this.ask = ask;
    this.changed = changed;
    this.state = 'idle'; // idle | streaming | review
    this.original = '';
    this.closed = false;
    /** Which `start` the stream's callbacks belong to: a discarded one's are ignored. */
    this.generation = 0;

    this.button = h(
      'button',
      { type: 'button', class: 'btn btn-ghost assist-btn', 'data-testid': 'assist-button', title: 'Let Nexie draft or refine this message', onclick: () => this.start() },
      icon('sparkles'),
      h('span', null, 'Nexie assist'),
    );
    this.status = h('span', { class: 'assist-status', 'data-testid': 'assist-status', 'aria-live': 'polite' });
    this.keep = h('button', { type: 'button', class: 'btn btn-primary btn-sm', 'data-testid': 'assist-keep', onclick: () => this.accept() }, 'Keep');
    this.discardButton = h('button', { type: 'button', class: 'btn btn-ghost btn-sm', 'data-testid': 'assist-discard', onclick: () => this.discard() }, 'Discard');
    this.error = h('p', { class: 'assist-error', 'data-testid': 'assist-error', role: 'alert', hidden: true });
    this.bar = h('div', { class: 'assist-bar', 'data-testid': 'assist-bar', hidden: true }, icon('sparkles'), this.status, this.keep, this.discardButton);
  }

  start() {
    if (this.state === 'streaming') return;
    if (this.state === 'review') this.accept();
    const mode = this.mode() || 'reply';
    const generation = ++this.generation;
    const current = () => !this.closed && this.state === 'streaming' && this.generation === generation;
    this.original = this.input.value;
    this.state = 'streaming';
    this.error.hidden = true;
    this.input.value = '';
    this.input.readOnly = true;
    this.input.classList.add('is-assisting');
    this.button.disabled = true;
    this.keep.disabled = true;
    this.bar.hidden = false;
    this.bar.dataset.state = 'streaming';
    this.status.textContent = 'Nexie is writing…';
    this.ask(mode, this.original, (text) => {
      if (!current()) return;
      this.input.value += text;
      this.input.scrollTop = this.input.scrollHeight;
    }).then(
      (done) => {
        if (!current()) return;
        if (typeof done.text === 'string') this.input.value = done.text;
        this.state = 'review';
        this.bar.dataset.state = 'review';
        this.input.readOnly = false;
        this.button.disabled = false;
        this.keep.disabled = false;
        this.status.textContent = done.model ? `Drafted by ${done.model}. Keep it to edit and send, or discard it.` : 'Keep it to edit and send, or discard it.';
      },
      (err) => {
        if (!current()) return;
        this.restore();
        this.showError(err && err.message ? err.message : 'Nexie could not answer; try again.');
      },
    );
  }

  /** Keeps what Nexie wrote as the draft (editable from now on). */
  accept() {
    if (this.state !== 'review') return;
    this.finish();
    this.input.focus();
    this.changed();
  }

  /** Puts the technician's own draft back. */
  discard() {
    if (this.state === 'idle') return;
    // A discarded stream's remaining chunks and answer are ignored (state is idle).
    this.restore();
    this.input.focus();
  }

  restore() {
    this.input.value = this.original;
    this.finish();
    this.changed();
  }

  finish() {
    this.state = 'idle';
    this.input.readOnly = false;
    this.input.classList.remove('is-assisting');
    this.button.disabled = false;
    this.bar.hidden = true;
    delete this.bar.dataset.state;
  }

  showError(message) {
    this.error.textContent = message;
    this.error.hidden = false;
  }

  /** The composer sent or switched away: forget any suggestion. */
  reset() {
    if (this.state !== 'idle') this.finish();
    this.error.hidden = true;
  }

  /** Leaves a suggestion without a trace: the technician's draft is back in the box, nothing is announced. */
  abandon() {
    if (this.state === 'idle') return;
    this.input.value = this.original;
    this.finish();
  }

  close() {
    this.abandon();
    this.closed = true;
  }
}
