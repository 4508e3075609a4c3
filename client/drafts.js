// Composer drafts: one per technician, ticket and mode (reply or note), kept
// in the browser's storage so a page reload or a crash does not lose them,
// and cleared when the message is sent.
//
// Keys are `peek.draft:<scope>:<ticket>:<mode>` (the text) and
// `peek.draft:<scope>:<ticket>:mode` (the mode the technician wrote in last,
// which the Peek reopens in). `scope` is the signed-in tenant and technician,
// so one browser shared by two people never shows one the other's draft.
// Where the storage is missing or refuses a write (private mode, a full
// quota) the drafts live in memory for the page's lifetime instead.

const PREFIX = 'peek.draft';
const MODES = new Set(['reply', 'note']);

export class DraftStore {
  /** storage: a Web Storage object (localStorage) or null; scope: who is signed in. */
  constructor(storage, scope = '') {
    this.storage = storage;
    this.scope = scope;
    this.memory = new Map();
  }

  key(ticket, part) {
    return `${PREFIX}:${encodeURIComponent(this.scope)}:${encodeURIComponent(ticket)}:${part}`;
  }

  read(key) {
    if (this.memory.has(key)) return this.memory.get(key);
    try {
      return this.storage ? this.storage.getItem(key) : null;
    } catch {
      return null;
    }
  }

  /** A null or empty value removes the key. */
  write(key, value) {
    const empty = value === null || value === '';
    try {
      if (this.storage) {
        if (empty) this.storage.removeItem(key);
        else this.storage.setItem(key, value);
        this.memory.delete(key);
        return;
      }
    } catch {
      // Refused (quota, private mode): the memory copy below wins over storage.
    }
    this.memory.set(key, empty ? null : value);
  }

  /** The draft of `ticket` in `mode`, or ''. */
  body(ticket, mode) {
    return this.read(this.key(ticket, mode)) ?? '';
  }

  /** Keeps `body` as the draft of `ticket` in `mode`; blank text removes it. */
  save(ticket, mode, body) {
    if (!MODES.has(mode)) return;
    this.write(this.key(ticket, mode), typeof body === 'string' && body.trim() !== '' ? body : null);
  }

  clear(ticket, mode) {
    this.save(ticket, mode, '');
  }

  /** The mode the technician last wrote in on `ticket`, or null. */
  lastMode(ticket) {
    const mode = this.read(this.key(ticket, 'mode'));
    return MODES.has(mode) ? mode : null;
  }

  rememberMode(ticket, mode) {
    if (MODES.has(mode)) this.write(this.key(ticket, 'mode'), mode);
  }

  /** Forgets every draft of this scope (an explicit sign-out on a shared browser). */
  clearAll() {
    const prefix = `${PREFIX}:${encodeURIComponent(this.scope)}:`;
    for (const key of [...this.memory.keys()]) if (key.startsWith(prefix)) this.memory.delete(key);
    try {
      if (!this.storage) return;
      const keys = [];
      for (let i = 0; i < this.storage.length; i += 1) {
        const key = this.storage.key(i);
        if (key && key.startsWith(prefix)) keys.push(key);
      }
      for (const key of keys) this.storage.removeItem(key);
    } catch {
      /* nothing stored to forget */
    }
  }
}

/** window.localStorage, or null where the browser refuses it. */
export function browserStorage() {
  try {
    return window.localStorage;
  } catch {
    return null;
  }
}
