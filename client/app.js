// The Peek Live page: sign-in, the ticket queue, and the Peek slide-out.
//
// URL parameters: ?theme=dark|tinted|parchment, ?ticket=T-1001 (open that
// Peek at load). window.__peek exposes the client and the app for tests.

import { ApiError, demoSignIn, demoTechnicians, myTechnicians, myTickets, socketUrl, tokenClaims } from './api.js';
import { avatar, h, icon, replaceChildren } from './dom.js';
import { browserStorage, DraftStore } from './drafts.js';
import { PeekClient } from './peek-client.js';
import { PeekPanel } from './peek-view.js';
import { QueueView } from './queue-view.js';

const THEMES = ['dark', 'tinted', 'parchment'];
const TOKEN_KEY = 'peek.token';
const USER_KEY = 'peek.user';
const THEME_KEY = 'peek.theme';
/** The demo technician signed in through /v1/demo/sign-in, whose tokens the page can renew. */
const DEMO_KEY = 'peek.demo';

const state = {
  token: null,
  user: null,
  client: null,
  queue: null,
  technicians: [],
  panel: null,
  drafts: null,
  connection: 'idle',
};

const params = new URLSearchParams(window.location.search);
const $ = (id) => document.getElementById(id);

window.__peek = {
  get client() {
    return state.client;
  },
  get panel() {
    return state.panel;
  },
  get user() {
    return state.user;
  },
  get queue() {
    return state.queue;
  },
  openTicket: (id) => openTicket(id),
  closePeek: () => state.panel?.close(),
  setTheme: (theme) => setTheme(theme),
  signOut: () => signOut(),
  ready: false,
};

// ---------------------------------------------------------------------------
// Theme

function setTheme(theme, persist = true) {
  if (!THEMES.includes(theme)) return;
  document.documentElement.dataset.theme = theme;
  if (persist) {
    try {
      localStorage.setItem(THEME_KEY, theme);
    } catch {
      /* private mode */
    }
  }
  for (const button of document.querySelectorAll('[data-theme-choice]')) {
    button.setAttribute('aria-pressed', String(button.dataset.themeChoice === theme));
  }
}

function initialTheme() {
  const fromUrl = params.get('theme');
  if (THEMES.includes(fromUrl)) return fromUrl;
  try {
    const saved = localStorage.getItem(THEME_KEY);
    if (THEMES.includes(saved)) return saved;
  } catch {
    /* ignore */
  }
  return 'dark';
}

function buildThemeSwitcher() {
  const group = $('theme-switcher');
  replaceChildren(
    group,
    THEMES.map((theme) =>
      h(
        'button',
        {
          type: 'button',
          class: 'theme-choice',
          'data-theme-choice': theme,
          'data-testid': `theme-${theme}`,
          'aria-pressed': 'false',
          title: `${theme[0].toUpperCase()}${theme.slice(1)} theme`,
          onclick: () => setTheme(theme),
        },
        h('span', { class: `theme-swatch swatch-${theme}`, 'aria-hidden': 'true' }),
        theme[0].toUpperCase() + theme.slice(1),
      ),
    ),
  );
}

// ---------------------------------------------------------------------------
// Toasts

function toast(message, tone = 'info') {
  const region = $('toasts');
  const node = h('div', { class: `toast toast-${tone}`, role: tone === 'danger' ? 'alert' : 'status', 'data-testid': 'toast' }, icon(tone === 'danger' ? 'warning' : 'check'), h('span', null, message));
  region.append(node);
  setTimeout(() => {
    node.classList.add('is-leaving');
    setTimeout(() => node.remove(), 300);
  }, tone === 'danger' ? 6000 : 3000);
}

// ---------------------------------------------------------------------------
// Connection status indicator

const CONNECTION_TEXT = {
  idle: 'Offline',
  connecting: 'Connecting…',
  open: 'Live',
  reconnecting: 'Reconnecting…',
  unauthorized: 'Signed out',
  closed: 'Offline',
};

function renderConnection(status) {
  state.connection = status.state;
  const el = $('connection-status');
  el.dataset.state = status.state;
  el.title = status.reason ? `${CONNECTION_TEXT[status.state]} (${status.reason})` : CONNECTION_TEXT[status.state];
  replaceChildren(el, h('span', { class: 'status-dot' }), h('span', { class: 'connection-text' }, CONNECTION_TEXT[status.state] || status.state));
}

// ---------------------------------------------------------------------------
// Sign-in

