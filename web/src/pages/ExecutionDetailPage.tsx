import * as Tabs from "@radix-ui/react-tabs";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { Link, useNavigate, useParams } from "react-router";
import { api, ApiError } from "../api/client";
import { FINAL_STATUSES, type ApprovalPage, type Execution, type Trace, type Workflow } from "../api/types";
import { useAuth } from "../auth/AuthContext";
import { ReasonDialog } from "../components/Dialogs";
import { statusesByStep, TraceView } from "../components/TraceView";
import { WorkflowGraph } from "../components/WorkflowGraph";
import { Countdown, ErrorState, InlineError, JsonBlock, PageHeader, Skeleton, StatusBadge, Time } from "../components/ui";
import { formatDuration, shortId } from "../lib/format";
import { useLiveStream } from "../lib/useLiveStream";
import type { LiveState } from "../api/liveStream";

// While the live stream is open the page re-reads on its events instead of polling.
const followed = (live: LiveState) => live === "live" || live === "ended";

function PendingApproval({ execution, live }: { execution: Execution; live: LiveState }) {
  const { can } = useAuth();
  const queryClient = useQueryClient();
  const [deciding, setDeciding] = useState<null | "approve" | "reject">(null);
  const approvals = useQuery({
    queryKey: ["approvals", "for-execution", execution.id],
    queryFn: () => api.get<ApprovalPage>("/approvals", { execution_id: execution.id, status: "pending", page_size: 100 }),
    enabled: execution.status === "waiting" && can("approval:read"),
    refetchInterval: followed(live) ? false : 4000,
    retry: false,
  });
  const pending = approvals.data?.approvals.filter((a) => a.execution_id === execution.id && a.status === "pending") ?? [];
  if (!pending.length) return null;
  const approval = pending[0];
  return (
    <section className="card approval-callout" aria-label="Pending approval">
      <div>
        <strong>Waiting for approval</strong> at <span className="mono">{approval.step_id}</span>
        {approval.approver_role && <> by <span className="tag">{approval.approver_role}</span></>} ·{" "}
        <Countdown until={approval.expires_at} />
        {approval.reason && <p className="muted">{approval.reason}</p>}
      </div>
      <div className="actions">
        <button type="button" className="btn btn-primary" onClick={() => setDeciding("approve")} disabled={!can("approval:approve")}>
          Approve
        </button>
        <button type="button" className="btn btn-danger-outline" onClick={() => setDeciding("reject")} disabled={!can("approval:reject")}>
          Reject
        </button>
      </div>
      <ReasonDialog
        open={deciding !== null}
        onOpenChange={(open) => !open && setDeciding(null)}
        title={deciding === "approve" ? "Approve" : "Reject"}
        confirmLabel={deciding === "approve" ? "Approve" : "Reject"}
        tone={deciding === "approve" ? "primary" : "danger"}
        onSubmit={async (reason) => {
          await api.post(`/approvals/${approval.id}/${deciding}`, reason ? { reason } : {});
          await queryClient.invalidateQueries({ queryKey: ["approvals"] });
          await queryClient.invalidateQueries({ queryKey: ["trace", execution.id] });
        }}
      />
    </section>
  );
}

