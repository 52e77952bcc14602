import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { session } from "./client";
import { openLiveStream, streamUrl, type LiveState } from "./liveStream";
import type { SseEvent } from "../lib/sse";

const encoder = new TextEncoder();

/** A stream response whose body is `frames`, then closed (a drop) unless `open`. */
function streamResponse(frames: string[], open = false): Response {
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      frames.forEach((frame) => controller.enqueue(encoder.encode(frame)));
      if (!open) controller.close();
    },
  });
  return new Response(body, { status: 200, headers: { "Content-Type": "text/event-stream" } });
}

function jsonResponse(status: number, body: unknown, headers: Record<string, string> = {}) {
  return new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json", ...headers } });
}

function follow(url = "http://streams:8081/api/v1/executions/e1/events") {
  const events: SseEvent[] = [];
  const states: LiveState[] = [];
  const close = openLiveStream({
    url,
    delayMs: 5,
    maxDelayMs: 20,
    onEvent: (event) => events.push(event),
    onState: (state) => states.push(state),
  });
  return { events, states, close };
}

const headersOf = (call: unknown[]) => (call[1] as RequestInit).headers as Record<string, string>;

describe("streamUrl", () => {
  it("is relative on this origin (a same-origin proxy) and absolute on the stream service", () => {
    expect(streamUrl(null, "/executions/stream")).toBe("/api/v1/executions/stream");
    expect(streamUrl(undefined, "/executions/stream")).toBe("/api/v1/executions/stream");
    expect(streamUrl("http://127.0.0.1:8081/", "/executions/e1/events")).toBe("http://127.0.0.1:8081/api/v1/executions/e1/events");
  });
});

