import { keepPreviousData, useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect, useState } from "react";
import { Link, useSearchParams } from "react-router";
import { api } from "../api/client";
import type { Workflow, WorkflowPage } from "../api/types";
import { useAuth } from "../auth/AuthContext";
import {
  EmptyState,
  ErrorState,
  InlineError,
  PageHeader,
  Pagination,
  TableSkeleton,
  Tag,
  Time,
  Toggle,
} from "../components/ui";
import { useDebounced } from "../lib/useDebounced";

export function triggerSummary(workflow: Workflow): string {
  const trigger = workflow.definition?.trigger;
  if (!trigger) return "—";
  if (trigger.type === "event") return `event: ${trigger.event ?? "?"}`;
  if (trigger.type === "schedule") return `schedule: ${trigger.cron ?? "?"}`;
  return trigger.type ?? "—";
}

export function EnabledToggle({ workflow }: { workflow: Workflow }) {
  const queryClient = useQueryClient();
  const { can } = useAuth();
  const toggle = useMutation({
    mutationFn: (enabled: boolean) =>
      api.post<Workflow>(`/workflows/${workflow.id}/${enabled ? "enable" : "disable"}`),
    onSuccess: (updated) => {
      queryClient.setQueryData(["workflow", updated.id], updated);
      queryClient.invalidateQueries({ queryKey: ["workflows"] });
      queryClient.invalidateQueries({ queryKey: ["versions"] });
    },
  });
  const checked = toggle.isPending ? !!toggle.variables : workflow.enabled;
  return (
    <span className="toggle-with-label">
      <Toggle
        checked={checked}
        onChange={(value) => toggle.mutate(value)}
        disabled={toggle.isPending || !can("workflow:update")}
        label={`${workflow.enabled ? "Disable" : "Enable"} ${workflow.name} ${workflow.version}`}
      />
      <span className="small">{checked ? "Enabled" : "Disabled"}</span>
      {toggle.isError && <InlineError error={toggle.error} />}
    </span>
  );
}

export function WorkflowsPage() {
  const [params, setParams] = useSearchParams();
  const { can } = useAuth();
  const [search, setSearch] = useState(params.get("search") ?? "");
  const debouncedSearch = useDebounced(search, 300);
  const tag = params.get("tag") ?? "";
  const enabled = params.get("enabled") ?? "";
  const allVersions = params.get("all_versions") === "1";
  const page = Number(params.get("page") ?? 1);

  const update = (changes: Record<string, string | null>) => {
    const next = new URLSearchParams(params);
    for (const [key, value] of Object.entries(changes)) {
      if (value === null || value === "") next.delete(key);
      else next.set(key, value);
    }
    if (!("page" in changes)) next.delete("page");
    setParams(next, { replace: true });
  };

  useEffect(() => {
    if ((params.get("search") ?? "") !== debouncedSearch) update({ search: debouncedSearch });
  }, [debouncedSearch]);

  const query = useQuery({
    queryKey: ["workflows", { search: debouncedSearch, tag, enabled, allVersions, page }],
    queryFn: ({ signal }) =>
      api.get<WorkflowPage>(
        "/workflows",
        {
          search: debouncedSearch || undefined,
          tag: tag || undefined,
          enabled: enabled || undefined,
          latest: allVersions ? undefined : true,
          page,
          page_size: 20,
        },
        signal,
      ),
    placeholderData: keepPreviousData,
  });

  const knownTags = [...new Set((query.data?.workflows ?? []).flatMap((w) => w.tags))].sort();

  return (
    <>
      <PageHeader
        title="Workflows"
        description="Definitions and their versions. Only one version of a workflow is enabled at a time."
        actions={
          can("workflow:create") && (
            <Link className="btn btn-primary" to="/workflows/new">
              New workflow
            </Link>
          )
        }
      />
      <div className="filters" role="search">
        <div className="field">
          <label htmlFor="wf-search">Search</label>
          <input
            id="wf-search"
            type="search"
            placeholder="Name or workflow id"
            value={search}
            onChange={(e) => setSearch(e.target.value)}
          />
        </div>
        <div className="field">
          <label htmlFor="wf-tag">Tag</label>
          <input
            id="wf-tag"
            list="wf-tags"
            placeholder="e.g. orders"
            value={tag}
            onChange={(e) => update({ tag: e.target.value })}
          />
          <datalist id="wf-tags">
            {knownTags.map((t) => (
              <option key={t} value={t} />
            ))}
          </datalist>
        </div>
        <div className="field">
          <label htmlFor="wf-enabled">State</label>
          <select id="wf-enabled" value={enabled} onChange={(e) => update({ enabled: e.target.value })}>
            <option value="">All</option>
            <option value="true">Enabled</option>
            <option value="false">Disabled</option>
          </select>
        </div>
        <label className="checkbox">
          <input type="checkbox" checked={allVersions} onChange={(e) => update({ all_versions: e.target.checked ? "1" : null })} />
          Show every version
        </label>
      </div>

      {query.isPending ? (
        <TableSkeleton rows={6} columns={6} />
      ) : query.isError ? (
        <ErrorState error={query.error} onRetry={() => query.refetch()} />
      ) : query.data.workflows.length === 0 ? (
        <EmptyState
          title={debouncedSearch || tag || enabled ? "No workflow matches these filters" : "No workflows yet"}
          action={
            can("workflow:create") && (
              <Link className="btn btn-primary" to="/workflows/new">
                Create your first workflow
              </Link>
            )
          }
        >
          A workflow reacts to events (or a schedule) and runs steps: conditions, actions, approvals, webhooks.
        </EmptyState>
      ) : (
        <>
          <div className="table-wrap">
            <table className="table" aria-label="Workflows">
              <thead>
                <tr>
                  <th>Name</th>
                  <th>Version</th>
                  <th>Trigger</th>
                  <th>Tags</th>
                  <th>Enabled</th>
                  <th>Updated</th>
                </tr>
              </thead>
              <tbody>
                {query.data.workflows.map((workflow) => (
                  <tr key={workflow.id}>
                    <td>
                      <Link to={`/workflows/${workflow.id}`} className="strong-link">
                        {workflow.name}
                      </Link>
                      <div className="muted small mono">{workflow.workflow_id}</div>
                    </td>
                    <td>
                      <Link to={`/workflows/${workflow.id}?tab=versions`} title="Every version of this workflow">
                        {workflow.version}
                      </Link>
                    </td>
                    <td className="small">{triggerSummary(workflow)}</td>
                    <td>
                      <div className="tags">
                        {workflow.tags.map((t) => (
                          <button key={t} type="button" className="tag tag-button" onClick={() => update({ tag: t })} title={`Filter by ${t}`}>
                            {t}
                          </button>
                        ))}
                        {!workflow.tags.length && <span className="muted small">—</span>}
                      </div>
                    </td>
                    <td>
                      <EnabledToggle workflow={workflow} />
                    </td>
                    <td>
                      <Time value={workflow.updated_at} />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          <Pagination
            page={page}
            pageSize={query.data.page_size}
            total={query.data.total}
            onPage={(p) => update({ page: String(p) })}
          />
        </>
      )}
      {tag && (
        <p className="small">
          Filtered by tag <Tag>{tag}</Tag>{" "}
          <button type="button" className="link-button" onClick={() => update({ tag: null })}>
            clear
          </button>
        </p>
      )}
    </>
  );
}
