// Lay a workflow definition out as a graph: steps are nodes; next/on_true/
// on_false/on_error/on_timeout/on_approve/on_reject are labelled edges;
// parallel and foreach steps are groups holding their body. Pure: no React,
// no DOM; the WorkflowGraph component hands the result to React Flow.
//
// Layering is the usual Sugiyama recipe, kept small: back edges found by DFS
// are set aside, ranks are longest paths from the trigger, each rank is
// ordered by the barycenter of its predecessors, and rows are centred.

export const EDGE_KEYS = [
  "next",
  "on_true",
  "on_false",
  "on_error",
  "on_timeout",
  "on_approve",
  "on_reject",
] as const;

export type EdgeKey = (typeof EDGE_KEYS)[number];
export type EdgeKind = EdgeKey | "then" | "start";

export const EDGE_LABELS: Record<EdgeKind, string> = {
  next: "next",
  on_true: "true",
  on_false: "false",
  on_error: "error",
  on_timeout: "timeout",
  on_approve: "approved",
  on_reject: "rejected",
  then: "then",
  start: "start",
};

export const NODE_WIDTH = 220;
export const NODE_HEIGHT = 64;
export const GROUP_PADDING = 16;
export const GROUP_HEADER = 36;
const CHILD_GAP = 16;
const H_GAP = 48;
const V_GAP = 72;
const DUMMY_WIDTH = 36;

export type NodeKind = "trigger" | "step" | "group" | "missing";

export interface LayoutNode {
  id: string;
  kind: NodeKind;
  /** Relative to the parent group when parentId is set (React Flow's convention). */
  x: number;
  y: number;
  width: number;
  height: number;
  parentId?: string;
  stepId?: string;
  stepType?: string;
  group?: "parallel" | "foreach";
  label: string;
  detail?: string;
  name?: string;
}

export interface LayoutEdge {
  id: string;
  source: string;
  target: string;
  kind: EdgeKind;
  label: string;
  /** Goes back up the graph (a loop). */
  back?: boolean;
  /** Absolute waypoints for an edge that crosses rows: draw it through them. */
  points?: { x: number; y: number }[];
}

export interface Layout {
  nodes: LayoutNode[];
  edges: LayoutEdge[];
  width: number;
  height: number;
}

type Step = Record<string, unknown>;

export const TRIGGER_NODE_ID = "__trigger__";
export const missingNodeId = (stepId: string) => `__missing__:${stepId}`;

function asStep(value: unknown): Step | null {
  return typeof value === "object" && value !== null && !Array.isArray(value) && typeof (value as Step).id === "string"
    ? (value as Step)
    : null;
}

function groupKind(step: Step): "parallel" | "foreach" | undefined {
  if (step.type === "parallel" || (step.type === undefined && step.parallel)) return "parallel";
  if (step.type === "foreach" || (step.type === undefined && step.foreach)) return "foreach";
  return undefined;
}

function bodyOf(step: Step): Step[] {
  const kind = groupKind(step);
  if (!kind) return [];
  const block = step[kind] as Record<string, unknown> | undefined;
  const steps = block && Array.isArray(block.steps) ? block.steps : [];
  return steps.map(asStep).filter((s): s is Step => s !== null);
}

