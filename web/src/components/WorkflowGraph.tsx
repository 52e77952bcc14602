import {
  Background,
  BaseEdge,
  Controls,
  Handle,
  MarkerType,
  Position,
  ReactFlow,
  ReactFlowProvider,
  type Edge,
  type EdgeProps,
  type Node,
  type NodeProps,
} from "@xyflow/react";
import "@xyflow/react/dist/style.css";
import { memo, useMemo } from "react";
import { layoutDefinition, type LayoutInput, type LayoutNode } from "../lib/graph";

export interface GraphOverlay {
  /** Status per step id (from an execution's trace). */
  statuses?: Record<string, string>;
  /** The step an execution is on now. */
  current?: string | null;
  /** Validation messages per step id. */
  errors?: Record<string, string[]>;
  /** Steps a dry run went through, in order. */
  path?: string[];
}

type NodeData = LayoutNode & {
  status?: string;
  isCurrent?: boolean;
  errors?: string[];
  onPath?: boolean;
  selected?: boolean;
} & Record<string, unknown>;

type GraphNode = Node<NodeData>;

function StepNodeView({ data }: NodeProps<GraphNode>) {
  const errors = data.errors ?? [];
  return (
    <div
      className="graph-node"
      data-kind={data.kind}
      data-status={data.status}
      data-current={data.isCurrent || undefined}
      data-invalid={errors.length ? true : undefined}
      data-on-path={data.onPath || undefined}
      data-testid={`node-${data.stepId ?? data.id}`}
      title={[data.name, ...errors].filter(Boolean).join("\n") || undefined}
    >
      <Handle type="target" position={Position.Top} isConnectable={false} />
      <div className="graph-node-head">
        <span className="graph-node-type">{data.kind === "trigger" ? "trigger" : (data.stepType ?? "step")}</span>
        {data.status && <span className={`graph-node-status status-${data.status}`}>{data.status}</span>}
        {errors.length > 0 && (
          <span className="graph-node-errors" aria-label={`${errors.length} problem(s)`}>
            ⚠ {errors.length}
          </span>
        )}
      </div>
      <div className="graph-node-label">{data.kind === "trigger" ? data.detail : data.label}</div>
      {data.kind !== "trigger" && <div className="graph-node-detail">{data.name ?? data.detail}</div>}
      <Handle type="source" position={Position.Bottom} isConnectable={false} />
    </div>
  );
}

function GroupNodeView({ data }: NodeProps<GraphNode>) {
  const errors = data.errors ?? [];
  return (
    <div
      className="graph-group"
      data-group={data.group}
      data-status={data.status}
      data-current={data.isCurrent || undefined}
      data-invalid={errors.length ? true : undefined}
      data-on-path={data.onPath || undefined}
      data-testid={`node-${data.stepId}`}
      title={[data.name, ...errors].filter(Boolean).join("\n") || undefined}
    >
      <Handle type="target" position={Position.Top} isConnectable={false} />
      <div className="graph-group-head">
        <strong>{data.label}</strong>
        <span className="graph-node-detail">{data.detail}</span>
        {data.status && <span className={`graph-node-status status-${data.status}`}>{data.status}</span>}
        {errors.length > 0 && <span className="graph-node-errors">⚠ {errors.length}</span>}
      </div>
      <Handle type="source" position={Position.Bottom} isConnectable={false} />
    </div>
  );
}

const nodeTypes = {
  step: memo(StepNodeView),
  trigger: memo(StepNodeView),
  missing: memo(StepNodeView),
  // Not "group": React Flow styles its own built-in group type.
  stepgroup: memo(GroupNodeView),
};

type Point = { x: number; y: number };
type RoutedEdge = Edge<{ points?: Point[]; back?: boolean }, "routed">;

/** A vertical S-curve between two points (what React Flow's bezier edge draws top to bottom). */
function curve(from: Point, to: Point): string {
  if (from.x === to.x || from.y === to.y) return ` L ${to.x} ${to.y}`;
  const mid = (from.y + to.y) / 2;
  return ` C ${from.x} ${mid} ${to.x} ${mid} ${to.x} ${to.y}`;
}

/** Draws an edge through the layout's waypoints (rows it crosses, or a loop on the right). */
export function routedPath(source: Point, target: Point, points: Point[] = [], back = false): { path: string; label: Point } {
  const all = [source, ...points, target];
  let path = `M ${source.x} ${source.y}`;
  for (let i = 1; i < all.length; i++) {
    path += back ? ` L ${all[i].x} ${all[i].y}` : curve(all[i - 1], all[i]);
  }
  let label: Point;
  if (!points.length) label = { x: (source.x + target.x) / 2, y: (source.y + target.y) / 2 };
  else if (back) label = { x: points[1].x, y: (points[1].y + points[2].y) / 2 };
  else label = points[0];
  return { path, label };
}

