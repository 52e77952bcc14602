// A Server-Sent Events (text/event-stream) parser, for a stream read with fetch:
// EventSource cannot send an Authorization header, so the console reads the
// live streams itself. Follows the WHATWG event-stream rules the API's streams
// use: `event:`, `data:` (several lines join with "\n"), `id:`, `retry:`,
// `:` comments (heartbeats), a blank line dispatches.

export interface SseEvent {
  /** `message` when the frame named none. */
  event: string;
  data: string;
  /** The last `id:` seen so far on the stream (what Last-Event-ID resumes from). */
  lastEventId: string | null;
}

export class SseParser {
  /** The last event id the stream set: send it as Last-Event-ID to resume. */
  lastEventId: string | null = null;
  /** The reconnection delay the stream asked for (`retry:`), in milliseconds. */
  retry: number | null = null;
  private buffer = "";
  private event = "";
  private data: string[] = [];

  /** Feed decoded text; returns the events completed by it, in order. */
  feed(chunk: string): SseEvent[] {
    this.buffer += chunk;
    const events: SseEvent[] = [];
    let start = 0;
    for (;;) {
      const end = lineEnd(this.buffer, start);
      if (end === null) break;
      const line = this.buffer.slice(start, end.at);
      start = end.next;
      const event = this.line(line);
      if (event) events.push(event);
    }
    this.buffer = this.buffer.slice(start);
    return events;
  }

  private line(line: string): SseEvent | null {
    if (line === "") return this.dispatch();
    if (line.startsWith(":")) return null; // a comment: the heartbeat
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") this.event = value;
    else if (field === "data") this.data.push(value);
    else if (field === "id" && !value.includes("\0")) this.lastEventId = value;
    else if (field === "retry" && /^\d+$/.test(value)) this.retry = Number(value);
    return null; // unknown fields are ignored, as the standard says
  }

  private dispatch(): SseEvent | null {
    const event = this.event || "message";
    const data = this.data;
    this.event = "";
    this.data = [];
    if (!data.length) return null; // no data: nothing to dispatch (an id alone still counts)
    return { event, data: data.join("\n"), lastEventId: this.lastEventId };
  }
}

/** Where the line starting at `from` ends (CRLF, LF or CR), or null while it is incomplete. */
function lineEnd(text: string, from: number): { at: number; next: number } | null {
  for (let i = from; i < text.length; i += 1) {
    const c = text[i];
    if (c === "\n") return { at: i, next: i + 1 };
    if (c === "\r") {
      // A CR last in the chunk may be the first half of a CRLF: wait for more.
      if (i + 1 === text.length) return null;
      return { at: i, next: text[i + 1] === "\n" ? i + 2 : i + 1 };
    }
  }
  return null;
}
