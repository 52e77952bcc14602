import { useQuery } from "@tanstack/react-query";
import { useEffect, useRef, useState } from "react";
import { api } from "../api/client";
import { openLiveStream, streamUrl, type LiveState } from "../api/liveStream";
import type { SseEvent } from "./sse";

/** Where the live streams are: GET /streams/endpoint (null base_url: this origin). */
export function useStreamEndpoint() {
  return useQuery({
    queryKey: ["stream-endpoint"],
    queryFn: () => api.get<{ base_url: string | null }>("/streams/endpoint"),
    staleTime: Infinity,
    retry: false,
  });
}

/**
 * Follow a live stream (`path` under /api/v1; null: none) while the component
 * is mounted. `onChange` runs after events, at most once per `coalesceMs` (a
 * burst of step events asks for one re-read). Pages poll while the answer is
 * not "live": that is the fallback when the stream drops or is unavailable.
 */
export function useLiveStream(
  path: string | null,
  onChange: (events: SseEvent[]) => void,
  coalesceMs = 100,
): LiveState {
  const endpoint = useStreamEndpoint();
  const [state, setState] = useState<LiveState>("connecting");
  const latest = useRef(onChange);
  latest.current = onChange;
  const base = endpoint.data?.base_url;
  const ready = endpoint.isSuccess;

  useEffect(() => {
    if (!path || !ready) return;
    let pending: SseEvent[] = [];
    let timer: ReturnType<typeof setTimeout> | null = null;
    const flush = () => {
      timer = null;
      const events = pending;
      pending = [];
      latest.current(events);
    };
    const close = openLiveStream({
      url: streamUrl(base, path),
      onState: setState,
      onEvent: (event) => {
        pending.push(event);
        timer ??= setTimeout(flush, coalesceMs);
      },
    });
    return () => {
      close();
      if (timer) clearTimeout(timer);
    };
  }, [path, ready, base, coalesceMs]);

  if (!path) return "polling";
  if (endpoint.isError) return "polling"; // a server without streams: poll as before
  return state;
}
