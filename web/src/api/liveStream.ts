// Follow one of the API's live streams (GET /executions/{id}/events,
// /executions/stream) with fetch, so the access token goes in the
// Authorization header (EventSource cannot send one). The caller learns the
// stream's state: "live" while events can arrive, "polling" whenever the stream
// is down or refused (the page then polls as it did before streams existed),
// "ended" once the server said `end`. A dropped stream is reopened with
// Last-Event-ID (the server re-reads what changed since from the database); an
// `expired` event (the access token that opened it ran out) or a 401 refreshes
// the session first.

import { API_BASE, refreshSession, session } from "./client";
import { SseParser, type SseEvent } from "../lib/sse";

export type LiveState = "connecting" | "live" | "polling" | "ended";

export interface LiveStreamOptions {
  /** The stream's URL (see streamUrl). */
  url: string;
  onEvent: (event: SseEvent) => void;
  onState: (state: LiveState) => void;
  /** First wait before reopening a refused stream; doubles up to maxDelayMs. */
  delayMs?: number;
  maxDelayMs?: number;
}

/** `base` is the stream service's public address, or null to stay on this origin. */
export function streamUrl(base: string | null | undefined, path: string): string {
  return `${(base ?? "").replace(/\/+$/, "")}${API_BASE}${path}`;
}

/** Open the stream; the returned function closes it for good. */
export function openLiveStream(options: LiveStreamOptions): () => void {
  const controller = new AbortController();
  void follow(options, controller.signal).catch((error: unknown) => {
    if (!controller.signal.aborted) {
      options.onState("polling");
      console.warn("live stream stopped; polling instead", error);
    }
  });
  return () => controller.abort();
}

type Outcome =
  | { kind: "ended" }
  | { kind: "reconnect"; refresh: boolean } // at once, after a refresh when asked
  | { kind: "retry"; afterMs?: number } // after a wait, polling meanwhile
  | { kind: "stop" }; // signed out: nothing to follow

async function follow(options: LiveStreamOptions, signal: AbortSignal): Promise<void> {
  const firstDelay = options.delayMs ?? 2000;
  const maxDelay = options.maxDelayMs ?? 30000;
  let delay = firstDelay;
  const parser = new SseParser();
  options.onState("connecting");
  while (!signal.aborted) {
    const outcome = await attempt(options, parser, signal, () => {
      delay = firstDelay; // the stream was open: a later drop starts the backoff again
    });
    if (signal.aborted) return;
    if (outcome.kind === "ended") {
      options.onState("ended");
      return;
    }
    if (outcome.kind === "stop") {
      options.onState("polling");
      return;
    }
    if (outcome.kind === "reconnect") {
      if (outcome.refresh && (await refreshSession()) === "rejected") {
        options.onState("polling");
        return;
      }
      continue;
    }
    options.onState("polling");
    const wait = outcome.afterMs ?? parser.retry ?? delay;
    delay = Math.min(maxDelay, delay * 2);
    await sleep(Math.max(wait, 0), signal);
  }
}

async function attempt(
  options: LiveStreamOptions,
  parser: SseParser,
  signal: AbortSignal,
  opened: () => void,
): Promise<Outcome> {
  const headers: Record<string, string> = { Accept: "text/event-stream" };
  const token = session.accessToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  if (parser.lastEventId) headers["Last-Event-ID"] = parser.lastEventId;
  let response: Response;
  try {
    response = await fetch(options.url, { headers, signal, cache: "no-store" });
  } catch {
    return { kind: "retry" }; // unreachable, or refused by CORS: both look alike here
  }
  if (response.status === 401) return token ? { kind: "reconnect", refresh: true } : { kind: "stop" };
  if (response.status === 400 && parser.lastEventId) {
    parser.lastEventId = null; // a cursor the server no longer takes: start over
    return { kind: "reconnect", refresh: false };
  }
  if (!response.ok || !response.body) {
    const retryAfter = Number(response.headers.get("Retry-After"));
    return { kind: "retry", afterMs: retryAfter > 0 ? retryAfter * 1000 : undefined };
  }
  options.onState("live");
  opened();
  return read(response.body, parser, options.onEvent, signal);
}

async function read(
  body: ReadableStream<Uint8Array>,
  parser: SseParser,
  onEvent: (event: SseEvent) => void,
  signal: AbortSignal,
): Promise<Outcome> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  try {
    for (;;) {
      let chunk: ReadableStreamReadResult<Uint8Array>;
      try {
        chunk = await reader.read();
      } catch {
        return { kind: "retry" }; // the connection dropped mid-stream
      }
      if (chunk.done) return { kind: "retry" }; // the server closed it (a restart): resume
      for (const event of parser.feed(decoder.decode(chunk.value, { stream: true }))) {
        if (event.event === "end") return { kind: "ended" };
        if (event.event === "expired") return { kind: "reconnect", refresh: true };
        onEvent(event);
      }
    }
  } finally {
    if (!signal.aborted) await reader.cancel().catch(() => undefined);
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      "abort",
      () => {
        clearTimeout(timer);
        resolve();
      },
      { once: true },
    );
  });
}