function short(value: unknown, max = 28): string {
  const text = typeof value === "string" ? value : JSON.stringify(value);
  if (text === undefined) return "";
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** One line saying what a step does: `order.total gte 1000`, `require_approval`, `notify, webhook`. */
export function describeStep(step: Step): string {
  const kind = groupKind(step);
  if (kind === "parallel") {
    const block = (step.parallel ?? {}) as Record<string, unknown>;
    return `parallel · ${String(block.strategy ?? "all_must_pass")}`;
  }
  if (kind === "foreach") {
    const block = (step.foreach ?? {}) as Record<string, unknown>;
    return `foreach ${short(block.items, 22)} as ${String(block.item_var ?? "item")}`;
  }
  switch (step.type) {
    case "condition": {
      if (typeof step.rule_id === "string") return `rule ${step.rule_id}`;
      const condition = (step.condition ?? {}) as Record<string, unknown>;
      for (const combinator of ["and", "or"]) {
        if (Array.isArray(condition[combinator])) {
          return `${combinator} of ${(condition[combinator] as unknown[]).length} conditions`;
        }
      }
      if (condition.not) return "not (…)";
      return `${String(condition.field ?? "?")} ${String(condition.operator ?? "?")} ${short(condition.value, 16)}`;
    }
    case "action": {
      const action = step.action as Record<string, unknown> | string | undefined;
      const type = typeof action === "string" ? action : (action?.type ?? action?.action);
      return String(type ?? "action");
    }
    case "execute": {
      const items = Array.isArray(step.execute) ? step.execute : [];
      const types = items.map((item) => String((item as Record<string, unknown>)?.type ?? "?"));
      return types.length ? short(types.join(", "), 30) : "no items";
    }
    case "wait": {
      const wait = (step.wait ?? {}) as Record<string, unknown>;
      if (wait.event) return `event ${short(wait.event, 22)}`;
      if (wait.duration) return `for ${String(wait.duration)}`;
      if (wait.until) return `until ${short(wait.until, 20)}`;
      return "wait";
    }
    default:
      return String(step.type ?? "unknown type");
  }
}

function describeTrigger(trigger: Record<string, unknown> | undefined): string {
  if (!trigger) return "no trigger";
  if (trigger.type === "event") return `event ${short(trigger.event ?? "?", 26)}`;
  if (trigger.type === "schedule") return `cron ${short(trigger.cron ?? "?", 24)}`;
  return String(trigger.type ?? "trigger");
}

interface Measured {
  step: Step;
  id: string;
  width: number;
  height: number;
  children: { measured: Measured; x: number; y: number }[];
}

/** Sizes of a step's box and, for groups, where each child sits inside it. */
function measure(step: Step, ids: IdAllocator): Measured {
  const id = ids.allocate(step.id as string);
  const kind = groupKind(step);
  if (!kind) return { step, id, width: NODE_WIDTH, height: NODE_HEIGHT, children: [] };
  const body = bodyOf(step).map((child) => measure(child, ids));
  const children: Measured["children"] = [];
  let width: number;
  let height: number;
  if (kind === "parallel") {
    let x = GROUP_PADDING;
    const tallest = Math.max(NODE_HEIGHT, ...body.map((m) => m.height));
    for (const m of body) {
      children.push({ measured: m, x, y: GROUP_HEADER });
      x += m.width + CHILD_GAP;
    }
    width = Math.max(NODE_WIDTH + 2 * GROUP_PADDING, x - CHILD_GAP + GROUP_PADDING);
    height = GROUP_HEADER + (body.length ? tallest : NODE_HEIGHT / 2) + GROUP_PADDING;
  } else {
    let y = GROUP_HEADER;
    const widest = Math.max(NODE_WIDTH, ...body.map((m) => m.width));
    for (const m of body) {
      children.push({ measured: m, x: GROUP_PADDING + (widest - m.width) / 2, y });
      y += m.height + CHILD_GAP * 2;
    }
    width = widest + 2 * GROUP_PADDING;
    height = (body.length ? y - CHILD_GAP * 2 : GROUP_HEADER + NODE_HEIGHT / 2) + GROUP_PADDING;
  }
  return { step, id, width, height, children };
}

class IdAllocator {
  private readonly used = new Set<string>();
  /** First node id per step id (the one references resolve to). */
  readonly byStepId = new Map<string, string>();

  allocate(stepId: string): string {
    let id = stepId;
    for (let n = 2; this.used.has(id) || id === TRIGGER_NODE_ID; n++) id = `${stepId}~${n}`;
    this.used.add(id);
    if (!this.byStepId.has(stepId)) this.byStepId.set(stepId, id);
    return id;
  }
}

export interface LayoutInput {
  trigger?: unknown;
  steps?: unknown;
}

export function layoutDefinition(definition: LayoutInput | null | undefined): Layout {
  const trigger = (definition?.trigger ?? undefined) as Record<string, unknown> | undefined;
  const rawSteps = Array.isArray(definition?.steps) ? (definition!.steps as unknown[]) : [];
  const ids = new IdAllocator();
  const top = rawSteps.map(asStep).filter((s): s is Step => s !== null).map((s) => measure(s, ids));

  // Every node, keyed by id, with its top-level ancestor (ranks are computed on top-level boxes).
  const nodes = new Map<string, LayoutNode>();
  const topOf = new Map<string, string>();
  const edges: LayoutEdge[] = [];
  const edgeIds = new Set<string>();
  const addEdge = (source: string, target: string, kind: EdgeKind) => {
    const id = `${source}->${target}:${kind}`;
    if (edgeIds.has(id)) return;
    edgeIds.add(id);
    edges.push({ id, source, target, kind, label: EDGE_LABELS[kind] });
  };

  const topIds: string[] = [TRIGGER_NODE_ID];
  nodes.set(TRIGGER_NODE_ID, {
    id: TRIGGER_NODE_ID,
    kind: "trigger",
    x: 0,
    y: 0,
    width: NODE_WIDTH,
    height: NODE_HEIGHT - 16,
    label: "trigger",
    detail: describeTrigger(trigger),
  });
  topOf.set(TRIGGER_NODE_ID, TRIGGER_NODE_ID);

  const ordered: LayoutNode[] = []; // parents before children, as React Flow wants
  const place = (m: Measured, parentId: string | undefined, x: number, y: number, root: string) => {
    const kind = groupKind(m.step);
    const node: LayoutNode = {
      id: m.id,
      kind: kind ? "group" : "step",
      x,
      y,
      width: m.width,
      height: m.height,
      parentId,
      stepId: m.step.id as string,
      stepType: typeof m.step.type === "string" ? m.step.type : undefined,
      group: kind,
      label: m.step.id as string,
      detail: describeStep(m.step),
      name: typeof m.step.name === "string" ? m.step.name : undefined,
    };
    nodes.set(m.id, node);
    topOf.set(m.id, root);
    ordered.push(node);
    for (const child of m.children) place(child.measured, m.id, child.x, child.y, root);
  };
  for (const m of top) {
    topIds.push(m.id);
    place(m, undefined, 0, 0, m.id);
  }

  const missing: LayoutNode[] = [];
  const resolve = (stepId: string): string => {
    const found = ids.byStepId.get(stepId);
    if (found) return found;
    const id = missingNodeId(stepId);
    if (!nodes.has(id)) {
      const node: LayoutNode = {
        id,
        kind: "missing",
        x: 0,
        y: 0,
        width: NODE_WIDTH,
        height: NODE_HEIGHT,
        stepId,
        label: stepId,
        detail: "unknown step",
      };
      nodes.set(id, node);
      topOf.set(id, id);
      topIds.push(id);
      missing.push(node);
    }
    return id;
  };

  if (top.length) addEdge(TRIGGER_NODE_ID, top[0].id, "start");
  const linkAll = (m: Measured) => {
    for (const key of EDGE_KEYS) {
      const target = m.step[key];
      if (typeof target === "string" && target) addEdge(m.id, resolve(target), key);
    }
    if (groupKind(m.step) === "foreach") {
      // A foreach body runs its steps in order.
      for (let i = 1; i < m.children.length; i++) {
        addEdge(m.children[i - 1].measured.id, m.children[i].measured.id, "then");
      }
    }
    m.children.forEach((child) => linkAll(child.measured));
  };
  top.forEach(linkAll);

  // Ranks on top-level boxes: edges between different top-level ancestors.
  const successors = new Map<string, string[]>(topIds.map((id) => [id, []]));
  const rankEdges: { edge: LayoutEdge; from: string; to: string }[] = [];
  for (const edge of edges) {
    const from = topOf.get(edge.source)!;
    const to = topOf.get(edge.target)!;
    if (from === to) continue;
    rankEdges.push({ edge, from, to });
    successors.get(from)!.push(to);
  }
  const back = findBackEdges(topIds, successors);
  for (const { edge, from, to } of rankEdges) {
    if (back.has(`${from}->${to}`)) edge.back = true;
  }
  const forward = rankEdges
    .filter(({ edge }) => !edge.back)
    .map(({ from, to }) => [from, to] as [string, string]);
  // Steps nothing leads to (unreachable ones) still sit below the trigger.
  const targets = new Set(forward.map(([, to]) => to));
  for (const id of topIds) {
    if (id !== TRIGGER_NODE_ID && !targets.has(id)) forward.push([TRIGGER_NODE_ID, id]);
  }
  const rank = longestPathRanks(topIds, forward);

  // Rows. An edge spanning several rows gets a narrow placeholder in each row it
  // crosses, so ordering keeps nodes out of its way and it can be drawn through them.
  const rows: string[][] = [];
  for (const id of topIds) (rows[rank.get(id)!] ??= []).push(id);
  for (let r = 0; r < rows.length; r++) rows[r] ??= [];
  const predecessors = new Map<string, string[]>(topIds.map((id) => [id, []]));
  const boxes = new Map<string, { x: number; y: number; width: number; height: number }>(
    [...nodes].filter(([, n]) => !n.parentId).map(([id, n]) => [id, n]),
  );
  const dummiesOf = new Map<LayoutEdge, string[]>();
  for (const { edge, from, to } of rankEdges) {
    if (edge.back) continue; // drawn as a loop on the right, below
    predecessors.get(to)!.push(from);
    const low = rank.get(from)!;
    const high = rank.get(to)!;
    if (high - low < 2) continue;
    const chain: string[] = [];
    for (let r = low + 1; r < high; r++) {
      const id = `__via__:${edge.id}:${r}`;
      rows[r].push(id);
      boxes.set(id, { x: 0, y: 0, width: DUMMY_WIDTH, height: 0 });
      predecessors.set(id, [chain.length ? chain[chain.length - 1] : from]);
      rank.set(id, r);
      chain.push(id);
    }
    predecessors.get(to)!.push(chain[chain.length - 1]);
    dummiesOf.set(edge, chain);
  }
  const position = new Map<string, number>();
  rows.forEach((row) => row.forEach((id, i) => position.set(id, i)));
  for (let pass = 0; pass < 3; pass++) {
    for (let r = 1; r < rows.length; r++) {
      const row = rows[r];
      const key = new Map(
        row.map((id) => {
          const above = (predecessors.get(id) ?? []).filter((p) => rank.get(p)! < r);
          const mean = above.length
            ? above.reduce((sum, p) => sum + position.get(p)!, 0) / above.length
            : position.get(id)!;
          return [id, mean];
        }),
      );
      row.sort((a, b) => key.get(a)! - key.get(b)! || position.get(a)! - position.get(b)!);
      row.forEach((id, i) => position.set(id, i));
    }
  }

  let y = 0;
  let minX = Infinity;
  let maxX = -Infinity;
  const rowSpans: { top: number; height: number }[] = [];
  for (const row of rows) {
    const placed = row.map((id) => boxes.get(id)!);
    const rowWidth = placed.reduce((sum, n) => sum + n.width, 0) + H_GAP * (placed.length - 1);
    let x = -rowWidth / 2;
    let rowHeight = 0;
    for (const box of placed) {
      box.x = x;
      box.y = y;
      x += box.width + H_GAP;
      rowHeight = Math.max(rowHeight, box.height);
      minX = Math.min(minX, box.x);
      maxX = Math.max(maxX, box.x + box.width);
    }
    rowSpans.push({ top: y, height: rowHeight });
    y += rowHeight + V_GAP;
  }
  const shift = Number.isFinite(minX) ? -minX : 0;
  for (const box of boxes.values()) box.x += shift;
  for (const [edge, chain] of dummiesOf) {
    edge.points = chain.flatMap((id) => {
      const box = boxes.get(id)!;
      const span = rowSpans[rank.get(id)!];
      const x = box.x + box.width / 2;
      return [
        { x, y: span.top - 8 },
        { x, y: span.top + span.height + 8 },
      ];
    });
  }
  // A loop goes back up on the right of every box in the rows it spans.
  const absolute = (id: string): { x: number; y: number } => {
    const node = nodes.get(id)!;
    if (!node.parentId) return { x: node.x, y: node.y };
    const parent = absolute(node.parentId);
    return { x: parent.x + node.x, y: parent.y + node.y };
  };
  let loops = 0;
  for (const { edge, from, to } of rankEdges) {
    if (!edge.back) continue;
    const source = nodes.get(edge.source)!;
    const target = nodes.get(edge.target)!;
    const s = absolute(source.id);
    const t = absolute(target.id);
    const [low, high] = [rank.get(to)!, rank.get(from)!].sort((a, b) => a - b);
    let right = Math.max(s.x + source.width, t.x + target.width);
    for (let r = low; r <= high; r++) {
      for (const id of rows[r]) right = Math.max(right, boxes.get(id)!.x + boxes.get(id)!.width);
    }
    right += 28 + 14 * loops++;
    const below = s.y + source.height + 18;
    const above = t.y - 18;
    edge.points = [
      { x: s.x + source.width / 2, y: below },
      { x: right, y: below },
      { x: right, y: above },
      { x: t.x + target.width / 2, y: above },
    ];
    maxX = Math.max(maxX, right - shift);
  }
  const topLevel = [nodes.get(TRIGGER_NODE_ID)!, ...ordered, ...missing];

  return {
    nodes: topLevel,
    edges,
    width: Number.isFinite(maxX) ? maxX - minX : 0,
    height: Math.max(0, y - V_GAP),
  };
}

/** Edges (`a->b`) that close a cycle in a depth-first walk from the roots, in order. */
function findBackEdges(ids: string[], successors: Map<string, string[]>): Set<string> {
  const state = new Map<string, "active" | "done">();
  const back = new Set<string>();
  const visit = (id: string) => {
    state.set(id, "active");
    for (const next of successors.get(id) ?? []) {
      const seen = state.get(next);
      if (seen === "active") back.add(`${id}->${next}`);
      else if (!seen) visit(next);
    }
    state.set(id, "done");
  };
  for (const id of ids) if (!state.has(id)) visit(id);
  return back;
}

/** Rank = length of the longest path from a source, on an acyclic edge list (Kahn's order). */
function longestPathRanks(ids: string[], edges: [string, string][]): Map<string, number> {
  const rank = new Map<string, number>(ids.map((id) => [id, 0]));
  const indegree = new Map<string, number>(ids.map((id) => [id, 0]));
  const out = new Map<string, string[]>(ids.map((id) => [id, []]));
  for (const [from, to] of edges) {
    out.get(from)!.push(to);
    indegree.set(to, indegree.get(to)! + 1);
  }
  const queue = ids.filter((id) => indegree.get(id) === 0);
  while (queue.length) {
    const id = queue.shift()!;
    for (const next of out.get(id)!) {
      rank.set(next, Math.max(rank.get(next)!, rank.get(id)! + 1));
      indegree.set(next, indegree.get(next)! - 1);
      if (indegree.get(next) === 0) queue.push(next);
    }
  }
  return rank;
}
