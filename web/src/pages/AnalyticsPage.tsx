import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { Link, useSearchParams } from "react-router";
import {
  Area,
  AreaChart,
  Bar,
  BarChart,
  CartesianGrid,
  Legend,
  ResponsiveContainer,
  Tooltip,
  XAxis,
  YAxis,
} from "recharts";
import { api } from "../api/client";
import type { Dashboard, Errors, StepStatsPage, Trends, WorkflowStatsPage } from "../api/types";
import { EmptyState, ErrorState, PageHeader, Skeleton, Stat, TableSkeleton, Time } from "../components/ui";
import { formatDuration, percent, shortId } from "../lib/format";

const RANGES = ["1h", "24h", "7d", "30d"] as const;
const INTERVALS: Record<string, string[]> = {
  "1h": ["minute", "hour"],
  "24h": ["hour", "day"],
  "7d": ["hour", "day"],
  "30d": ["day"],
};

function bucketLabel(iso: string, interval: string): string {
  const date = new Date(iso);
  if (interval === "day") return date.toLocaleDateString("en", { month: "short", day: "numeric" });
  return date.toLocaleTimeString("en", { hour: "2-digit", minute: "2-digit" });
}

function Section({ title, children, id }: { title: string; children: React.ReactNode; id: string }) {
  return (
    <section className="card" aria-labelledby={id}>
      <h2 id={id}>{title}</h2>
      {children}
    </section>
  );
}

