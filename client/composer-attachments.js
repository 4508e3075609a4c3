// Attachments in the Peek: the composer's tray (picker, drag and drop,
// paste, upload progress, removable chips, limits checked before a byte is
// sent) and the attachment lists of the thread, whose links download through
// short-lived signed URLs (protocol.md §8.4 "Signed links"), never with the
// sign-in token in a query string.

import { h, icon, replaceChildren } from './dom.js';

/** The server's defaults; `welcome.limits` overrides them (protocol.md §3.3). */
export const DEFAULT_LIMITS = { attachment_bytes: 10 * 1024 * 1024, reply_attachment_bytes: 25 * 1024 * 1024 };

/** At most this many attachments on one message (protocol.md §4, `args.attachments`). */
export const MAX_ATTACHMENTS = 20;

const ALLOWED_TYPES = new Set([
  'application/pdf', 'application/zip', 'application/json', 'application/xml', 'application/octet-stream',
  'application/msword', 'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
  'application/vnd.ms-excel', 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
  'message/rfc822',
]);

/** The upload content type for a file: what the browser says, else octet-stream. */
export function uploadType(file) {
  return (file.type || 'application/octet-stream').toLowerCase();
}

/** The server's rule (AttachmentFiles.isAllowed), so a refusal shows at once. */
export function isAllowedType(type) {
  if (!type || type.includes('html') || type.includes('javascript') || type.includes('svg')) return false;
  return ALLOWED_TYPES.has(type) || type.startsWith('image/') || type.startsWith('text/');
}

/** "4.2 MB", "830 KB", "12 bytes" (binary units, as the limits are set). */
export function formatBytes(n) {
  if (!Number.isFinite(n)) return '';
  if (n >= 1024 * 1024) {
    const mib = n / (1024 * 1024);
    return `${mib >= 10 || Number.isInteger(mib) ? Math.round(mib) : mib.toFixed(1)} MB`;
  }
  if (n >= 1024) return `${Math.round(n / 1024)} KB`;
  return `${n} byte${n === 1 ? '' : 's'}`;
}

/** Why a file cannot be attached, as a sentence, or null. */
export function refusal(file, limits = DEFAULT_LIMITS) {
  const max = limits.attachment_bytes ?? DEFAULT_LIMITS.attachment_bytes;
  if (file.size === 0) return `${file.name} is empty; there is nothing to attach.`;
  if (file.size > max) return `${file.name} is ${formatBytes(file.size)}; attachments may be at most ${formatBytes(max)}.`;
  if (!isAllowedType(uploadType(file))) {
    return `${file.name} (${uploadType(file)}) cannot be attached: send images, PDFs, text, logs, office documents or zip files.`;
  }
  return null;
}

let nextChip = 1;

/**
 * The composer's attachment tray. options: {ticketId, getToken(), limits()
 * -> {attachment_bytes, reply_attachment_bytes}, onChange()}.
 * `element` goes in the composer; `button` opens the picker; `attach(files)`
 * takes dropped or pasted files.
 */
export class AttachmentTray {
  constructor(options) {
    this.ticketId = options.ticketId;
    this.getToken = options.getToken || (() => null);
    this.limits = options.limits || (() => DEFAULT_LIMITS);
    this.onChange = options.onChange || (() => {});
    this.items = [];
    this.input = h('input', { type: 'file', multiple: true, hidden: true, 'data-testid': 'attach-input', tabindex: '-1' });
    this.input.addEventListener('change', () => {
      this.attach([...this.input.files]);
      this.input.value = '';
    });
    this.button = h(
      'button',
      { type: 'button', class: 'btn btn-ghost btn-sm attach-btn', 'data-testid': 'attach-button', title: 'Attach files (or drop or paste them here)', onclick: () => this.input.click() },
      icon('link'),
      'Attach',
    );
    this.chips = h('ul', { class: 'attach-chips', 'data-testid': 'attach-chips', 'aria-label': 'Attachments' });
    this.error = h('p', { class: 'attach-error', 'data-testid': 'attach-error', role: 'alert', hidden: true });
    this.element = h('div', { class: 'attach-tray' }, this.input, this.chips, this.error);
  }

  /** Uploaded ids, in the order they were attached. */
  ids() {
    return this.items.filter((it) => it.state === 'done').map((it) => it.id);
  }

  /** Total bytes of the uploaded files. */
  bytes() {
    return this.items.filter((it) => it.state === 'done').reduce((sum, it) => sum + it.file.size, 0);
  }

  get uploading() {
    return this.items.some((it) => it.state === 'uploading');
  }

  get failed() {
    return this.items.some((it) => it.state === 'failed');
  }

