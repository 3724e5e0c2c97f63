// The management API client (docs/management.md): a bearer token from
// POST /api/v1/login, kept in sessionStorage (gone with the tab), and one
// `request` that turns error bodies {"code","message"} into exceptions.

const TOKEN_KEY = "roost.token";
const USER_KEY = "roost.user";

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message || code || `HTTP ${status}`);
    this.status = status;
    this.code = code;
  }
}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function username() {
  return sessionStorage.getItem(USER_KEY) || "";
}

export function logout() {
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(USER_KEY);
}

/** Logs in; throws ApiError (401 BAD_CREDENTIALS, 429 TOO_MANY_ATTEMPTS). */
export async function login(user, password) {
  const body = await request("POST", "/api/v1/login", { username: user, password }, { anonymous: true });
  sessionStorage.setItem(TOKEN_KEY, body.token);
  sessionStorage.setItem(USER_KEY, body.username || user);
  return body;
}

/** One API call; a 401 on an authenticated call logs out and reports it. */
export async function request(method, path, body, { anonymous = false } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (!anonymous && token()) headers.Authorization = `Bearer ${token()}`;
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 204) return null;
  const text = await response.text();
  let parsed = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = null;
  }
  if (!response.ok) {
    if (response.status === 401 && !anonymous) {
      logout();
      window.dispatchEvent(new Event("roost:logged-out"));
    }
    throw new ApiError(response.status, parsed?.code, parsed?.message || text);
  }
  return parsed;
}

export const get = (path) => request("GET", path);
export const del = (path) => request("DELETE", path);
export const post = (path, body) => request("POST", path, body);

/** A query string of the non-empty values. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== "") q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : "";
}
