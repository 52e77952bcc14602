import { describe, expect, it } from "vitest";
import { SseParser } from "./sse";

describe("SseParser", () => {
  it("reads the frames the API's streams send: retry, id, event, data, heartbeats", () => {
    const parser = new SseParser();
    const events = parser.feed(
      "retry: 2000\n\n" +
        'event: step\ndata: {"step_id":"check_total","status":"completed"}\n\n' +
        ": heartbeat\n\n" +
        'id: 3.1700000000000000\nevent: execution\ndata: {"version":3,"status":"waiting"}\n\n',
    );
    expect(parser.retry).toBe(2000);
    expect(events).toEqual([
      { event: "step", data: '{"step_id":"check_total","status":"completed"}', lastEventId: null },
      { event: "execution", data: '{"version":3,"status":"waiting"}', lastEventId: "3.1700000000000000" },
    ]);
    expect(parser.lastEventId).toBe("3.1700000000000000");
  });

  it("puts together frames split anywhere across chunks, CRLF split included", () => {
    const parser = new SseParser();
    const text = 'id: 7\r\nevent: end\r\ndata: {"status":"completed"}\r\n\r\n';
    const events = [];
    for (const char of text) events.push(...parser.feed(char));
    expect(events).toEqual([{ event: "end", data: '{"status":"completed"}', lastEventId: "7" }]);
  });

  it("joins data lines, defaults the type to message, keeps the id across events", () => {
    const parser = new SseParser();
    const events = parser.feed("id: 9\ndata: a\ndata:b\n\ndata: c\rdata\r\r");
    expect(events).toEqual([{ event: "message", data: "a\nb", lastEventId: "9" }]);
    // The last CR may be half a CRLF: the blank line counts once the next text shows it is not.
    expect(parser.feed(": heartbeat\n")).toEqual([{ event: "message", data: "c\n", lastEventId: "9" }]);
  });

  it("dispatches nothing for a frame without data, and nothing before its blank line", () => {
    const parser = new SseParser();
    expect(parser.feed("event: step\n\n")).toEqual([]);
    expect(parser.feed("id: 4\n\n")).toEqual([]);
    expect(parser.lastEventId).toBe("4");
    expect(parser.feed("event: step\ndata: {}\n")).toEqual([]);
    expect(parser.feed("\n")).toEqual([{ event: "step", data: "{}", lastEventId: "4" }]);
  });

  it("ignores unknown fields and a retry that is not a number", () => {
    const parser = new SseParser();
    expect(parser.feed("retry: soon\nfoo: bar\ndata: x\n\n")).toEqual([{ event: "message", data: "x", lastEventId: null }]);
    expect(parser.retry).toBeNull();
  });
});