  /** Checks every file at once, shows what was refused and why, uploads the rest. */
  attach(files) {
    const problems = [];
    for (const file of files) {
      const why = refusal(file, this.limits());
      if (why) {
        problems.push(why);
        continue;
      }
      if (this.items.length >= MAX_ATTACHMENTS) {
        problems.push(`${file.name} was not added: one message may carry at most ${MAX_ATTACHMENTS} attachments.`);
        continue;
      }
      const item = { key: nextChip++, file, state: 'uploading', loaded: 0, id: null, xhr: null, message: '' };
      this.items.push(item);
      this.upload(item);
    }
    this.showProblems(problems);
    this.render();
  }

  showProblems(problems) {
    this.error.hidden = problems.length === 0;
    replaceChildren(this.error, problems.length ? [icon('warning'), h('span', { 'data-testid': 'attach-error-text' }, problems.join(' '))] : null);
  }

  upload(item) {
    const xhr = new XMLHttpRequest();
    item.xhr = xhr;
    item.state = 'uploading';
    item.loaded = 0;
    item.progressEvents = 0;
    xhr.open('POST', `/v1/tickets/${encodeURIComponent(this.ticketId)}/attachments?filename=${encodeURIComponent(item.file.name)}`);
    const token = this.getToken();
    if (token) xhr.setRequestHeader('Authorization', `Bearer ${token}`);
    xhr.setRequestHeader('Content-Type', uploadType(item.file));
    xhr.upload.onprogress = (e) => {
      if (!e.lengthComputable) return;
      item.loaded = e.loaded;
      item.progressEvents += 1;
      this.renderProgress(item);
    };
    xhr.onload = () => {
      item.xhr = null;
      let payload = null;
      try {
        payload = JSON.parse(xhr.responseText);
      } catch {
        payload = null;
      }
      if (xhr.status === 201 && payload?.id) {
        item.state = 'done';
        item.id = payload.id;
        item.loaded = item.file.size;
      } else {
        item.state = 'failed';
        const max = this.limits().attachment_bytes ?? DEFAULT_LIMITS.attachment_bytes;
        item.message = xhr.status === 413 ? `Too large: attachments may be at most ${formatBytes(max)}.` : payload?.error?.message || `Upload failed (${xhr.status}).`;
      }
      this.render();
    };
    xhr.onerror = () => {
      item.xhr = null;
      item.state = 'failed';
      item.message = 'The upload did not reach the server; remove it and attach it again.';
      this.render();
    };
    xhr.send(item.file);
  }

  remove(item) {
    if (item.xhr) item.xhr.abort();
    this.items = this.items.filter((it) => it !== item);
    this.render();
  }

  /** After a send: the tray is empty again. */
  clear() {
    for (const item of this.items) if (item.xhr) item.xhr.abort();
    this.items = [];
    this.showProblems([]);
    this.render();
  }

  renderProgress(item) {
    const chip = this.chips.querySelector(`[data-key="${item.key}"]`);
    if (!chip) return;
    const pct = item.file.size ? Math.min(100, Math.round((100 * item.loaded) / item.file.size)) : 100;
    chip.dataset.progress = String(pct);
    chip.dataset.progressEvents = String(item.progressEvents || 0);
    const bar = chip.querySelector('progress');
    if (bar) bar.value = pct;
    const label = chip.querySelector('.chip-status');
    if (label && item.state === 'uploading') label.textContent = `${pct}%`;
  }

  render() {
    replaceChildren(
      this.chips,
      this.items.map((item) => {
        const pct = item.state === 'done' ? 100 : item.file.size ? Math.round((100 * item.loaded) / item.file.size) : 0;
        const status = item.state === 'uploading' ? `${pct}%` : item.state === 'done' ? formatBytes(item.file.size) : item.message;
        const chip = h(
          'li',
          {
            class: `attach-chip is-${item.state}`,
            'data-testid': 'attach-chip',
            'data-key': String(item.key),
            'data-state': item.state,
            'data-id': item.id || '',
            'data-progress': String(pct),
            'data-progress-events': String(item.progressEvents || 0),
            title: item.file.name,
          },
          h('span', { class: 'chip-name' }, item.file.name),
          item.state === 'uploading' ? h('progress', { max: '100', value: String(pct), 'aria-label': `Uploading ${item.file.name}` }) : null,
          h('span', { class: 'chip-status', 'data-testid': 'attach-chip-status' }, status),
          h(
            'button',
            { type: 'button', class: 'chip-remove', 'data-testid': 'attach-remove', 'aria-label': `Remove ${item.file.name}`, onclick: () => this.remove(item) },
            icon('close'),
          ),
        );
        return chip;
      }),
    );
    this.chips.hidden = this.items.length === 0;
    this.onChange();
  }
}

