// HTTP calls the page makes besides the socket. Errors come back as
// ApiError with the server's own message (`{"error": {"code", "message"}}`).

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }
}

async function request(method, path, { token, body } = {}) {
  const headers = { Accept: 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
    });
  } catch (err) {
    throw new ApiError(0, 'network', `Cannot reach the server (${err.message})`);
  }
  let payload = null;
  const text = await response.text();
  if (text) {
    try {
      payload = JSON.parse(text);
    } catch {
      payload = null;
    }
  }
  if (!response.ok) {
    const error = payload && payload.error ? payload.error : {};
    throw new ApiError(response.status, error.code || `http_${response.status}`, error.message || `${response.status} ${response.statusText}`);
  }
  return payload ?? {};
}

/** Demo technicians, or null when the server is not in demo mode (404). */
export async function demoTechnicians() {
  try {
    const payload = await request('GET', '/v1/demo/technicians');
    return Array.isArray(payload.technicians) ? payload.technicians : [];
  } catch (err) {
    if (err instanceof ApiError && (err.status === 404 || err.status === 405)) return null;
    throw err;
  }
}

export function demoSignIn(technician) {
  return request('POST', '/v1/demo/sign-in', { body: { technician } });
}

export async function myTickets(token) {
  const payload = await request('GET', '/v1/me/tickets', { token });
  return Array.isArray(payload.tickets) ? payload.tickets : [];
}

export async function myTechnicians(token) {
  const payload = await request('GET', '/v1/me/technicians', { token });
  return Array.isArray(payload.technicians) ? payload.technicians : [];
}

/** The technician socket on the page's own origin. */
export function socketUrl(location = window.location) {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${location.host}/v1/ws`;
}

/** Reads the claims of a JWT without checking it (for display only). */
export function tokenClaims(token) {
  try {
    const part = String(token).split('.')[1];
    const json = atob(part.replace(/-/g, '+').replace(/_/g, '/'));
    return JSON.parse(json);
  } catch {
    return null;
  }
}