function showView(name) {
  $('signin').hidden = name !== 'signin';
  $('queue').hidden = name !== 'queue';
  $('user-area').hidden = name !== 'queue';
  $('topnav').hidden = name !== 'queue';
  $('connection-status').hidden = name !== 'queue';
}

async function showSignIn(message) {
  showView('signin');
  const body = $('signin-body');
  const note = $('signin-message');
  note.textContent = message || '';
  note.hidden = !message;
  replaceChildren(body, h('div', { class: 'thread-loading' }, h('span', { class: 'spinner' }), 'Loading…'));
  let technicians = null;
  try {
    technicians = await demoTechnicians();
  } catch (err) {
    note.textContent = err.message;
    note.hidden = false;
  }
  if (technicians && technicians.length) {
    replaceChildren(
      body,
      h('p', { class: 'signin-lead' }, 'Demo workspace — choose who you are:'),
      h(
        'ul',
        { class: 'signin-list' },
        technicians.map((tech) =>
          h(
            'li',
            null,
            h(
              'button',
              { type: 'button', class: 'signin-tech', 'data-testid': `signin-tech-${tech.id}`, onclick: (e) => signInAs(tech, e.currentTarget) },
              avatar(tech, 'md'),
              h('span', { class: 'signin-name' }, tech.name, h('small', null, tech.id)),
              icon('chevron', 'signin-chevron'),
            ),
          ),
        ),
      ),
      tokenForm(true),
    );
  } else {
    replaceChildren(body, h('p', { class: 'signin-lead' }, 'Paste a technician token (from `peekd token --tenant T --user U`).'), tokenForm(false));
  }
}

function tokenForm(collapsed) {
  const input = h('textarea', { class: 'token-input', 'data-testid': 'token-input', rows: '3', placeholder: 'eyJhbGciOiJIUzI1NiIs…', 'aria-label': 'Technician token', spellcheck: 'false' });
  const form = h(
    'form',
    {
      class: 'token-form',
      onsubmit: (e) => {
        e.preventDefault();
        const token = input.value.trim();
        if (!token) return;
        const claims = tokenClaims(token);
        startSession(token, claims ? { id: claims.sub, name: claims.name || claims.sub, tenant: claims.tenant } : null);
      },
    },
    input,
    h('button', { type: 'submit', class: 'btn btn-primary', 'data-testid': 'token-submit' }, 'Sign in with token'),
  );
  if (!collapsed) return form;
  return h('details', { class: 'token-details' }, h('summary', null, 'Use a token instead'), form);
}

async function signInAs(tech, button) {
  button.disabled = true;
  try {
    const answer = await demoSignIn(tech.id);
    sessionStorage.setItem(DEMO_KEY, tech.id);
    startSession(answer.token, answer.user || { id: tech.id, name: tech.name });
  } catch (err) {
    button.disabled = false;
    const note = $('signin-message');
    note.textContent = err.message;
    note.hidden = false;
  }
}

function signOut(message) {
  state.token = null;
  state.panel?.close();
  state.queue?.close();
  state.queue = null;
  state.client?.close();
  state.client = null;
  state.user = null;
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(USER_KEY);
  sessionStorage.removeItem(DEMO_KEY);
  renderConnection({ state: 'idle' });
  showSignIn(message);
}

// ---------------------------------------------------------------------------
// Session: token -> client + queue

/**
 * The client's getToken: called before each connection and to refresh the
 * sign-in before it expires. A demo sign-in gets a fresh token from the demo
 * endpoint; a pasted token cannot be renewed, so it is handed back as is
 * (and the page asks to sign in again when it runs out).
 */
async function currentToken() {
  const demoTechnician = sessionStorage.getItem(DEMO_KEY);
  if (demoTechnician) {
    try {
      const answer = await demoSignIn(demoTechnician);
      state.token = answer.token;
      sessionStorage.setItem(TOKEN_KEY, answer.token);
    } catch {
      /* keep the token we have; the server says if it is no longer good */
    }
  }
  return state.token;
}

