import { describe, expect, it } from "vitest";
import { ApiError } from "../api/client";
import type { Schedule } from "../api/types";
import {
  canonicalJson,
  createBody,
  cronHasSeconds,
  describeFailure,
  draftOf,
  formatInZone,
  newDraft,
  parsePayload,
  placeScheduleErrors,
  timeZoneOptions,
  updateBody,
} from "./schedules";

// A schedule as GET /schedules/{id} answers it (api/schedules/schemas.py ScheduleSchema).
const stored: Schedule = {
  id: "5c1e0000-0000-0000-0000-000000000001",
  workflow_id: "nightly_report",
  workflow_row_id: "9a7b0000-0000-0000-0000-000000000001",
  cron: "0 9 * * 1-5",
  timezone: "Europe/Berlin",
  payload: { report: "daily", recipients: ["ops@example.com"] },
  enabled: true,
  from_trigger: false,
  next_run_at: "2025-01-06T08:00:00+00:00",
  last_run_at: null,
  created_at: "2025-01-01T10:00:00+00:00",
  updated_at: "2025-01-01T10:00:00+00:00",
};

// The API's 422 for `61 * * * *` in `Mars/Olympus` (api/schedules/service.py check_cron).
const invalid = new ApiError(422, "The schedule is invalid", {
  cron: ["invalid cron expression '61 * * * *'"],
  timezone: ["unknown timezone 'Mars/Olympus'; use an IANA name such as 'Europe/Paris'"],
});

describe("createBody", () => {
  it("sends every field, trimmed, with the payload parsed", () => {
    const draft = { ...newDraft("row-1"), cron: "  @hourly ", timezone: " Europe/Berlin ", payload: '{"report": "daily"}', enabled: false };
    expect(createBody(draft)).toEqual({
      ok: true,
      body: { cron: "@hourly", timezone: "Europe/Berlin", payload: { report: "daily" }, enabled: false },
    });
  });

  it("treats a blank payload as {} and a blank timezone as UTC, the API's default", () => {
    const built = createBody({ ...newDraft("row-1"), cron: "*/5 * * * *", timezone: "", payload: "  " });
    expect(built).toEqual({ ok: true, body: { cron: "*/5 * * * *", timezone: "UTC", payload: {}, enabled: true } });
  });

  it("asks for a workflow and a JSON object before calling the API", () => {
    const built = createBody({ ...newDraft(), cron: "@daily", payload: "[1, 2]" });
    expect(built.ok).toBe(false);
    if (built.ok) return;
    expect(built.errors.workflow).toBe("Pick the workflow the schedule starts.");
    expect(built.errors.payload).toMatch(/must be a JSON object/);
  });
});

describe("parsePayload", () => {
  it("explains JSON syntax errors", () => {
    const parsed = parsePayload('{"report": }');
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.message).toMatch(/^Not valid JSON: /);
  });
});

describe("updateBody", () => {
  it("sends only what changed, so a concurrent edit of another field survives", () => {
    const draft = { ...draftOf(stored), cron: "@daily" };
    expect(updateBody(stored, draft)).toEqual({ ok: true, body: { cron: "@daily" } });
    expect(updateBody(stored, { ...draftOf(stored), enabled: false, timezone: "UTC" })).toEqual({
      ok: true,
      body: { timezone: "UTC", enabled: false },
    });
  });

  it("does not count reordered payload keys or whitespace as a change", () => {
    const draft = { ...draftOf(stored), payload: '{"recipients": ["ops@example.com"],\n "report": "daily"}', cron: " 0 9 * * 1-5 " };
    expect(updateBody(stored, draft)).toEqual({ ok: true, body: {} });
  });

  it("sends the whole new payload when it changed", () => {
    const draft = { ...draftOf(stored), payload: '{"report": "weekly"}' };
    expect(updateBody(stored, draft)).toEqual({ ok: true, body: { payload: { report: "weekly" } } });
  });

  it("stops at a payload that is not a JSON object", () => {
    expect(updateBody(stored, { ...draftOf(stored), payload: '"daily"' })).toMatchObject({ ok: false, errors: { payload: expect.any(String) } });
  });
});

