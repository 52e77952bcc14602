import * as Tabs from "@radix-ui/react-tabs";
import { keepPreviousData, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { Link, useSearchParams } from "react-router";
import { api, ApiError } from "../api/client";
import type { Approval, ApprovalPage } from "../api/types";
import { useAuth } from "../auth/AuthContext";
import { ReasonDialog } from "../components/Dialogs";
import { Countdown, EmptyState, ErrorState, JsonBlock, PageHeader, Pagination, StatusBadge, TableSkeleton, Tag, Time } from "../components/ui";
import { shortId } from "../lib/format";
import { useLiveStream } from "../lib/useLiveStream";

const STATUSES = ["pending", "approved", "rejected", "expired", "any"];

function ApprovalCard({ approval, onDecide }: { approval: Approval; onDecide: (a: Approval, d: "approve" | "reject") => void }) {
  const { can, me } = useAuth();
  const data = { ...(approval.data ?? {}) };
  return (
    <li className="approval-card" data-testid={`approval-${approval.id}`} data-status={approval.status}>
      <div className="approval-main">
        <div className="approval-title">
          <strong>
            {approval.entity_type ?? "approval"} {approval.entity_id && <span className="mono">{approval.entity_id}</span>}
          </strong>
          <StatusBadge status={approval.status} />
          {approval.approver_role && <Tag>group: {approval.approver_role}</Tag>}
        </div>
        {approval.reason && <p>{approval.reason}</p>}
        <p className="muted small">
          {approval.workflow_id && (
            <>
              <span className="mono">{approval.workflow_id}</span> ·{" "}
            </>
          )}
          Step <span className="mono">{approval.step_id}</span> of execution{" "}
          <Link to={`/executions/${approval.execution_id}`} className="mono">
            {shortId(approval.execution_id)}
          </Link>{" "}
          · requested <Time value={approval.requested_at} />
          {approval.status === "pending" ? (
            <>
              {" "}
              · <Countdown until={approval.expires_at} />
            </>
          ) : (
            approval.decided_at && (
              <>
                {" "}
                · decided <Time value={approval.decided_at} />
                {approval.decided_by && <> by {approval.decided_by === me?.user_id ? "you" : shortId(approval.decided_by)}</>}
              </>
            )
          )}
        </p>
        {approval.decision_reason && <p className="small">“{approval.decision_reason}”</p>}
        {Object.keys(data).length > 0 && (
          <details>
            <summary className="small">Details</summary>
            <JsonBlock value={data} />
          </details>
        )}
      </div>
      {approval.status === "pending" && (
        <div className="approval-actions">
          <button type="button" className="btn btn-primary" onClick={() => onDecide(approval, "approve")} disabled={!can("approval:approve")}>
            Approve
          </button>
          <button type="button" className="btn btn-danger-outline" onClick={() => onDecide(approval, "reject")} disabled={!can("approval:reject")}>
            Reject
          </button>
        </div>
      )}
    </li>
  );
}

export function ApprovalsPage() {
  const [params, setParams] = useSearchParams();
  const scope = params.get("scope") ?? "mine";
  const status = params.get("status") ?? "pending";
  const role = params.get("role") ?? "";
  const page = Number(params.get("page") ?? 1);
  const queryClient = useQueryClient();
  const [deciding, setDeciding] = useState<{ approval: Approval; decision: "approve" | "reject" } | null>(null);
  const update = (changes: Record<string, string>) => {
    const next = new URLSearchParams(params);
    for (const [k, v] of Object.entries(changes)) {
      if (v) next.set(k, v);
      else next.delete(k);
    }
    if (!("page" in changes)) next.delete("page");
    setParams(next, { replace: true });
  };

  // An approval is asked for, decided or expires with a change of its execution:
  // the organization's execution stream says when to re-read the inbox.
  const live = useLiveStream("/executions/stream", () => queryClient.invalidateQueries({ queryKey: ["approvals"] }));
  const query = useQuery({
    queryKey: ["approvals", { scope, status, role, page }],
    queryFn: ({ signal }) =>
      api.get<ApprovalPage>(
        "/approvals",
        { mine: scope === "mine" ? true : undefined, status: status === "any" ? undefined : status, role: role || undefined, page, page_size: 20 },
        signal,
      ),
    placeholderData: keepPreviousData,
    // Polling is the fallback while the stream is down or unavailable.
    refetchInterval: live === "live" ? false : 4000,
    retry: (count, error) => !(error instanceof ApiError && error.status === 404) && count < 2,
  });

  const list = query.isPending ? (
    <TableSkeleton rows={4} columns={3} />
  ) : query.isError ? (
    query.error instanceof ApiError && query.error.status === 404 ? (
      <ErrorState
        error={query.error}
        title="The approvals API is not available on this server"
      />
    ) : (
      <ErrorState error={query.error} onRetry={() => query.refetch()} />
    )
  ) : query.data.approvals.length === 0 ? (
    <EmptyState title={status === "pending" ? "Nothing is waiting for you" : "No approvals here"}>
      {scope === "mine"
        ? "Approvals addressed to your approval groups (or, for admins, every group) show up here."
        : "Approvals are requested by workflow steps of type require_approval."}
    </EmptyState>
  ) : (
    <>
      <ul className="approval-list" aria-label="Approvals">
        {query.data.approvals.map((approval) => (
          <ApprovalCard key={approval.id} approval={approval} onDecide={(a, decision) => setDeciding({ approval: a, decision })} />
        ))}
      </ul>
      <Pagination page={page} pageSize={query.data.page_size} total={query.data.total} onPage={(p) => update({ page: String(p) })} />
    </>
  );

  return (
    <>
      <PageHeader
        title="Approvals"
        description={
          <>
            Executions waiting for a human decision ·{" "}
            <span data-testid="live-mode" data-mode={live}>
              <span className="live-dot" aria-hidden="true" /> {live === "live" ? "live" : live === "connecting" ? "connecting" : "polling"}
            </span>
          </>
        }
      />
      <Tabs.Root value={scope} onValueChange={(value) => update({ scope: value })} className="tabs">
        <div className="tabs-with-filters">
          <Tabs.List className="tab-list" aria-label="Whose approvals">
            <Tabs.Trigger value="mine">Mine</Tabs.Trigger>
            <Tabs.Trigger value="all">All</Tabs.Trigger>
          </Tabs.List>
          <div className="field inline">
            <label htmlFor="ap-role">Group</label>
            <input id="ap-role" value={role} placeholder="any approval group" onChange={(e) => update({ role: e.target.value })} />
            <label htmlFor="ap-status">Status</label>
            <select id="ap-status" value={status} onChange={(e) => update({ status: e.target.value })}>
              {STATUSES.map((s) => (
                <option key={s} value={s}>
                  {s}
                </option>
              ))}
            </select>
          </div>
        </div>
        <Tabs.Content value="mine" className="tab-panel">
          {scope === "mine" && list}
        </Tabs.Content>
        <Tabs.Content value="all" className="tab-panel">
          {scope === "all" && list}
        </Tabs.Content>
      </Tabs.Root>
      <ReasonDialog
        open={deciding !== null}
        onOpenChange={(open) => !open && setDeciding(null)}
        title={deciding?.decision === "approve" ? "Approve this request" : "Reject this request"}
        description={deciding?.approval.reason ?? undefined}
        confirmLabel={deciding?.decision === "approve" ? "Approve" : "Reject"}
        tone={deciding?.decision === "approve" ? "primary" : "danger"}
        onSubmit={async (reason) => {
          if (!deciding) return;
          await api.post(`/approvals/${deciding.approval.id}/${deciding.decision}`, reason ? { reason } : {});
          await queryClient.invalidateQueries({ queryKey: ["approvals"] });
          queryClient.invalidateQueries({ queryKey: ["trace", deciding.approval.execution_id] });
        }}
      />
    </>
  );
}