function startSession(token, user) {
  state.token = token;
  state.user = user;
  sessionStorage.setItem(TOKEN_KEY, token);
  if (user) sessionStorage.setItem(USER_KEY, JSON.stringify(user));
  renderUser();
  showView('queue');
  state.client?.close();
  const client = new PeekClient({
    url: socketUrl(),
    getToken: currentToken,
    onStatus: (status) => {
      renderConnection(status);
      if (status.state === 'open' && status.user) {
        state.user = status.user;
        sessionStorage.setItem(USER_KEY, JSON.stringify(status.user));
        renderUser();
      }
      if (status.state === 'unauthorized') signOut('Your sign-in was refused or has expired. Sign in again.');
    },
  });
  state.client = client;
  client.connect().catch(() => {
    /* unauthorized is handled by onStatus */
  });
  state.queue?.close();
  state.queue = new QueueView({
    client,
    me: user || {},
    els: { tiles: $('queue-tiles'), toolbar: $('queue-toolbar'), body: $('queue-body'), count: $('queue-count'), pager: $('queue-pager') },
    onOpen: (id, opener) => openTicket(id, opener),
    activeTicket: () => state.panel?.ticketId ?? null,
    fallback: () => myTickets(state.token).catch(() => []),
    onReady: () => {
      const wanted = params.get('ticket');
      if (wanted && !state.panel) openTicket(wanted);
      window.__peek.ready = true;
      document.documentElement.dataset.ready = '1';
    },
  });
  myTechnicians(token)
    .then((list) => {
      state.technicians = list;
    })
    .catch(() => {
      state.technicians = [];
    });
}

function renderUser() {
  const area = $('user-chip');
  const user = state.user;
  replaceChildren(area, user ? [avatar(user, 'sm'), h('span', { class: 'user-name', 'data-testid': 'user-name', 'data-id': user.id }, user.name || user.id)] : null);
}

// ---------------------------------------------------------------------------
// Peek

/** The signed-in technician's drafts (per tenant and technician, in localStorage). */
function draftsOf(user) {
  const scope = `${user?.tenant ?? ''}/${user?.id ?? ''}`;
  if (!state.drafts || state.drafts.scope !== scope) state.drafts = new DraftStore(browserStorage(), scope);
  return state.drafts;
}

function openTicket(ticketId, opener) {
  if (!state.client) return;
  if (state.panel) {
    if (state.panel.ticketId === ticketId) return;
    state.panel.close();
  }
  const row = state.queue?.row(ticketId) || null;
  const panel = new PeekPanel({
    client: state.client,
    ticketId,
    me: state.user || {},
    getTechnicians: () => state.technicians,
    getToken: () => state.token,
    drafts: draftsOf(state.user),
    toast,
    summary: row,
    // The queue row is live (queue-view.js): it follows the ticket by itself.
    onTicketChange: () => state.queue?.markSeen(ticketId),
    onOpenTicket: (id) => openTicket(id),
    onClose: () => {
      if (state.panel === panel) state.panel = null;
      markActiveRow(null);
      updateUrl(null);
      state.queue?.focusRow(ticketId);
    },
  });
  state.panel = panel;
  state.queue?.markSeen(ticketId);
  markActiveRow(ticketId);
  updateUrl(ticketId);
  panel.open(opener || document.querySelector(`[data-testid="open-${CSS.escape(ticketId)}"]`));
}

function markActiveRow(ticketId) {
  state.queue?.setActive(ticketId);
}

function updateUrl(ticketId) {
  const url = new URL(window.location.href);
  if (ticketId) url.searchParams.set('ticket', ticketId);
  else url.searchParams.delete('ticket');
  window.history.replaceState(null, '', url);
}

// ---------------------------------------------------------------------------
// Boot

function boot() {
  buildThemeSwitcher();
  setTheme(initialTheme(), params.has('theme') ? false : true);
  renderConnection({ state: 'idle' });
  $('sign-out').addEventListener('click', () => {
    // Only an explicit sign-out forgets the drafts; an expired sign-in keeps them for the next one.
    draftsOf(state.user).clearAll();
    signOut();
  });
  $('refresh-queue').addEventListener('click', () => state.queue?.refresh());
  // Chrome keeps a page we navigate away from alive in its back/forward
  // cache, socket included, so the server would go on showing this tab as a
  // viewer (and composing). Close the socket when the page is hidden; a
  // page restored from the cache starts afresh.
  window.addEventListener('pagehide', () => state.client?.close());
  window.addEventListener('pageshow', (event) => {
    if (event.persisted) location.reload();
  });
  const token = sessionStorage.getItem(TOKEN_KEY);
  let user = null;
  try {
    user = JSON.parse(sessionStorage.getItem(USER_KEY) || 'null');
  } catch {
    user = null;
  }
  if (token) startSession(token, user);
  else showSignIn();
}

boot();