describe("canonicalJson", () => {
  it("sorts keys at every depth but keeps array order", () => {
    expect(canonicalJson({ b: { d: 1, c: [2, 1] }, a: null })).toBe('{"a":null,"b":{"c":[2,1],"d":1}}');
  });
});

describe("placeScheduleErrors", () => {
  it("puts each message next to its field", () => {
    expect(placeScheduleErrors(invalid.errors)).toEqual({
      fields: {
        cron: "invalid cron expression '61 * * * *'",
        timezone: "unknown timezone 'Mars/Olympus'; use an IANA name such as 'Europe/Paris'",
      },
      other: [],
    });
  });

  it("keeps nested paths on their field and anything else apart", () => {
    const placed = placeScheduleErrors({
      payload: { items: { "0": ["Not a valid string."] } },
      cron: ["Longer than maximum length 100.", "second problem"],
      workflow: ["Unknown field."],
    });
    expect(placed.fields).toEqual({
      payload: "items[0]: Not a valid string.",
      cron: "Longer than maximum length 100.; second problem",
    });
    expect(placed.other).toEqual(["workflow: Unknown field."]);
  });
});

describe("describeFailure", () => {
  it("leaves a field-only 422 to the fields", () => {
    expect(describeFailure(invalid, "create")).toEqual({
      fields: placeScheduleErrors(invalid.errors).fields,
      message: null,
    });
  });

  it("says what could not be placed", () => {
    const error = new ApiError(422, "Unprocessable Entity", { _schema: ["Invalid input type."] });
    expect(describeFailure(error, "edit")).toEqual({ fields: {}, message: "Unprocessable Entity: _schema: Invalid input type." });
  });

  it("makes a 403 plain", () => {
    const failure = describeFailure(new ApiError(403, "Missing permission: schedule:create"), "create");
    expect(failure.message).toBe("Missing permission: schedule:create (403). Your role in this organization does not allow it.");
  });

  it("blames the workflow picker for a 404 on create, the schedule otherwise", () => {
    expect(describeFailure(new ApiError(404, "Workflow not found"), "create")).toEqual({
      fields: { workflow: "Workflow not found. Pick another workflow." },
      message: null,
    });
    expect(describeFailure(new ApiError(404, "Schedule not found"), "edit")).toEqual({ fields: {}, message: "Schedule not found" });
  });
});

describe("times", () => {
  it("shows a UTC due time as the wall clock of the schedule's zone", () => {
    // 0 9 * * 1-5 in Europe/Berlin: 09:00 local is 08:00 UTC in winter, 07:00 in summer.
    expect(formatInZone("2025-01-06T08:00:00+00:00", "Europe/Berlin")).toBe("Mon, Jan 6, 2025, 09:00 GMT+1");
    expect(formatInZone("2025-07-07T07:00:00+00:00", "Europe/Berlin")).toBe("Mon, Jul 7, 2025, 09:00 GMT+2");
    expect(formatInZone("2025-01-06T08:00:30+00:00", "UTC", true)).toBe("Mon, Jan 6, 2025, 08:00:30 UTC");
  });

  it("falls back to UTC for a zone the browser does not know", () => {
    expect(formatInZone("2025-01-06T08:00:00+00:00", "Mars/Olympus")).toBe("Mon, Jan 6, 2025, 08:00 UTC");
    expect(formatInZone("not a date", "UTC")).toBe("—");
  });

  it("knows which crons have seconds", () => {
    expect(cronHasSeconds("*/30 * * * * *")).toBe(true);
    expect(cronHasSeconds("0 9 * * 1-5")).toBe(false);
    expect(cronHasSeconds("@hourly")).toBe(false);
  });

  it("offers UTC first, then the IANA zones", () => {
    const zones = timeZoneOptions();
    expect(zones[0]).toBe("UTC");
    expect(zones).toContain("Europe/Berlin");
    expect(zones.filter((zone) => zone === "UTC")).toHaveLength(1);
  });
});
