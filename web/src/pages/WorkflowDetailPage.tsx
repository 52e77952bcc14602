import * as Tabs from "@radix-ui/react-tabs";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { Link, useNavigate, useParams, useSearchParams } from "react-router";
import { api, ApiError } from "../api/client";
import type { DryRun, Execution, ExecutionPage, VersionPage, Workflow } from "../api/types";
import { useAuth } from "../auth/AuthContext";
import { ConfirmDialog, Modal } from "../components/Dialogs";
import { DryRunPanel } from "../components/DryRunPanel";
import { WorkflowGraph } from "../components/WorkflowGraph";
import {
  EmptyState,
  ErrorState,
  InlineError,
  JsonBlock,
  PageHeader,
  Skeleton,
  StatusBadge,
  TableSkeleton,
  Tag,
  Time,
} from "../components/ui";
import { formatDuration, shortId } from "../lib/format";
import { EnabledToggle, triggerSummary } from "./WorkflowsPage";

function RunDialog({ workflow, open, onOpenChange }: { workflow: Workflow; open: boolean; onOpenChange: (o: boolean) => void }) {
  const navigate = useNavigate();
  const [payload, setPayload] = useState("{\n  \n}");
  const [parseError, setParseError] = useState<string | null>(null);
  const run = useMutation({
    mutationFn: (body: unknown) => api.post<Execution>(`/workflows/${workflow.id}/execute`, { payload: body }),
    onSuccess: (execution) => navigate(`/executions/${execution.id}`),
  });
  return (
    <Modal open={open} onOpenChange={onOpenChange} title={`Run ${workflow.name}`} description="Start an execution now with this payload.">
      <form
        onSubmit={(event) => {
          event.preventDefault();
          try {
            const body = JSON.parse(payload || "{}");
            setParseError(null);
            run.mutate(body);
          } catch (error) {
            setParseError((error as Error).message);
          }
        }}
      >
        <div className="field">
          <label htmlFor="run-payload">Payload (JSON object)</label>
          <textarea id="run-payload" className="code" rows={8} value={payload} onChange={(e) => setPayload(e.target.value)} />
        </div>
        {parseError && <p className="inline-error">{parseError}</p>}
        <InlineError error={run.error} />
        <div className="dialog-actions">
          <button type="submit" className="btn btn-primary" disabled={run.isPending}>
            Start execution
          </button>
        </div>
      </form>
    </Modal>
  );
}

