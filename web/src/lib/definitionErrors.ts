// Map the API's 422 errors (`{"definition.steps[1].next": ["unknown step 'x'"]}`)
// onto what the user edits: which step (by id, however deeply nested), which
// field of it, and where in the JSON text.

import { formatPath, locate, parsePath, type Segment, type Span } from "./jsonPath";

export interface PinnedError {
  /** The path exactly as the API reported it. */
  path: string;
  message: string;
  /** The step the error is about (its id, or `steps[i]` when it has none). */
  stepId?: string;
  /** Index chain from the top-level steps: [1] or [3, 0] for steps[3].parallel.steps[0]. */
  stepIndexes?: number[];
  /** The part of the path inside the step (`next`, `execute[0].message`), if any. */
  field?: string;
  /** Where it is in the editor's text, when the text parses. */
  span?: Span;
  /** false when the path points below what the document has (e.g. a missing field). */
  exact?: boolean;
}

/** Flatten the `errors` member of the API's error shape into (path, message) pairs. */
export function flattenErrors(errors: unknown, prefix = ""): { path: string; message: string }[] {
  if (errors === null || errors === undefined) return [];
  if (typeof errors === "string") return [{ path: prefix, message: errors }];
  if (Array.isArray(errors)) {
    if (errors.every((item) => typeof item === "string")) {
      return (errors as string[]).map((message) => ({ path: prefix, message }));
    }
    return errors.flatMap((item, index) => flattenErrors(item, `${prefix}[${index}]`));
  }
  if (typeof errors === "object") {
    return Object.entries(errors as Record<string, unknown>).flatMap(([key, value]) => {
      const path = !prefix ? key : /^\d+$/.test(key) ? `${prefix}[${key}]` : `${prefix}.${key}`;
      return flattenErrors(value, path);
    });
  }
  return [{ path: prefix, message: String(errors) }];
}

function asRecord(value: unknown): Record<string, unknown> | undefined {
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}

/** The top-level steps list of a workflow document in either layout. */
export function stepsOf(doc: unknown): unknown[] {
  const record = asRecord(doc);
  const definition = asRecord(record?.definition);
  const steps = definition ? definition.steps : record?.steps;
  return Array.isArray(steps) ? steps : [];
}

interface StepTarget {
  stepId?: string;
  stepIndexes?: number[];
  rest: Segment[];
}

/** Walk `steps[i](.parallel|.foreach).steps[j]...` as deep as the path goes. */
export function resolveStep(segments: Segment[], doc: unknown): StepTarget {
  let rest = segments[0] === "definition" ? segments.slice(1) : segments;
  if (rest[0] !== "steps" || typeof rest[1] !== "number") return { rest };
  let list: unknown[] = stepsOf(doc);
  const indexes: number[] = [rest[1]];
  let step = asRecord(list[rest[1]]);
  rest = rest.slice(2);
  while (
    (rest[0] === "parallel" || rest[0] === "foreach") &&
    rest[1] === "steps" &&
    typeof rest[2] === "number"
  ) {
    const block = asRecord(step?.[rest[0]]);
    list = Array.isArray(block?.steps) ? (block!.steps as unknown[]) : [];
    indexes.push(rest[2]);
    step = asRecord(list[rest[2]]);
    rest = rest.slice(3);
  }
  const id = step?.id;
  const fallback = indexes.map((i, n) => (n === 0 ? `steps[${i}]` : `.steps[${i}]`)).join("");
  return { stepId: typeof id === "string" && id ? id : fallback, stepIndexes: indexes, rest };
}

export function pinErrors(errors: unknown, doc: unknown, text?: string): PinnedError[] {
  return flattenErrors(errors).map(({ path, message }) => {
    const segments = parsePath(path);
    const target = resolveStep(segments, doc);
    const pinned: PinnedError = { path, message };
    if (target.stepIndexes) {
      pinned.stepId = target.stepId;
      pinned.stepIndexes = target.stepIndexes;
      if (target.rest.length) pinned.field = formatPath(target.rest);
    } else if (segments.length) {
      pinned.field = formatPath(target.rest.length ? target.rest : segments);
    }
    if (text !== undefined) {
      const located = locate(text, segments);
      if (located) {
        pinned.span = located.span;
        pinned.exact = located.depth === segments.length;
      }
    }
    return pinned;
  });
}

/** Messages per step id, for drawing error badges on the graph. */
export function errorsByStep(pinned: PinnedError[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const error of pinned) {
    if (!error.stepId) continue;
    const text = error.field ? `${error.field}: ${error.message}` : error.message;
    (out[error.stepId] ??= []).push(text);
  }
  return out;
}

/** "Step manager_approval › next" or "Workflow › trigger.event". */
export function describeLocation(error: PinnedError): string {
  if (error.stepId) return `Step ${error.stepId}${error.field ? ` › ${error.field}` : ""}`;
  return error.field ? `Workflow › ${error.field}` : "Workflow";
}