describe("openLiveStream", () => {
  let fetchMock: ReturnType<typeof vi.fn>;
  beforeEach(() => {
    session.store({ access_token: "token-1", refresh_token: "refresh-1" } as never);
    fetchMock = vi.fn();
    vi.stubGlobal("fetch", fetchMock);
  });
  afterEach(() => {
    vi.unstubAllGlobals();
    session.clear();
  });

  it("sends the token, passes events on, and stops at `end`", async () => {
    fetchMock.mockResolvedValueOnce(
      streamResponse([
        "retry: 2000\n\n",
        'event: step\ndata: {"step_id":"a"}\n\n',
        'id: 2.5\nevent: execution\ndata: {"version":2}\n\n',
        'event: end\ndata: {"status":"completed"}\n\n',
      ]),
    );
    const run = follow();
    await vi.waitFor(() => expect(run.states.at(-1)).toBe("ended"));
    expect(run.states).toEqual(["connecting", "live", "ended"]);
    expect(run.events.map((e) => e.event)).toEqual(["step", "execution"]);
    expect(fetchMock).toHaveBeenCalledTimes(1);
    expect(fetchMock.mock.calls[0][0]).toBe("http://streams:8081/api/v1/executions/e1/events");
    expect(headersOf(fetchMock.mock.calls[0])).toEqual({ Accept: "text/event-stream", Authorization: "Bearer token-1" });
  });

  it("falls back to polling when the stream drops, then resumes from the last event id", async () => {
    fetchMock
      .mockResolvedValueOnce(streamResponse(['id: 3.10\nevent: execution\ndata: {"version":3}\n\n'])) // then drops
      .mockRejectedValueOnce(new TypeError("Failed to fetch")) // the service is down a while
      .mockResolvedValueOnce(streamResponse(['id: 4.20\nevent: execution\ndata: {"version":4}\n\n', "event: end\ndata: {}\n\n"]));
    const run = follow();
    await vi.waitFor(() => expect(run.states.at(-1)).toBe("ended"));
    expect(run.states).toEqual(["connecting", "live", "polling", "polling", "live", "ended"]);
    expect(run.events.map((e) => e.lastEventId)).toEqual(["3.10", "4.20"]);
    expect(headersOf(fetchMock.mock.calls[1])["Last-Event-ID"]).toBe("3.10");
    expect(headersOf(fetchMock.mock.calls[2])["Last-Event-ID"]).toBe("3.10");
  });

  it("polls while the stream is refused, waiting as long as Retry-After says", async () => {
    vi.useFakeTimers();
    try {
      fetchMock
        .mockResolvedValueOnce(jsonResponse(503, { code: 503, message: "feed down" }, { "Retry-After": "5" }))
        .mockResolvedValueOnce(streamResponse(["event: end\ndata: {}\n\n"]));
      const run = follow();
      await vi.advanceTimersByTimeAsync(10);
      expect(run.states).toEqual(["connecting", "polling"]);
      expect(fetchMock).toHaveBeenCalledTimes(1);
      await vi.advanceTimersByTimeAsync(4000);
      expect(fetchMock).toHaveBeenCalledTimes(1); // not before the 5 s it was told
      await vi.advanceTimersByTimeAsync(1100);
      expect(fetchMock).toHaveBeenCalledTimes(2);
      expect(run.states.at(-1)).toBe("ended");
    } finally {
      vi.useRealTimers();
    }
  });

  it("refreshes the session on `expired` and on a 401, then reconnects with the new token", async () => {
    fetchMock.mockImplementation(async (url: string, init?: RequestInit) => {
      if (url === "/api/v1/auth/refresh") {
        const n = fetchMock.mock.calls.filter((c) => c[0] === "/api/v1/auth/refresh").length;
        expect(JSON.parse(String(init?.body))).toEqual({ refresh_token: `refresh-${n}` });
        return jsonResponse(200, { access_token: `token-${n + 1}`, refresh_token: `refresh-${n + 1}` });
      }
      const streams = fetchMock.mock.calls.filter((c) => c[0] !== "/api/v1/auth/refresh").length;
      if (streams === 1) return streamResponse(['id: 1.1\nevent: execution\ndata: {"version":1}\n\n', "event: expired\ndata: {}\n\n"]);
      if (streams === 2) return jsonResponse(401, { code: 401, message: "token expired" });
      return streamResponse(["event: end\ndata: {}\n\n"]);
    });
    const run = follow();
    await vi.waitFor(() => expect(run.states.at(-1)).toBe("ended"));
    const streamCalls = fetchMock.mock.calls.filter((c) => c[0] !== "/api/v1/auth/refresh");
    expect(streamCalls.map((c) => headersOf(c).Authorization)).toEqual(["Bearer token-1", "Bearer token-2", "Bearer token-3"]);
    expect(streamCalls.map((c) => headersOf(c)["Last-Event-ID"])).toEqual([undefined, "1.1", "1.1"]);
    expect(run.events).toHaveLength(1);
  });

  it("starts over without a cursor the server refuses (400)", async () => {
    fetchMock
      .mockResolvedValueOnce(streamResponse(['id: 9.9\nevent: execution\ndata: {"version":9}\n\n']))
      .mockResolvedValueOnce(jsonResponse(400, { code: 400, message: "Last-Event-ID must be ..." }))
      .mockResolvedValueOnce(streamResponse(["event: end\ndata: {}\n\n"]));
    const run = follow();
    await vi.waitFor(() => expect(run.states.at(-1)).toBe("ended"));
    expect(headersOf(fetchMock.mock.calls[1])["Last-Event-ID"]).toBe("9.9");
    expect(headersOf(fetchMock.mock.calls[2])["Last-Event-ID"]).toBeUndefined();
  });

  it("stops for good when closed, without another request", async () => {
    fetchMock.mockResolvedValueOnce(streamResponse(["retry: 2000\n\n"], true));
    const run = follow();
    await vi.waitFor(() => expect(run.states).toEqual(["connecting", "live"]));
    run.close();
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(fetchMock).toHaveBeenCalledTimes(1);
    expect(run.states).toEqual(["connecting", "live"]);
  });
});
