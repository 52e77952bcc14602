import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { Link, useSearchParams } from "react-router";
import { api } from "../api/client";
import { EXECUTION_STATUSES, type ExecutionPage } from "../api/types";
import { EmptyState, ErrorState, PageHeader, Pagination, StatusBadge, TableSkeleton, Time } from "../components/ui";
import { formatDuration, shortId } from "../lib/format";

function toIso(local: string): string | undefined {
  if (!local) return undefined;
  const date = new Date(local);
  return Number.isNaN(date.getTime()) ? undefined : date.toISOString();
}

export function ExecutionsPage() {
  const [params, setParams] = useSearchParams();
  const status = params.get("status") ?? "";
  const workflowId = params.get("workflow_id") ?? "";
  const since = params.get("since") ?? "";
  const until = params.get("until") ?? "";
  const page = Number(params.get("page") ?? 1);
  const update = (changes: Record<string, string | null>) => {
    const next = new URLSearchParams(params);
    for (const [key, value] of Object.entries(changes)) {
      if (!value) next.delete(key);
      else next.set(key, value);
    }
    if (!("page" in changes)) next.delete("page");
    setParams(next, { replace: true });
  };

  const query = useQuery({
    queryKey: ["executions", { status, workflowId, since, until, page }],
    queryFn: ({ signal }) =>
      api.get<ExecutionPage>(
        "/executions",
        {
          status: status || undefined,
          workflow_id: workflowId || undefined,
          since: toIso(since),
          until: toIso(until),
          page,
          page_size: 25,
        },
        signal,
      ),
    placeholderData: keepPreviousData,
    // Lists refresh while executions run.
    refetchInterval: 3000,
  });

  return (
    <>
      <PageHeader
        title="Executions"
        description={
          <>
            Every run of every workflow, newest first. <span className="live-dot" aria-hidden="true" /> Refreshes every few seconds.
          </>
        }
      />
      <div className="filters" role="search">
        <div className="field">
          <label htmlFor="ex-status">Status</label>
          <select id="ex-status" value={status} onChange={(e) => update({ status: e.target.value })}>
            <option value="">Any</option>
            {EXECUTION_STATUSES.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </div>
        <div className="field">
          <label htmlFor="ex-workflow">Workflow id</label>
          <input id="ex-workflow" value={workflowId} placeholder="e.g. order_approval" onChange={(e) => update({ workflow_id: e.target.value })} />
        </div>
        <div className="field">
          <label htmlFor="ex-since">From</label>
          <input id="ex-since" type="datetime-local" value={since} onChange={(e) => update({ since: e.target.value })} />
        </div>
        <div className="field">
          <label htmlFor="ex-until">To</label>
          <input id="ex-until" type="datetime-local" value={until} onChange={(e) => update({ until: e.target.value })} />
        </div>
      </div>
      {query.isPending ? (
        <TableSkeleton rows={8} columns={6} />
      ) : query.isError ? (
        <ErrorState error={query.error} onRetry={() => query.refetch()} />
      ) : query.data.executions.length === 0 ? (
        <EmptyState title={status || workflowId || since || until ? "No execution matches these filters" : "No executions yet"}>
          Executions start when an event matches an enabled workflow, on a schedule, or when you run a workflow manually.{" "}
          <Link to="/events">Send a test event</Link>.
        </EmptyState>
      ) : (
        <>
          <div className="table-wrap">
            <table className="table" aria-label="Executions">
              <thead>
                <tr>
                  <th>Execution</th>
                  <th>Workflow</th>
                  <th>Status</th>
                  <th>Result</th>
                  <th>Current step</th>
                  <th>Started</th>
                  <th>Duration</th>
                </tr>
              </thead>
              <tbody>
                {query.data.executions.map((e) => (
                  <tr key={e.id} data-status={e.status}>
                    <td>
                      <Link to={`/executions/${e.id}`} className="mono strong-link">
                        {shortId(e.id)}
                      </Link>
                      <div className="muted small">{e.trigger_event ?? e.trigger_type}</div>
                    </td>
                    <td>
                      <Link to={`/workflows/${e.workflow_row_id}`} className="mono">
                        {e.workflow_id}
                      </Link>{" "}
                      <span className="muted small">v{e.workflow_version}</span>
                    </td>
                    <td>
                      <StatusBadge status={e.status} />
                    </td>
                    <td>
                      {e.result ? <StatusBadge status={e.result} /> : <span className="muted">—</span>}
                      {e.error_type && <div className="small muted">{e.error_type}</div>}
                    </td>
                    <td className="mono small">{e.current_step_id ?? "—"}</td>
                    <td>
                      <Time value={e.started_at ?? e.created_at} />
                    </td>
                    <td>{formatDuration(e.duration_ms)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          <Pagination page={page} pageSize={query.data.page_size} total={query.data.total} onPage={(p) => update({ page: String(p) })} />
        </>
      )}
    </>
  );
}
