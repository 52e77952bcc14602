import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useId, useState } from "react";
import { api } from "../api/client";
import type { ShadowCount, ShadowReport } from "../api/types";
import { InlineError, Pagination, Stat, StatusBadge, Time } from "./ui";

const WINDOWS: Record<string, number> = { "1h": 3_600_000, "24h": 86_400_000, "7d": 7 * 86_400_000, "30d": 30 * 86_400_000 };
const PAGE_SIZE = 20;

function reportKey(workflowRowId: string, reportId: string, page: number) {
  return ["shadow-report", workflowRowId, reportId, page];
}

/**
 * POST /workflows/{id}/shadow: the editor's text (saved or not) replayed on the recorded
 * events of a window and compared, event by event, with what the saved version did.
 * Nothing is performed. A long window is run by a worker: the report is polled until done.
 */
export function ShadowRunPanel({ workflowRowId, candidate }: { workflowRowId: string; candidate: unknown }) {
  const id = useId();
  const queryClient = useQueryClient();
  const [span, setSpan] = useState("7d");
  const [reportId, setReportId] = useState<string | null>(null);
  const [page, setPage] = useState(1);
  const start = useMutation({
    mutationFn: () =>
      api.post<ShadowReport>(`/workflows/${workflowRowId}/shadow`, {
        candidate,
        since: new Date(Date.now() - WINDOWS[span]).toISOString(),
      }),
    onSuccess: (report) => {
      queryClient.setQueryData(reportKey(workflowRowId, report.id, 1), report);
      setPage(1);
      setReportId(report.id);
    },
  });
  const report = useQuery({
    queryKey: reportKey(workflowRowId, reportId ?? "", page),
    queryFn: () =>
      api.get<ShadowReport>(`/workflows/${workflowRowId}/shadow/${reportId}`, { page, page_size: PAGE_SIZE }),
    enabled: reportId !== null,
    refetchInterval: (query) => {
      const status = query.state.data?.status;
      return status === "pending" || status === "running" ? 2000 : false;
    },
  });
  const shown = reportId ? report.data : undefined;

  return (
    <div className="dry-run shadow-run">
      <form
        onSubmit={(event) => {
          event.preventDefault();
          start.mutate();
        }}
      >
        <div className="field">
          <label htmlFor={id}>Recorded events of the last</label>
          <select id={id} value={span} onChange={(e) => setSpan(e.target.value)}>
            {Object.keys(WINDOWS).map((w) => (
              <option key={w} value={w}>
                {w}
              </option>
            ))}
          </select>
        </div>
        {candidate === null && (
          <p className="inline-error" role="alert">
            The text is not valid JSON: fix it to shadow-run it.
          </p>
        )}
        <InlineError error={start.error} />
        <button type="submit" className="btn btn-primary" disabled={start.isPending || candidate === null}>
          {start.isPending ? "Replaying…" : "Shadow run"}
        </button>
        <span className="muted small"> Nothing is sent, stored or started.</span>
      </form>

      <InlineError error={report.error} />
      {shown && <ShadowResult report={shown} page={page} onPage={setPage} />}
    </div>
  );
}

function ShadowResult({ report, page, onPage }: { report: ShadowReport; page: number; onPage: (page: number) => void }) {
  if (report.status === "pending" || report.status === "running") {
    return (
      <p aria-live="polite">
        <StatusBadge status={report.status} /> A worker is replaying the events; this updates by itself.
      </p>
    );
  }
  if (report.status === "failed") {
    return (
      <p className="inline-error" role="alert">
        The shadow run failed: {report.error_message}
      </p>
    );
  }
  const summary = report.summary;
  if (!summary) return null;
  return (
    <div className="dry-run-result" aria-live="polite">
      <div className="stats" aria-label="Shadow run summary">
        <Stat label="Events replayed" value={summary.events_replayed} />
        <Stat label="Same result" value={summary.same_result} />
        <Stat label="Different result" value={summary.different_result} />
        <Stat label="Unresolved" value={summary.unresolved} hint="an approval or wait the record cannot answer" />
      </div>
      {summary.by_change.length > 0 && (
        <>
          <h4>Results that change</h4>
          <CountList label="Results that change" counts={summary.by_change} name={(c) => c.change ?? ""} />
        </>
      )}
      {(summary.steps_newly_reached.length > 0 || summary.steps_no_longer_reached.length > 0) && (
        <>
          <h4>Steps</h4>
          <CountList
            label="Steps newly reached"
            counts={summary.steps_newly_reached}
            name={(c) => `newly reached: ${c.step_id}`}
          />
          <CountList
            label="Steps no longer reached"
            counts={summary.steps_no_longer_reached}
            name={(c) => `no longer reached: ${c.step_id}`}
          />
        </>
      )}
      <h4>Events that differ</h4>
      {report.total === 0 ? (
        <p className="muted">None: the candidate decides every replayed event as the saved version did.</p>
      ) : (
        <>
          <div className="table-wrap">
            <table className="table" aria-label="Events that differ">
              <thead>
                <tr>
                  <th>Event</th>
                  <th>Result</th>
                  <th>Path (recorded → candidate)</th>
                  <th>Unresolved</th>
                  <th>Would</th>
                </tr>
              </thead>
              <tbody>
                {report.differences.map((d) => (
                  <tr key={d.event_id}>
                    <td>
                      <span className="mono">{d.event_id}</span>
                      <br />
                      <Time value={d.received_at} />
                    </td>
                    <td>
                      {d.from} → {d.to}
                    </td>
                    <td className="mono small">
                      {d.path_from.join(" › ") || "—"}
                      <br />
                      {d.path_to.join(" › ") || "—"}
                      {d.decisions_changed.map((c) => (
                        <div key={String(c.step_id)} className="muted">
                          {String(c.step_id)}: {String(c.from)} → {String(c.to)}
                        </div>
                      ))}
                    </td>
                    <td>{d.unresolved ? `${String(d.unresolved.kind)} at ${String(d.unresolved.step_id)}` : ""}</td>
                    <td className="small">{d.would.map((w) => String(w.kind)).join(", ")}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          <Pagination page={page} pageSize={report.page_size} total={report.total} onPage={onPage} />
        </>
      )}
    </div>
  );
}

function CountList({ label, counts, name }: { label: string; counts: ShadowCount[]; name: (c: ShadowCount) => string }) {
  if (counts.length === 0) return null;
  return (
    <ul className="plain-list" aria-label={label}>
      {counts.map((c) => (
        <li key={name(c)}>
          <span className="mono">{name(c)}</span> <span className="muted">× {c.count}</span>
        </li>
      ))}
    </ul>
  );
}