export function AnalyticsPage() {
  const [params, setParams] = useSearchParams();
  const timeRange = params.get("time_range") ?? "24h";
  const interval = INTERVALS[timeRange]?.includes(params.get("interval") ?? "") ? params.get("interval")! : INTERVALS[timeRange]?.[0] ?? "hour";
  const workflowId = params.get("workflow_id") ?? "";
  const q = { time_range: timeRange, workflow_id: workflowId || undefined };
  const set = (key: string, value: string) => {
    const next = new URLSearchParams(params);
    if (value) next.set(key, value);
    else next.delete(key);
    setParams(next, { replace: true });
  };
  const common = { placeholderData: keepPreviousData, refetchInterval: 15_000 } as const;

  const dashboard = useQuery({ queryKey: ["analytics", "dashboard", q], queryFn: () => api.get<Dashboard>("/analytics/dashboard", q), ...common });
  const trends = useQuery({
    queryKey: ["analytics", "trends", q, interval],
    queryFn: () => api.get<Trends>("/analytics/trends", { ...q, interval }),
    ...common,
  });
  const workflows = useQuery({
    queryKey: ["analytics", "workflows", q],
    queryFn: () => api.get<WorkflowStatsPage>("/analytics/workflows", { ...q, page_size: 10 }),
    ...common,
  });
  const errors = useQuery({ queryKey: ["analytics", "errors", q], queryFn: () => api.get<Errors>("/analytics/errors", { ...q, limit: 10 }), ...common });
  const steps = useQuery({
    queryKey: ["analytics", "steps", q],
    queryFn: () => api.get<StepStatsPage>("/analytics/steps", { ...q, page_size: 20 }),
    ...common,
  });

  return (
    <>
      <PageHeader title="Analytics" description="How executions went over a window of time." />
      <div className="filters" role="search">
        <div className="field">
          <label htmlFor="an-range">Window</label>
          <select id="an-range" value={timeRange} onChange={(e) => set("time_range", e.target.value)}>
            {RANGES.map((r) => (
              <option key={r} value={r}>
                last {r}
              </option>
            ))}
          </select>
        </div>
        <div className="field">
          <label htmlFor="an-interval">Bucket</label>
          <select id="an-interval" value={interval} onChange={(e) => set("interval", e.target.value)}>
            {(INTERVALS[timeRange] ?? []).map((i) => (
              <option key={i} value={i}>
                {i}
              </option>
            ))}
          </select>
        </div>
        <div className="field">
          <label htmlFor="an-workflow">Workflow id</label>
          <input id="an-workflow" value={workflowId} placeholder="all workflows" onChange={(e) => set("workflow_id", e.target.value)} />
        </div>
      </div>

      <Section title="Overview" id="an-overview">
        {dashboard.isPending ? (
          <Skeleton lines={2} height={40} />
        ) : dashboard.isError ? (
          <ErrorState error={dashboard.error} title="Could not load the overview" onRetry={() => dashboard.refetch()} />
        ) : (
          <div className="stats">
            <Stat label="Executions" value={dashboard.data.executions.total} />
            <Stat label="Success rate" value={percent(dashboard.data.success_rate)} />
            <Stat label="Mean duration" value={formatDuration(dashboard.data.avg_duration_ms)} hint={`p95 ${formatDuration(dashboard.data.p95_duration_ms)}`} />
            <Stat label="Running now" value={dashboard.data.active} />
            <Stat label="Waiting" value={dashboard.data.waiting} />
            <Stat label="Pending approvals" value={<Link to="/approvals">{dashboard.data.pending_approvals}</Link>} />
            <Stat label="Events received" value={dashboard.data.events_received} />
          </div>
        )}
      </Section>

      <Section title="Executions over time" id="an-trends">
        {trends.isPending ? (
          <Skeleton lines={6} />
        ) : trends.isError ? (
          <ErrorState error={trends.error} title="Could not load trends" onRetry={() => trends.refetch()} />
        ) : (
          <div className="chart" role="img" aria-label={`Executions per ${trends.data.interval}`}>
            <ResponsiveContainer width="100%" height={260}>
              <AreaChart data={trends.data.buckets.map((b) => ({ ...b, label: bucketLabel(b.bucket, trends.data.interval) }))}>
                <CartesianGrid strokeDasharray="3 3" stroke="#e9ecef" />
                <XAxis dataKey="label" fontSize={11} minTickGap={24} />
                <YAxis allowDecimals={false} fontSize={11} width={36} />
                <Tooltip />
                <Legend />
                <Area type="monotone" dataKey="completed" stackId="1" stroke="#2f9e44" fill="#b2f2bb" isAnimationActive={false} />
                <Area type="monotone" dataKey="failed" stackId="1" stroke="#e03131" fill="#ffc9c9" isAnimationActive={false} />
                <Area type="monotone" dataKey="cancelled" stackId="1" stroke="#868e96" fill="#dee2e6" isAnimationActive={false} />
                <Area type="monotone" dataKey="in_progress" stackId="1" stroke="#1c7ed6" fill="#a5d8ff" name="in progress" isAnimationActive={false} />
              </AreaChart>
            </ResponsiveContainer>
          </div>
        )}
      </Section>

      <div className="two-columns">
        <Section title="Top workflows" id="an-top">
          {workflows.isPending ? (
            <TableSkeleton rows={4} columns={4} />
          ) : workflows.isError ? (
            <ErrorState error={workflows.error} title="Could not load workflow stats" />
          ) : workflows.data.workflows.length === 0 ? (
            <EmptyState title="No executions in this window" />
          ) : (
            <>
              <div className="chart" role="img" aria-label="Executions per workflow">
                <ResponsiveContainer width="100%" height={Math.max(120, workflows.data.workflows.length * 34)}>
                  <BarChart
                    data={workflows.data.workflows.map((w) => ({
                      ...w,
                      in_progress: Math.max(0, w.total - w.completed - w.failed - w.cancelled),
                    }))}
                    layout="vertical"
                    margin={{ left: 12 }}
                  >
                    <XAxis type="number" allowDecimals={false} fontSize={11} />
                    <YAxis
                      type="category"
                      dataKey="workflow_id"
                      width={150}
                      fontSize={11}
                      tickFormatter={(value: string) => (value.length > 22 ? `${value.slice(0, 21)}…` : value)}
                    />
                    <Tooltip />
                    <Bar dataKey="completed" stackId="a" fill="#51cf66" isAnimationActive={false} />
                    <Bar dataKey="failed" stackId="a" fill="#ff6b6b" isAnimationActive={false} />
                    <Bar dataKey="cancelled" stackId="a" fill="#adb5bd" isAnimationActive={false} />
                    <Bar dataKey="in_progress" name="in progress" stackId="a" fill="#74c0fc" isAnimationActive={false} />
                  </BarChart>
                </ResponsiveContainer>
              </div>
              <table className="table compact" aria-label="Workflow statistics">
                <thead>
                  <tr>
                    <th>Workflow</th>
                    <th>Runs</th>
                    <th>Success</th>
                    <th>Mean</th>
                    <th>Last run</th>
                  </tr>
                </thead>
                <tbody>
                  {workflows.data.workflows.map((w) => (
                    <tr key={w.workflow_id}>
                      <td className="mono">
                        <Link to={`/executions?workflow_id=${encodeURIComponent(w.workflow_id)}`}>{w.workflow_id}</Link>
                      </td>
                      <td>{w.total}</td>
                      <td>{percent(w.success_rate)}</td>
                      <td>{formatDuration(w.avg_duration_ms)}</td>
                      <td>
                        <Time value={w.last_run_at} />
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </>
          )}
        </Section>

        <Section title="Recent errors" id="an-errors">
          {errors.isPending ? (
            <TableSkeleton rows={4} columns={3} />
          ) : errors.isError ? (
            <ErrorState error={errors.error} title="Could not load errors" />
          ) : errors.data.total_failed === 0 && errors.data.groups.length === 0 ? (
            <EmptyState title="No failures in this window" />
          ) : (
            <>
              <table className="table compact" aria-label="Errors by kind">
                <thead>
                  <tr>
                    <th>Error</th>
                    <th>Count</th>
                    <th>Last seen</th>
                  </tr>
                </thead>
                <tbody>
                  {errors.data.groups.map((g, i) => (
                    <tr key={i}>
                      <td>
                        <span className="badge badge-bad">{g.error_type}</span> <span className="small">{g.error_message}</span>
                        <div className="muted small">{g.workflow_ids.join(", ")}</div>
                      </td>
                      <td>{g.count}</td>
                      <td>
                        <Time value={g.last_seen} />
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
              <h3>Latest failures</h3>
              <ul className="plain-list">
                {errors.data.recent.map((r) => (
                  <li key={r.execution_id}>
                    <Link to={`/executions/${r.execution_id}`} className="mono">
                      {shortId(r.execution_id)}
                    </Link>{" "}
                    <span className="mono small">{r.workflow_id}</span> — {r.error_message ?? r.error_type} · <Time value={r.failed_at} />
                  </li>
                ))}
              </ul>
            </>
          )}
        </Section>
      </div>

      <Section title="Steps" id="an-steps">
        {steps.isPending ? (
          <TableSkeleton rows={5} columns={7} />
        ) : steps.isError ? (
          <ErrorState error={steps.error} title="Could not load step statistics" />
        ) : steps.data.steps.length === 0 ? (
          <EmptyState title="No step ran in this window" />
        ) : (
          <div className="table-wrap">
            <table className="table compact" aria-label="Step statistics">
              <thead>
                <tr>
                  <th>Workflow</th>
                  <th>Step</th>
                  <th>Type</th>
                  <th>Runs</th>
                  <th>Failures</th>
                  <th>Retries</th>
                  <th>Mean</th>
                  <th>p95</th>
                </tr>
              </thead>
              <tbody>
                {steps.data.steps.map((s) => (
                  <tr key={`${s.workflow_id}/${s.step_id}/${s.step_type}`}>
                    <td className="mono small">{s.workflow_id}</td>
                    <td className="mono">{s.step_id}</td>
                    <td className="small">{s.step_type}</td>
                    <td>{s.runs}</td>
                    <td className={s.failures ? "text-bad" : undefined}>{s.failures}</td>
                    <td>{s.retries}</td>
                    <td>{formatDuration(s.avg_duration_ms)}</td>
                    <td>{formatDuration(s.p95_duration_ms)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </Section>
    </>
  );
}