export function ExecutionDetailPage() {
  const { id = "" } = useParams();
  const navigate = useNavigate();
  const queryClient = useQueryClient();
  const { can } = useAuth();
  const [tab, setTab] = useState("timeline");
  const [cancelOpen, setCancelOpen] = useState(false);
  // Each committed change re-reads the trace: the timeline has one source, whether
  // the stream or the polling below (its fallback) notices the change.
  const live = useLiveStream(id ? `/executions/${id}/events` : null, (events) => {
    queryClient.invalidateQueries({ queryKey: ["trace", id] });
    if (events.some((event) => event.event === "execution")) {
      queryClient.invalidateQueries({ queryKey: ["approvals", "for-execution", id] });
    }
  });
  const trace = useQuery({
    queryKey: ["trace", id],
    queryFn: () => api.get<Trace>(`/executions/${id}/trace`),
    // Poll while the execution can still change and no stream tells us when it does.
    refetchInterval: (q) =>
      followed(live) || (q.state.data && FINAL_STATUSES.has(q.state.data.execution.status)) ? false : 1500,
  });
  const execution = trace.data?.execution;
  const workflow = useQuery({
    queryKey: ["workflow", execution?.workflow_row_id],
    queryFn: () => api.get<Workflow>(`/workflows/${execution!.workflow_row_id}`),
    enabled: !!execution?.workflow_row_id,
    retry: false,
  });
  const control = useMutation({
    mutationFn: ({ action, body }: { action: string; body?: unknown }) => api.post<Execution>(`/executions/${id}/${action}`, body ?? {}),
    onSuccess: (updated, { action }) => {
      queryClient.invalidateQueries({ queryKey: ["trace", id] });
      queryClient.invalidateQueries({ queryKey: ["executions"] });
      if (action === "retry" && updated.id !== id) navigate(`/executions/${updated.id}`);
    },
  });

  if (trace.isPending) return <Skeleton lines={10} />;
  if (trace.isError)
    return (
      <ErrorState
        error={trace.error}
        title={trace.error instanceof ApiError && trace.error.status === 404 ? "No such execution" : "Could not load the execution"}
        onRetry={() => trace.refetch()}
      />
    );
  const ex = trace.data.execution;
  const final = FINAL_STATUSES.has(ex.status);
  const statuses = statusesByStep(trace.data.steps);
  if (ex.current_step_id && (ex.status === "waiting" || ex.status === "paused")) statuses[ex.current_step_id] = ex.status;

  return (
    <>
      <PageHeader
        title={
          <>
            Execution <span className="mono">{shortId(ex.id)}</span> <StatusBadge status={ex.status} />{" "}
            {ex.result && <StatusBadge status={ex.result} />}
          </>
        }
        description={
          <>
            <Link to={`/workflows/${ex.workflow_row_id}`} className="mono">
              {ex.workflow_id}
            </Link>{" "}
            v{ex.workflow_version} · {ex.trigger_type}
            {ex.trigger_event && <> · event {ex.trigger_event}</>}
            {!final && (
              <>
                {" "}
                ·{" "}
                <span data-testid="live-mode" data-mode={live} title={live === "live" ? "Updates arrive as they are committed" : "Re-reading every 1.5 s"}>
                  <span className="live-dot" aria-hidden="true" /> {live === "live" ? "live" : live === "connecting" ? "connecting" : "polling"}
                </span>
              </>
            )}
          </>
        }
        actions={
          <>
            {["pending", "running", "waiting"].includes(ex.status) && can("execution:pause") && (
              <button type="button" className="btn" onClick={() => control.mutate({ action: "pause" })} disabled={control.isPending}>
                Pause
              </button>
            )}
            {ex.status === "paused" && can("execution:resume") && (
              <button type="button" className="btn btn-primary" onClick={() => control.mutate({ action: "resume" })} disabled={control.isPending}>
                Resume
              </button>
            )}
            {ex.status === "failed" && can("execution:retry") && (
              <button type="button" className="btn btn-primary" onClick={() => control.mutate({ action: "retry" })} disabled={control.isPending}>
                Retry from failed step
              </button>
            )}
            {!final && can("execution:cancel") && (
              <button type="button" className="btn btn-danger-outline" onClick={() => setCancelOpen(true)}>
                Cancel
              </button>
            )}
          </>
        }
      />
      <InlineError error={control.error} />
      <dl className="facts">
        <div>
          <dt>Started</dt>
          <dd>
            <Time value={ex.started_at ?? ex.created_at} />
          </dd>
        </div>
        <div>
          <dt>Finished</dt>
          <dd>
            <Time value={ex.completed_at} />
          </dd>
        </div>
        <div>
          <dt>Duration</dt>
          <dd>{formatDuration(ex.duration_ms)}</dd>
        </div>
        <div>
          <dt>Current step</dt>
          <dd className="mono">{ex.current_step_id ?? "—"}</dd>
        </div>
        {ex.error_type && (
          <div>
            <dt>Error</dt>
            <dd>
              <span className="badge badge-bad">{ex.error_type}</span> {ex.error_message}
            </dd>
          </div>
        )}
      </dl>
      {ex.status === "waiting" && <PendingApproval execution={ex} live={live} />}

      <Tabs.Root value={tab} onValueChange={setTab} className="tabs">
        <Tabs.List className="tab-list" aria-label="Execution views">
          <Tabs.Trigger value="timeline">Timeline</Tabs.Trigger>
          <Tabs.Trigger value="graph">Graph</Tabs.Trigger>
          <Tabs.Trigger value="context">Context</Tabs.Trigger>
          <Tabs.Trigger value="payload">Trigger payload</Tabs.Trigger>
        </Tabs.List>
        <Tabs.Content value="timeline" className="tab-panel">
          <TraceView steps={trace.data.steps} execution={ex} />
        </Tabs.Content>
        <Tabs.Content value="graph" className="tab-panel">
          {workflow.isError ? (
            <ErrorState error={workflow.error} title="The workflow version is gone" />
          ) : workflow.data ? (
            <WorkflowGraph
              definition={workflow.data.definition}
              overlay={{ statuses, current: ex.current_step_id }}
              height={480}
              label="Execution path on the workflow graph"
            />
          ) : (
            <Skeleton lines={6} />
          )}
        </Tabs.Content>
        <Tabs.Content value="context" className="tab-panel">
          <JsonBlock value={ex.context} label="Execution context" />
        </Tabs.Content>
        <Tabs.Content value="payload" className="tab-panel">
          <JsonBlock value={ex.trigger_payload} label="Trigger payload" />
        </Tabs.Content>
      </Tabs.Root>

      <ReasonDialog
        open={cancelOpen}
        onOpenChange={setCancelOpen}
        title="Cancel this execution?"
        description="It stops where it is; its result becomes cancelled."
        confirmLabel="Cancel execution"
        tone="danger"
        onSubmit={(reason) => control.mutateAsync({ action: "cancel", body: reason ? { reason } : {} })}
      />
    </>
  );
}