function VersionsTab({ workflow }: { workflow: Workflow }) {
  const versions = useQuery({
    queryKey: ["versions", workflow.id],
    queryFn: () => api.get<VersionPage>(`/workflows/${workflow.id}/versions`, { page_size: 100 }),
  });
  if (versions.isPending) return <TableSkeleton rows={3} columns={4} />;
  if (versions.isError) return <ErrorState error={versions.error} onRetry={() => versions.refetch()} />;
  return (
    <div className="table-wrap">
      <table className="table" aria-label="Versions">
        <thead>
          <tr>
            <th>Version</th>
            <th>Name</th>
            <th>Enabled</th>
            <th>Created</th>
          </tr>
        </thead>
        <tbody>
          {versions.data.versions.map((v) => (
            <tr key={v.id} aria-current={v.id === workflow.id ? "page" : undefined}>
              <td>
                <Link to={`/workflows/${v.id}`}>{v.version}</Link>
                {v.id === workflow.id && <span className="muted small"> (this one)</span>}
              </td>
              <td>{v.name}</td>
              <td>
                <EnabledToggle workflow={v} />
              </td>
              <td>
                <Time value={v.created_at} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function ExecutionsTab({ workflow }: { workflow: Workflow }) {
  const executions = useQuery({
    queryKey: ["executions", { workflow_id: workflow.workflow_id, page: 1 }],
    queryFn: () => api.get<ExecutionPage>("/executions", { workflow_id: workflow.workflow_id, page_size: 20 }),
    refetchInterval: 5000,
  });
  if (executions.isPending) return <TableSkeleton rows={3} columns={5} />;
  if (executions.isError) return <ErrorState error={executions.error} />;
  if (!executions.data.executions.length)
    return <EmptyState title="No executions yet">Send a matching event or run it manually.</EmptyState>;
  return (
    <div className="table-wrap">
      <table className="table" aria-label="Recent executions">
        <thead>
          <tr>
            <th>Execution</th>
            <th>Version</th>
            <th>Status</th>
            <th>Started</th>
            <th>Duration</th>
          </tr>
        </thead>
        <tbody>
          {executions.data.executions.map((e) => (
            <tr key={e.id}>
              <td>
                <Link to={`/executions/${e.id}`} className="mono">
                  {shortId(e.id)}
                </Link>
              </td>
              <td>{e.workflow_version}</td>
              <td>
                <StatusBadge status={e.status} /> {e.result && <StatusBadge status={e.result} />}
              </td>
              <td>
                <Time value={e.started_at ?? e.created_at} />
              </td>
              <td>{formatDuration(e.duration_ms)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <Link to={`/executions?workflow_id=${encodeURIComponent(workflow.workflow_id)}`}>All executions of this workflow →</Link>
    </div>
  );
}

export function WorkflowDetailPage() {
  const { id = "" } = useParams();
  const [params, setParams] = useSearchParams();
  const tab = params.get("tab") ?? "graph";
  const navigate = useNavigate();
  const queryClient = useQueryClient();
  const { can } = useAuth();
  const [runOpen, setRunOpen] = useState(false);
  const [deleteOpen, setDeleteOpen] = useState(false);
  const [force, setForce] = useState(false);
  const [dryRun, setDryRun] = useState<DryRun | null>(null);
  const [selected, setSelected] = useState<string | null>(null);
  const query = useQuery({ queryKey: ["workflow", id], queryFn: () => api.get<Workflow>(`/workflows/${id}`) });

  if (query.isPending)
    return (
      <>
        <PageHeader title={<span className="skeleton" style={{ display: "inline-block", width: 240, height: 24 }} />} />
        <Skeleton lines={8} />
      </>
    );
  if (query.isError)
    return (
      <ErrorState
        error={query.error}
        title={query.error instanceof ApiError && query.error.status === 404 ? "No such workflow" : "Could not load the workflow"}
        onRetry={() => query.refetch()}
      />
    );
  const workflow = query.data;
  const steps = (workflow.definition.steps ?? []) as Record<string, unknown>[];
  const selectedStep = selected ? findStep(steps, selected) : null;

  return (
    <>
      <PageHeader
        title={workflow.name}
        description={
          <>
            <span className="mono">{workflow.workflow_id}</span> · version {workflow.version} · {triggerSummary(workflow)}
            {workflow.description && <> · {workflow.description}</>}
          </>
        }
        actions={
          <>
            <EnabledToggle workflow={workflow} />
            {can("workflow:update") && (
              <Link className="btn" to={`/workflows/${workflow.id}/edit`}>
                Edit
              </Link>
            )}
            {can("schedule:read") && (
              <Link className="btn" to={`/schedules?workflow_id=${encodeURIComponent(workflow.workflow_id)}`}>
                View schedules
              </Link>
            )}
            {can("workflow:execute") && (
              <button type="button" className="btn" onClick={() => setRunOpen(true)} disabled={!workflow.enabled} title={workflow.enabled ? undefined : "Enable it first"}>
                Run now
              </button>
            )}
            {can("workflow:delete") && (
              <button type="button" className="btn btn-danger-outline" onClick={() => setDeleteOpen(true)}>
                Delete
              </button>
            )}
          </>
        }
      />
      <div className="tags">
        {workflow.tags.map((t) => (
          <Tag key={t}>{t}</Tag>
        ))}
        <span className="muted small">
          updated <Time value={workflow.updated_at} />
        </span>
      </div>

      <Tabs.Root value={tab} onValueChange={(value) => setParams({ tab: value }, { replace: true })} className="tabs">
        <Tabs.List className="tab-list" aria-label="Workflow views">
          <Tabs.Trigger value="graph">Graph</Tabs.Trigger>
          <Tabs.Trigger value="definition">Definition</Tabs.Trigger>
          <Tabs.Trigger value="versions">Versions</Tabs.Trigger>
          <Tabs.Trigger value="dry-run">Dry run</Tabs.Trigger>
          <Tabs.Trigger value="executions">Executions</Tabs.Trigger>
        </Tabs.List>
        <Tabs.Content value="graph" className="tab-panel">
          <div className="graph-with-side">
            <WorkflowGraph definition={workflow.definition} onSelectStep={setSelected} height={520} />
            <aside className="side-panel" aria-label="Selected step">
              {selectedStep ? (
                <>
                  <h3 className="mono">{selected}</h3>
                  <JsonBlock value={selectedStep} />
                </>
              ) : (
                <p className="muted">Select a step in the graph (or below) to see its definition.</p>
              )}
              <nav aria-label="Steps" className="step-picker">
                {allStepIds(steps).map((stepId) => (
                  <button
                    key={stepId}
                    type="button"
                    className={`tag tag-button mono${stepId === selected ? " selected" : ""}`}
                    aria-pressed={stepId === selected}
                    onClick={() => setSelected(stepId)}
                  >
                    {stepId}
                  </button>
                ))}
              </nav>
            </aside>
          </div>
        </Tabs.Content>
        <Tabs.Content value="definition" className="tab-panel">
          <JsonBlock
            value={{
              workflow_id: workflow.workflow_id,
              version: workflow.version,
              name: workflow.name,
              description: workflow.description,
              tags: workflow.tags,
              definition: workflow.definition,
            }}
          />
        </Tabs.Content>
        <Tabs.Content value="versions" className="tab-panel">
          <VersionsTab workflow={workflow} />
        </Tabs.Content>
        <Tabs.Content value="dry-run" className="tab-panel">
          <div className="graph-with-side">
            <WorkflowGraph definition={workflow.definition} overlay={{ path: dryRun?.path }} height={460} />
            <aside className="side-panel wide">
              <DryRunPanel workflowRowId={workflow.id} onResult={setDryRun} />
            </aside>
          </div>
        </Tabs.Content>
        <Tabs.Content value="executions" className="tab-panel">
          <ExecutionsTab workflow={workflow} />
        </Tabs.Content>
      </Tabs.Root>

      <RunDialog workflow={workflow} open={runOpen} onOpenChange={setRunOpen} />
      <ConfirmDialog
        open={deleteOpen}
        onOpenChange={setDeleteOpen}
        title={`Delete ${workflow.name} ${workflow.version}?`}
        description={
          <>
            This version is removed; other versions stay.{" "}
            <label className="checkbox">
              <input type="checkbox" checked={force} onChange={(e) => setForce(e.target.checked)} /> Also cancel its unfinished executions
            </label>
          </>
        }
        confirmLabel="Delete"
        onConfirm={async () => {
          await api.del(`/workflows/${workflow.id}`, force ? { force: true } : undefined);
          queryClient.invalidateQueries({ queryKey: ["workflows"] });
          navigate("/workflows");
        }}
      />
    </>
  );
}

function allStepIds(steps: Record<string, unknown>[]): string[] {
  return steps.flatMap((step) => {
    if (typeof step?.id !== "string") return [];
    const nested = ["parallel", "foreach"].flatMap((key) => {
      const block = step[key] as { steps?: Record<string, unknown>[] } | undefined;
      return block?.steps ? allStepIds(block.steps) : [];
    });
    return [step.id, ...nested];
  });
}

function findStep(steps: Record<string, unknown>[], id: string): Record<string, unknown> | null {
  for (const step of steps) {
    if (step?.id === id) return step;
    for (const key of ["parallel", "foreach"]) {
      const block = step?.[key] as { steps?: Record<string, unknown>[] } | undefined;
      const found = block?.steps ? findStep(block.steps, id) : null;
      if (found) return found;
    }
  }
  return null;
}
