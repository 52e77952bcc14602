// What the Schedules page needs beyond rendering: the form's draft ↔ the API's
// request bodies, the API's 422/403/404 answers placed on the form's fields,
// and due times shown in the schedule's own timezone. Pure, so it is tested
// without a browser (schedules.test.ts).

import { ApiError, errorMessage } from "../api/client";
import type { JsonObject, Schedule } from "../api/types";
import { flattenErrors } from "./definitionErrors";

/** What the user edits. `payload` is the textarea's text; it is parsed on submit. */
export interface ScheduleDraft {
  workflowRowId: string;
  cron: string;
  timezone: string;
  payload: string;
  enabled: boolean;
}

/** The request body of POST /workflows/{id}/schedules and PUT /schedules/{id}. */
export interface ScheduleBody {
  cron?: string;
  timezone?: string;
  payload?: JsonObject;
  enabled?: boolean;
}

/** The fields the API reports errors under (api/schedules/service.py check_cron, the schemas). */
export const SCHEDULE_FIELDS = ["cron", "timezone", "payload", "enabled"] as const;
export type ScheduleField = (typeof SCHEDULE_FIELDS)[number];
/** One message per form field; `workflow` is the picker, which only the console checks. */
export type FieldErrors = Partial<Record<ScheduleField | "workflow", string>>;

export type BuiltBody = { ok: true; body: ScheduleBody } | { ok: false; errors: FieldErrors };

export const DEFAULT_TIMEZONE = "UTC"; // the API's default too

export function newDraft(workflowRowId = ""): ScheduleDraft {
  return { workflowRowId, cron: "", timezone: DEFAULT_TIMEZONE, payload: "{}", enabled: true };
}

export function draftOf(schedule: Schedule): ScheduleDraft {
  return {
    workflowRowId: schedule.workflow_row_id,
    cron: schedule.cron,
    timezone: schedule.timezone,
    payload: JSON.stringify(schedule.payload ?? {}, null, 2),
    enabled: schedule.enabled,
  };
}

/** The payload text as a JSON object; blank means `{}` (every run gets the same payload). */
export function parsePayload(text: string): { ok: true; value: JsonObject } | { ok: false; message: string } {
  if (!text.trim()) return { ok: true, value: {} };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return { ok: false, message: `Not valid JSON: ${(error as Error).message}` };
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return { ok: false, message: 'The payload must be a JSON object, such as {"report": "daily"}.' };
  }
  return { ok: true, value: value as JsonObject };
}

/** The body of a create: every field, trimmed, so the API applies no default the user did not see. */
export function createBody(draft: ScheduleDraft): BuiltBody {
  const errors: FieldErrors = {};
  if (!draft.workflowRowId) errors.workflow = "Pick the workflow the schedule starts.";
  const payload = parsePayload(draft.payload);
  if (!payload.ok) errors.payload = payload.message;
  if (Object.keys(errors).length || !payload.ok) return { ok: false, errors };
  return {
    ok: true,
    body: {
      cron: draft.cron.trim(),
      timezone: draft.timezone.trim() || DEFAULT_TIMEZONE,
      payload: payload.value,
      enabled: draft.enabled,
    },
  };
}

/**
 * The body of an edit: only the fields that changed. The API keeps the omitted
 * ones, so a concurrent change to another field (someone toggling the schedule
 * while this dialog was open) is not overwritten with the stale value here.
 * An empty body means there is nothing to save.
 */
export function updateBody(schedule: Schedule, draft: ScheduleDraft): BuiltBody {
  const payload = parsePayload(draft.payload);
  if (!payload.ok) return { ok: false, errors: { payload: payload.message } };
  const body: ScheduleBody = {};
  const cron = draft.cron.trim();
  const timezone = draft.timezone.trim() || DEFAULT_TIMEZONE;
  if (cron !== schedule.cron) body.cron = cron;
  if (timezone !== schedule.timezone) body.timezone = timezone;
  if (canonicalJson(payload.value) !== canonicalJson(schedule.payload ?? {})) body.payload = payload.value;
  if (draft.enabled !== schedule.enabled) body.enabled = draft.enabled;
  return { ok: true, body };
}

/** JSON with object keys sorted, so that key order alone is not a change. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, item: unknown) =>
    item && typeof item === "object" && !Array.isArray(item)
      ? Object.fromEntries(Object.entries(item as JsonObject).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : item,
  );
}

/**
 * Split the `errors` of a 422 into messages per form field and the rest.
 * `{"cron": ["invalid cron expression '61 * * * *'"], "timezone": [...]}`
 * lands next to the cron and timezone inputs; a path below a field
 * (`payload.x`) stays on that field, prefixed with the rest of its path.
 */
