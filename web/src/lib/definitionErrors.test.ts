import { describe, expect, it } from "vitest";
import { describeLocation, errorsByStep, flattenErrors, pinErrors } from "./definitionErrors";
import { checkJson, JsonSyntaxError, locate, parsePath } from "./jsonPath";

const doc = {
  workflow_id: "orders",
  version: "1.0.0",
  name: "Orders",
  definition: {
    trigger: { type: "event", event: "order.created" },
    steps: [
      {
        id: "check_total",
        type: "condition",
        condition: { field: "order.total", operator: "gte", value: 1000 },
        on_true: "manager_approval",
        on_false: "allow",
      },
      { id: "manager_approval", type: "action", action: { type: "require_approval" }, next: "recrod" },
      {
        id: "checks",
        type: "parallel",
        parallel: {
          steps: [{ id: "fraud", type: "execute", execute: [{ type: "log", message: "{{ x" }] }],
        },
      },
      { type: "bogus" },
    ],
  },
};
const text = JSON.stringify(doc, null, 2);

// What POST /workflows/validate answered for this document (see api/errors.py, engine/errors.py).
const apiErrors = {
  "definition.steps[1].next": ["unknown step 'recrod'"],
  "definition.steps[2].parallel.steps[0].execute[0].message": [
    "template does not compile: unexpected end of template",
  ],
  "definition.steps[3]": ["step 'steps[3]' is unreachable from the first step 'check_total'"],
  "definition.steps[3].id": ["is required: a non-empty string"],
  "definition.trigger.event": ["must be at most 200 characters"],
  name: ["is required: a non-empty string"],
};

describe("parsePath", () => {
  it("splits dotted keys and indexes", () => {
    expect(parsePath("definition.steps[1].parallel.steps[0].next")).toEqual([
      "definition",
      "steps",
      1,
      "parallel",
      "steps",
      0,
      "next",
    ]);
    expect(parsePath("tags.0")).toEqual(["tags", 0]);
  });
});

describe("pinErrors", () => {
  const pinned = pinErrors(apiErrors, doc, text);
  const at = (path: string) => pinned.find((p) => p.path === path)!;

  it("maps a step path to the step's id and the field inside it", () => {
    expect(at("definition.steps[1].next")).toMatchObject({
      stepId: "manager_approval",
      stepIndexes: [1],
      field: "next",
      message: "unknown step 'recrod'",
      exact: true,
    });
    expect(describeLocation(at("definition.steps[1].next"))).toBe("Step manager_approval › next");
  });

  it("follows parallel and foreach bodies to the nested step", () => {
    expect(at("definition.steps[2].parallel.steps[0].execute[0].message")).toMatchObject({
      stepId: "fraud",
      stepIndexes: [2, 0],
      field: "execute[0].message",
    });
  });

  it("names a step without an id by its index and points at it when the field is missing", () => {
    expect(at("definition.steps[3]")).toMatchObject({ stepId: "steps[3]", exact: true });
    expect(at("definition.steps[3]").field).toBeUndefined();
    const missingId = at("definition.steps[3].id");
    expect(missingId).toMatchObject({ stepId: "steps[3]", field: "id", exact: false });
    // The deepest thing that exists: the step object itself.
    expect(text.slice(missingId.span!.start, missingId.span!.start + 1)).toBe("{");
  });

  it("keeps workflow-level errors on the workflow", () => {
    expect(at("name")).toMatchObject({ field: "name" });
    expect(at("name").stepId).toBeUndefined();
    expect(describeLocation(at("definition.trigger.event"))).toBe("Workflow › trigger.event");
  });

  it("pins each error to the line of its key in the text", () => {
    const next = at("definition.steps[1].next");
    const line = text.split("\n")[next.span!.line - 1];
    expect(line.trim()).toBe('"next": "recrod"');
    expect(text.slice(next.span!.start, next.span!.start + 6)).toBe('"next"');
    const message = at("definition.steps[2].parallel.steps[0].execute[0].message");
    expect(text.split("\n")[message.span!.line - 1].trim()).toBe('"message": "{{ x"');
  });

  it("understands the flat layout too", () => {
    const flat = { trigger: doc.definition.trigger, steps: doc.definition.steps };
    const flatText = JSON.stringify(flat, null, 2);
    const [error] = pinErrors({ "steps[0].on_false": ["unknown step 'allow'"] }, flat, flatText);
    expect(error).toMatchObject({ stepId: "check_total", field: "on_false", exact: true });
    expect(flatText.split("\n")[error.span!.line - 1].trim()).toBe('"on_false": "allow"');
  });

  it("groups messages by step for the graph", () => {
    expect(errorsByStep(pinned)).toEqual({
      manager_approval: ["next: unknown step 'recrod'"],
      fraud: ["execute[0].message: template does not compile: unexpected end of template"],
      "steps[3]": [
        "step 'steps[3]' is unreachable from the first step 'check_total'",
        "id: is required: a non-empty string",
      ],
    });
  });
});

describe("flattenErrors", () => {
  it("flattens marshmallow's nested errors into paths", () => {
    expect(flattenErrors({ tags: { "0": ["Not a valid string."] }, enabled: ["Not a valid boolean."] })).toEqual([
      { path: "tags[0]", message: "Not a valid string." },
      { path: "enabled", message: "Not a valid boolean." },
    ]);
  });
});

describe("JSON positions", () => {
  it("reports the line and column of a syntax error", () => {
    const broken = '{\n  "a": 1,\n  "b": \n}';
    expect(() => checkJson(broken)).toThrow(JsonSyntaxError);
    try {
      checkJson(broken);
    } catch (error) {
      expect((error as JsonSyntaxError).line).toBe(4);
    }
  });

  it("locates array items and nested keys", () => {
    const json = '{"steps": [{"id": "a"}, {"id": "b", "next": "a"}]}';
    const located = locate(json, ["steps", 1, "next"])!;
    expect(json.slice(located.span.start, located.span.end)).toBe('"next": "a"');
    expect(locate("{", ["a"])).toBeNull();
  });
});