/**
 * Wires drag and drop and paste of files into `tray` on `target` (the
 * composer); returns a function that removes the listeners.
 */
export function acceptDroppedFiles(target, input, tray) {
  const hasFiles = (e) => [...(e.dataTransfer?.types || [])].includes('Files');
  const over = (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    target.classList.add('is-dropping');
  };
  const leave = (e) => {
    if (e.target === target || !target.contains(e.relatedTarget)) target.classList.remove('is-dropping');
  };
  const drop = (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    target.classList.remove('is-dropping');
    tray.attach([...e.dataTransfer.files]);
  };
  const paste = (e) => {
    const files = [...(e.clipboardData?.files || [])];
    if (files.length === 0) return;
    e.preventDefault();
    tray.attach(files.map((f, i) => (f.name && f.name !== 'image.png' ? f : new File([f], `pasted-${Date.now()}-${i}.${(f.type.split('/')[1] || 'bin').replace(/[^a-z0-9]/g, '')}`, { type: f.type }))));
  };
  target.addEventListener('dragover', over);
  target.addEventListener('dragenter', over);
  target.addEventListener('dragleave', leave);
  target.addEventListener('drop', drop);
  input.addEventListener('paste', paste);
  return () => {
    target.removeEventListener('dragover', over);
    target.removeEventListener('dragenter', over);
    target.removeEventListener('dragleave', leave);
    target.removeEventListener('drop', drop);
    input.removeEventListener('paste', paste);
  };
}

/**
 * Signed download links for one ticket's attachments, asked for when
 * needed and reused until shortly before they expire.
 */
export class AttachmentLinks {
  constructor({ ticketId, getToken }) {
    this.ticketId = ticketId;
    this.getToken = getToken || (() => null);
    this.cache = new Map();
  }

  async url(attachmentId) {
    const cached = this.cache.get(attachmentId);
    if (cached && cached.until > Date.now()) return cached.url;
    const token = this.getToken();
    const response = await fetch(`/v1/tickets/${encodeURIComponent(this.ticketId)}/attachments/${encodeURIComponent(attachmentId)}/link`, {
      method: 'POST',
      headers: token ? { Authorization: `Bearer ${token}`, Accept: 'application/json' } : { Accept: 'application/json' },
      cache: 'no-store',
    });
    const payload = await response.json().catch(() => null);
    if (!response.ok || !payload?.url) throw new Error(payload?.error?.message || `The download link could not be made (${response.status}).`);
    const expires = Date.parse(payload.expires_at);
    // Renewed a minute early: a link handed to the browser must still be good when it is followed.
    this.cache.set(attachmentId, { url: payload.url, until: Number.isFinite(expires) ? expires - 60_000 : Date.now() + 60_000 });
    return payload.url;
  }
}

/** Downloads through a fresh signed link: a plain click on a temporary <a download>. */
async function download(a, links, link, onError) {
  try {
    const url = await links.url(a.id);
    link.dataset.href = url;
    const anchor = h('a', { href: url, download: a.filename || 'attachment', hidden: true });
    document.body.append(anchor);
    anchor.click();
    anchor.remove();
  } catch (err) {
    onError(err.message || String(err));
  }
}

/**
 * A message's attachments: each a link that downloads through a signed
 * URL; images are previewed (loaded through a signed URL as well).
 */
export function attachmentList(attachments, links, onError = () => {}) {
  if (!Array.isArray(attachments) || attachments.length === 0) return null;
  return h(
    'ul',
    { class: 'msg-attachments' },
    attachments.map((a) => {
      const name = a.filename || a.name || 'attachment';
      const link = h(
        'a',
        { href: '#', class: 'attachment-link', 'data-testid': 'attachment-link', 'data-id': a.id || '', title: `Download ${name}` },
        icon('note'),
        h('span', { class: 'attachment-name' }, name),
        a.size != null ? h('span', { class: 'attachment-size muted' }, formatBytes(a.size)) : null,
      );
      link.addEventListener('click', (e) => {
        e.preventDefault();
        if (links && a.id) download(a, links, link, onError);
      });
      let preview = null;
      const type = String(a.content_type || '').toLowerCase();
      if (links && a.id && type.startsWith('image/') && isAllowedType(type)) {
        preview = h('img', { class: 'attachment-preview', 'data-testid': 'attachment-preview', alt: name, loading: 'lazy' });
        links.url(a.id).then(
          (url) => {
            preview.src = url;
          },
          () => {
            preview.remove();
          },
        );
        preview.addEventListener('click', () => link.click());
      }
      return h('li', { class: 'attachment', 'data-testid': 'attachment' }, preview, link);
    }),
  );
}