function RoutedEdgeView({ id, sourceX, sourceY, targetX, targetY, data, markerEnd, style, label, labelStyle }: EdgeProps<RoutedEdge>) {
  const { path, label: at } = routedPath({ x: sourceX, y: sourceY }, { x: targetX, y: targetY }, data?.points, data?.back);
  return (
    <BaseEdge
      id={id}
      path={path}
      markerEnd={markerEnd}
      style={style}
      label={label}
      labelX={at.x}
      labelY={at.y}
      labelStyle={labelStyle}
      labelShowBg
      labelBgPadding={[4, 2]}
      labelBgBorderRadius={4}
    />
  );
}

const edgeTypes = { routed: RoutedEdgeView };

const EDGE_COLORS: Record<string, string> = {
  on_true: "#2f9e44",
  on_false: "#e8590c",
  on_error: "#e03131",
  on_timeout: "#f08c00",
  on_approve: "#2f9e44",
  on_reject: "#e03131",
  then: "#868e96",
  start: "#868e96",
  next: "#495057",
};

export function WorkflowGraph({
  definition,
  overlay = {},
  onSelectStep,
  height = 480,
  label = "Workflow graph",
}: {
  definition: LayoutInput | null | undefined;
  overlay?: GraphOverlay;
  onSelectStep?: (stepId: string) => void;
  height?: number;
  label?: string;
}) {
  const layout = useMemo(() => layoutDefinition(definition), [definition]);
  const { statuses, current, errors, path } = overlay;

  const nodes = useMemo<GraphNode[]>(() => {
    const onPath = new Set(path ?? []);
    return layout.nodes.map((n) => ({
      id: n.id,
      type: n.kind === "group" ? "stepgroup" : n.kind,
      position: { x: n.x, y: n.y },
      parentId: n.parentId,
      extent: n.parentId ? ("parent" as const) : undefined,
      draggable: false,
      connectable: false,
      width: n.width,
      height: n.height,
      style: { width: n.width, height: n.height },
      data: {
        ...n,
        status: n.stepId ? statuses?.[n.stepId] : undefined,
        isCurrent: !!current && n.stepId === current,
        errors: n.stepId ? errors?.[n.stepId] : undefined,
        onPath: n.stepId ? onPath.has(n.stepId) : false,
      },
    }));
  }, [layout, statuses, current, errors, path]);

  const edges = useMemo<Edge[]>(() => {
    const taken = new Set<string>();
    (path ?? []).forEach((step, i, all) => {
      if (i > 0) taken.add(`${all[i - 1]}->${step}`);
    });
    return layout.edges.map((e) => {
      const color = EDGE_COLORS[e.kind] ?? "#495057";
      const wasTaken = taken.has(`${e.source}->${e.target}`);
      return {
        id: e.id,
        source: e.source,
        target: e.target,
        label: e.label,
        type: "routed",
        data: { points: e.points, back: e.back },
        animated: wasTaken,
        className: `edge-${e.kind}${e.back ? " edge-back" : ""}${wasTaken ? " edge-taken" : ""}`,
        style: { stroke: color, strokeWidth: wasTaken ? 2.5 : 1.5, strokeDasharray: e.back ? "6 4" : undefined },
        labelStyle: { fill: color, fontWeight: 600, fontSize: 11 },
        markerEnd: { type: MarkerType.ArrowClosed, color, width: 16, height: 16 },
        zIndex: e.source.startsWith("__") ? 0 : 1,
      };
    });
  }, [layout, path]);

  const signature = layout.nodes.map((n) => n.id).join("|") + "/" + layout.edges.map((e) => e.id).join("|");
  return (
    <div className="graph" style={{ height }} role="figure" aria-label={label}>
      {/* A new set of steps remounts the flow, so it measures and fits it from scratch. */}
      <ReactFlowProvider key={signature}>
        <ReactFlow
          nodes={nodes}
          edges={edges}
          nodeTypes={nodeTypes}
          edgeTypes={edgeTypes}
          fitView
          fitViewOptions={{ padding: 0.15, maxZoom: 1.1 }}
          minZoom={0.2}
          maxZoom={2}
          nodesDraggable={false}
          nodesConnectable={false}
          zoomOnScroll={false}
          preventScrolling={false}
          onNodeClick={(_, node) => {
            const stepId = (node.data as NodeData).stepId;
            if (stepId && onSelectStep) onSelectStep(stepId);
          }}
        >
          <Background gap={20} size={1} />
          <Controls showInteractive={false} />
        </ReactFlow>
      </ReactFlowProvider>
    </div>
  );
}
