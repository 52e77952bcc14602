// The one way the console talks to the API.
//
// Tokens: the access token lives only in memory (a module variable), so no
// script-readable storage holds a credential that works on its own for 15
// minutes. The refresh token is kept in sessionStorage so a reload of the tab
// can open a new session; it is per tab, dies with the tab, is rotated on
// every use (the API revokes the whole family if a rotated one is replayed)
// and is only ever sent to /auth/refresh and /auth/logout.
//
// A 401 triggers one refresh (shared by every request in flight) and one
// retry; if the refresh is refused the session is cleared and listeners send
// the user to the sign-in page.

import type { TokenPair } from "./types";

export const API_BASE = "/api/v1";
export const REFRESH_TOKEN_KEY = "iw.refresh_token";

export class ApiError extends Error {
  readonly status: number;
  readonly errors?: Record<string, unknown>;
  readonly body?: unknown;
  readonly retryAfter?: number;

  constructor(
    status: number,
    message: string,
    errors?: Record<string, unknown>,
    body?: unknown,
    retryAfter?: number,
  ) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.errors = errors;
    this.body = body;
    this.retryAfter = retryAfter;
  }
}

type RefreshOutcome = "ok" | "rejected" | "unreachable";

let accessToken: string | null = null;
let refreshing: Promise<RefreshOutcome> | null = null;
const signedOutListeners = new Set<() => void>();

function storage(): Storage | null {
  try {
    return window.sessionStorage;
  } catch {
    return null; // storage disabled: the session lasts as long as the page
  }
}

export const session = {
  store(pair: TokenPair): void {
    accessToken = pair.access_token;
    storage()?.setItem(REFRESH_TOKEN_KEY, pair.refresh_token);
  },
  clear(): void {
    accessToken = null;
    storage()?.removeItem(REFRESH_TOKEN_KEY);
  },
  accessToken(): string | null {
    return accessToken;
  },
  refreshToken(): string | null {
    return storage()?.getItem(REFRESH_TOKEN_KEY) ?? null;
  },
  onSignedOut(listener: () => void): () => void {
    signedOutListeners.add(listener);
    return () => signedOutListeners.delete(listener);
  },
};

function signedOut(): void {
  session.clear();
  signedOutListeners.forEach((listener) => listener());
}

/** Exchange the stored refresh token for a new pair; concurrent callers share one call. */
export function refreshSession(): Promise<RefreshOutcome> {
  if (!refreshing) {
    refreshing = (async (): Promise<RefreshOutcome> => {
      const token = session.refreshToken();
      if (!token) return "rejected";
      let response: Response;
      try {
        response = await fetch(`${API_BASE}/auth/refresh`, {
          method: "POST",
          headers: { "Content-Type": "application/json", Accept: "application/json" },
          body: JSON.stringify({ refresh_token: token }),
        });
      } catch {
        return "unreachable";
      }
      if (!response.ok) {
        return response.status === 401 ? "rejected" : "unreachable";
      }
      session.store((await response.json()) as TokenPair);
      return "ok";
    })().finally(() => {
      refreshing = null;
    });
  }
  return refreshing;
}

export type Query = Record<string, string | number | boolean | null | undefined | string[]>;

export function buildUrl(path: string, query?: Query): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query ?? {})) {
    if (value === undefined || value === null || value === "") continue;
    if (Array.isArray(value)) value.forEach((item) => params.append(key, item));
    else params.append(key, String(value));
  }
  const search = params.toString();
  return `${API_BASE}${path}${search ? `?${search}` : ""}`;
}

interface RequestOptions {
  body?: unknown;
  query?: Query;
  /** false for the public endpoints (login, register): no token, no refresh on 401. */
  auth?: boolean;
  signal?: AbortSignal;
}

async function send(method: string, url: string, options: RequestOptions): Promise<Response> {
  const headers: Record<string, string> = { Accept: "application/json" };
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  const token = options.auth === false ? null : accessToken;
  if (token) headers.Authorization = `Bearer ${token}`;
  try {
    return await fetch(url, {
      method,
      headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      signal: options.signal,
    });
  } catch (error) {
    if ((error as Error)?.name === "AbortError") throw error;
    throw new ApiError(0, "Cannot reach the API. Check your connection and try again.");
  }
}

async function parse<T>(response: Response): Promise<T> {
  if (response.status === 204) return undefined as T;
  const text = await response.text();
  let body: unknown = undefined;
  if (text) {
    try {
      body = JSON.parse(text);
    } catch {
      body = text;
    }
  }
  if (!response.ok) {
    const shaped = (typeof body === "object" && body !== null ? body : {}) as {
      message?: string;
      errors?: Record<string, unknown>;
    };
    const retryAfter = Number(response.headers.get("Retry-After")) || undefined;
    let message = shaped.message ?? `${response.status} ${response.statusText}`;
    if (response.status === 429 && retryAfter) message = `${message} (retry in ${retryAfter}s)`;
    throw new ApiError(response.status, message, shaped.errors, body, retryAfter);
  }
  return body as T;
}

export async function request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
  const url = buildUrl(path, options.query);
  let response = await send(method, url, options);
  if (response.status === 401 && options.auth !== false) {
    const outcome = await refreshSession();
    if (outcome === "ok") {
      response = await send(method, url, options);
      if (response.status === 401) signedOut();
    } else if (outcome === "rejected") {
      signedOut();
    }
  }
  return parse<T>(response);
}

export const api = {
  get: <T>(path: string, query?: Query, signal?: AbortSignal) =>
    request<T>("GET", path, { query, signal }),
  post: <T>(path: string, body?: unknown, options: Omit<RequestOptions, "body"> = {}) =>
    request<T>("POST", path, { ...options, body: body ?? {} }),
  put: <T>(path: string, body: unknown) => request<T>("PUT", path, { body }),
  del: <T = void>(path: string, query?: Query) => request<T>("DELETE", path, { query }),
};

/** A short human message for any error thrown by a query or mutation. */
export function errorMessage(error: unknown): string {
  if (error instanceof ApiError) return error.message;
  if (error instanceof Error) return error.message;
  return String(error);
}
