import { describe, expect, it } from "vitest";
import cartFraud from "../test/fixtures/cart-fraud-detection.json";
import highValue from "../test/fixtures/high-value-order-approval.json";
import { layoutDefinition, missingNodeId, TRIGGER_NODE_ID, type Layout } from "./graph";

function edge(layout: Layout, source: string, target: string) {
  return layout.edges.find((e) => e.source === source && e.target === target);
}

function node(layout: Layout, id: string) {
  const found = layout.nodes.find((n) => n.id === id);
  if (!found) throw new Error(`no node ${id}`);
  return found;
}

function overlaps(a: { x: number; y: number; width: number; height: number }, b: typeof a) {
  return a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
}

describe("layoutDefinition", () => {
  it("draws every step as a node below a trigger node", () => {
    const layout = layoutDefinition(highValue);
    expect(layout.nodes.map((n) => n.id)).toEqual([
      TRIGGER_NODE_ID,
      "check_order_value",
      "check_customer_tier",
      "require_approval",
      "allow_order",
    ]);
    expect(node(layout, TRIGGER_NODE_ID).detail).toBe("event order.checkout.initiated");
    expect(node(layout, "check_order_value").detail).toBe("order.total gte 10000");
    expect(node(layout, "require_approval").detail).toBe("block");
  });

  it("labels condition branches and links the trigger to the first step", () => {
    const layout = layoutDefinition(highValue);
    expect(edge(layout, TRIGGER_NODE_ID, "check_order_value")?.label).toBe("start");
    expect(edge(layout, "check_order_value", "check_customer_tier")).toMatchObject({
      kind: "on_true",
      label: "true",
    });
    expect(edge(layout, "check_order_value", "allow_order")).toMatchObject({
      kind: "on_false",
      label: "false",
    });
    expect(edge(layout, "check_customer_tier", "require_approval")?.label).toBe("false");
    expect(layout.edges).toHaveLength(5);
  });

  it("puts each step in a row below the steps that lead to it", () => {
    const layout = layoutDefinition(highValue);
    const y = (id: string) => node(layout, id).y;
    expect(y(TRIGGER_NODE_ID)).toBeLessThan(y("check_order_value"));
    expect(y("check_order_value")).toBeLessThan(y("check_customer_tier"));
    expect(y("check_customer_tier")).toBeLessThan(y("require_approval"));
    // allow_order is reached from check_customer_tier too, so it sits below it (longest path).
    expect(y("check_customer_tier")).toBeLessThan(y("allow_order"));
    const boxes = layout.nodes.filter((n) => !n.parentId);
    for (const a of boxes) for (const b of boxes) if (a !== b) expect(overlaps(a, b)).toBe(false);
  });

  it("routes an edge that skips rows around the boxes in between", () => {
    const layout = layoutDefinition(highValue);
    const skip = edge(layout, "check_order_value", "allow_order")!;
    const tier = node(layout, "check_customer_tier");
    expect(skip.points).toHaveLength(2);
    const [top, bottom] = skip.points!;
    expect(top.x).toBe(bottom.x);
    expect(top.y).toBeLessThan(tier.y);
    expect(bottom.y).toBeGreaterThan(tier.y + tier.height);
    expect(top.x < tier.x || top.x > tier.x + tier.width).toBe(true);
    // Edges between adjacent rows need no waypoints.
    expect(edge(layout, "check_order_value", "check_customer_tier")!.points).toBeUndefined();
  });

  it("draws a parallel step as a group holding its branches side by side", () => {
    const layout = layoutDefinition(cartFraud);
    const group = node(layout, "parallel_fraud_checks");
    expect(group).toMatchObject({ kind: "group", group: "parallel", detail: "parallel · all_must_pass" });
    const branches = layout.nodes.filter((n) => n.parentId === "parallel_fraud_checks");
    expect(branches.map((n) => n.id)).toEqual([
      "check_velocity",
      "check_high_value_items",
      "check_shipping_address",
      "check_external_fraud_api",
    ]);
    // Side by side, inside the group, parents listed before their children.
    const xs = branches.map((n) => n.x);
    expect([...xs].sort((a, b) => a - b)).toEqual(xs);
    expect(new Set(branches.map((n) => n.y)).size).toBe(1);
    for (const branch of branches) {
      expect(branch.x + branch.width).toBeLessThanOrEqual(group.width);
      expect(branch.y + branch.height).toBeLessThanOrEqual(group.height);
    }
    const index = (id: string) => layout.nodes.findIndex((n) => n.id === id);
    expect(index("parallel_fraud_checks")).toBeLessThan(index("check_velocity"));
    // The group's own edges leave from the group.
    expect(edge(layout, "parallel_fraud_checks", "allow_checkout")?.label).toBe("next");
    expect(edge(layout, "parallel_fraud_checks", "flag_for_review")?.label).toBe("error");
  });

  it("chains a foreach body in order inside its group", () => {
    const layout = layoutDefinition({
      trigger: { type: "manual" },
      steps: [
        {
          id: "each_line",
          type: "foreach",
          foreach: {
            items: "{{ order.lines }}",
            item_var: "line",
            steps: [
              { id: "price", type: "execute", execute: [{ type: "log", message: "x" }] },
              { id: "save", type: "execute", execute: [{ type: "create_record" }] },
            ],
          },
          next: "done",
          on_timeout: "late",
        },
        { id: "done", type: "action", action: { type: "allow" } },
        { id: "late", type: "action", action: "block" },
      ],
    });
    expect(node(layout, "each_line")).toMatchObject({ group: "foreach", detail: "foreach {{ order.lines }} as line" });
    expect(edge(layout, "price", "save")).toMatchObject({ kind: "then", label: "then" });
    expect(node(layout, "save").y).toBeGreaterThan(node(layout, "price").y);
    expect(node(layout, "save").parentId).toBe("each_line");
    expect(edge(layout, "each_line", "late")?.label).toBe("timeout");
    expect(node(layout, "late").detail).toBe("block");
  });

  it("shows a reference to an unknown step as a missing node", () => {
    const layout = layoutDefinition({
      trigger: { type: "event", event: "a" },
      steps: [{ id: "a", type: "action", action: { type: "allow" }, next: "nowhere" }],
    });
    const missing = node(layout, missingNodeId("nowhere"));
    expect(missing).toMatchObject({ kind: "missing", label: "nowhere" });
    expect(edge(layout, "a", missing.id)?.label).toBe("next");
  });

  it("marks the edge that closes a loop as a back edge and still terminates", () => {
    const layout = layoutDefinition({
      trigger: { type: "manual" },
      steps: [
        { id: "poll", type: "wait", wait: { duration: "5m" }, next: "check" },
        {
          id: "check",
          type: "condition",
          condition: { field: "done", operator: "eq", value: true },
          on_true: "finish",
          on_false: "poll",
        },
        { id: "finish", type: "action", action: { type: "allow" } },
      ],
    });
    const loop = edge(layout, "check", "poll")!;
    expect(loop).toMatchObject({ back: true, label: "false" });
    // Out of the bottom of `check`, up the right of every box, into the top of `poll`.
    const right = Math.max(...layout.nodes.map((n) => n.x + n.width));
    expect(loop.points).toHaveLength(4);
    expect(loop.points![1].x).toBeGreaterThan(right);
    expect(loop.points![0].y).toBeGreaterThan(node(layout, "check").y + node(layout, "check").height);
    expect(loop.points![3].y).toBeLessThan(node(layout, "poll").y);
    expect(edge(layout, "poll", "check")?.back).toBeFalsy();
    expect(node(layout, "check").y).toBeGreaterThan(node(layout, "poll").y);
  });

  it("copes with nothing to draw", () => {
    expect(layoutDefinition(undefined).nodes.map((n) => n.kind)).toEqual(["trigger"]);
    expect(layoutDefinition({ steps: [null, 3, { type: "action" }] }).nodes).toHaveLength(1);
  });
});