export function placeScheduleErrors(errors: unknown): { fields: FieldErrors; other: string[] } {
  const fields: FieldErrors = {};
  const other: string[] = [];
  for (const { path, message } of flattenErrors(errors)) {
    const head = path.split(/[.[]/)[0] as ScheduleField;
    if ((SCHEDULE_FIELDS as readonly string[]).includes(head)) {
      const below = path.slice(head.length).replace(/^\./, "");
      const text = below ? `${below}: ${message}` : message;
      fields[head] = fields[head] ? `${fields[head]}; ${text}` : text;
    } else {
      other.push(path ? `${path}: ${message}` : message);
    }
  }
  return { fields, other };
}

export interface Failure {
  fields: FieldErrors;
  /** What to say under the form; null when the field messages say it all. */
  message: string | null;
}

/** What a failed create or save tells the user, and where. */
export function describeFailure(error: unknown, mode: "create" | "edit"): Failure {
  if (!(error instanceof ApiError)) return { fields: {}, message: errorMessage(error) };
  if (error.status === 422 && error.errors) {
    const { fields, other } = placeScheduleErrors(error.errors);
    if (!other.length && Object.keys(fields).length) return { fields, message: null };
    return { fields, message: other.length ? `${error.message}: ${other.join("; ")}` : error.message };
  }
  if (error.status === 403) {
    return { fields: {}, message: `${error.message} (403). Your role in this organization does not allow it.` };
  }
  if (error.status === 404 && mode === "create") {
    // The picked workflow was deleted (or the organization switched) since the list loaded.
    return { fields: { workflow: `${error.message}. Pick another workflow.` }, message: null };
  }
  return { fields: {}, message: errorMessage(error) };
}

/** A 6-field cron has seconds, so its due times are shown to the second. */
export function cronHasSeconds(cron: string): boolean {
  const text = cron.trim();
  return !text.startsWith("@") && text.split(/\s+/).length === 6;
}

const zonedFormats = new Map<string, Intl.DateTimeFormat>();

function zonedFormat(timeZone: string, withSeconds: boolean): Intl.DateTimeFormat {
  const key = `${timeZone}|${withSeconds}`;
  let format = zonedFormats.get(key);
  if (!format) {
    format = new Intl.DateTimeFormat("en", {
      weekday: "short",
      year: "numeric",
      month: "short",
      day: "numeric",
      hour: "2-digit",
      minute: "2-digit",
      second: withSeconds ? "2-digit" : undefined,
      hourCycle: "h23",
      timeZone,
      timeZoneName: "short",
    });
    zonedFormats.set(key, format);
  }
  return format;
}

/**
 * A due time (UTC from the API) as the wall-clock time of the schedule's zone:
 * "Mon, Jan 6, 2025, 09:00 GMT+1" for `0 9 * * 1-5` in Europe/Berlin. Falls
 * back to UTC for a zone this browser does not know.
 */
export function formatInZone(iso: string, timeZone: string, withSeconds = false): string {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "—";
  try {
    return zonedFormat(timeZone, withSeconds).format(date);
  } catch {
    return zonedFormat(DEFAULT_TIMEZONE, withSeconds).format(date);
  }
}

/** The browser's zone, offered as a one-click choice next to the timezone field. */
export function browserTimeZone(): string | null {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || null;
  } catch {
    return null;
  }
}

/** IANA names for the timezone field's suggestions (the API checks the value itself). */
export function timeZoneOptions(): string[] {
  const zones = typeof Intl.supportedValuesOf === "function" ? Intl.supportedValuesOf("timeZone") : [];
  return [DEFAULT_TIMEZONE, ...zones.filter((zone) => zone !== DEFAULT_TIMEZONE)];
}

/** Suggestions for the cron field: the three forms the API accepts (SPEC §2 triggers). */
export const CRON_EXAMPLES: { cron: string; label: string }[] = [
  { cron: "*/15 * * * *", label: "every 15 minutes" },
  { cron: "0 9 * * 1-5", label: "09:00 on weekdays" },
  { cron: "0 0 1 * *", label: "midnight on the 1st of each month" },
  { cron: "*/30 * * * * *", label: "every 30 seconds (6 fields, seconds first)" },
  { cron: "@hourly", label: "every hour" },
  { cron: "@daily", label: "every day at midnight" },
  { cron: "@weekly", label: "every Sunday at midnight" },
];
