import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { Fragment, useState } from "react";
import { useSearchParams } from "react-router";
import { api } from "../api/client";
import type { AuditLogPage as Page } from "../api/types";
import { useAuth } from "../auth/AuthContext";
import { EmptyState, ErrorState, JsonBlock, PageHeader, Pagination, TableSkeleton, Time } from "../components/ui";
import { shortId } from "../lib/format";
import { useDebounced } from "../lib/useDebounced";

export function AuditLogPage() {
  const { me } = useAuth();
  const [params, setParams] = useSearchParams();
  const [action, setAction] = useState(params.get("action") ?? "");
  const [resourceType, setResourceType] = useState(params.get("resource_type") ?? "");
  const debouncedAction = useDebounced(action);
  const debouncedType = useDebounced(resourceType);
  const page = Number(params.get("page") ?? 1);
  const [open, setOpen] = useState<string | null>(null);
  const query = useQuery({
    queryKey: ["audit", { debouncedAction, debouncedType, page }],
    queryFn: () =>
      api.get<Page>("/audit-logs", {
        action: debouncedAction || undefined,
        resource_type: debouncedType || undefined,
        page,
        page_size: 25,
      }),
    placeholderData: keepPreviousData,
  });

  return (
    <>
      <PageHeader title="Audit log" description="Every change in this organization: who, when, and what changed." />
      <div className="filters" role="search">
        <div className="field">
          <label htmlFor="au-action">Action</label>
          <input
            id="au-action"
            value={action}
            placeholder="e.g. workflow_created"
            onChange={(e) => {
              setAction(e.target.value);
              setParams({}, { replace: true });
            }}
          />
        </div>
        <div className="field">
          <label htmlFor="au-type">Resource type</label>
          <input
            id="au-type"
            value={resourceType}
            placeholder="e.g. workflow"
            onChange={(e) => {
              setResourceType(e.target.value);
              setParams({}, { replace: true });
            }}
          />
        </div>
      </div>
      {query.isPending ? (
        <TableSkeleton rows={8} columns={5} />
      ) : query.isError ? (
        <ErrorState error={query.error} onRetry={() => query.refetch()} />
      ) : query.data.audit_logs.length === 0 ? (
        <EmptyState title="No entries match" />
      ) : (
        <>
          <div className="table-wrap">
            <table className="table" aria-label="Audit log">
              <thead>
                <tr>
                  <th>When</th>
                  <th>Action</th>
                  <th>Resource</th>
                  <th>Actor</th>
                  <th>From</th>
                  <th>
                    <span className="visually-hidden">Changes</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {query.data.audit_logs.map((entry) => (
                  <Fragment key={entry.id}>
                    <tr>
                      <td>
                        <Time value={entry.created_at} />
                      </td>
                      <td className="mono">{entry.action}</td>
                      <td className="small">
                        {entry.resource_type} <span className="mono muted">{shortId(entry.resource_id)}</span>
                      </td>
                      <td className="small">
                        {entry.actor_user_id === me?.user_id
                          ? "you"
                          : entry.actor_api_key_id
                            ? `API key ${shortId(entry.actor_api_key_id)}`
                            : shortId(entry.actor_user_id)}
                      </td>
                      <td className="small mono">{entry.ip_address ?? "—"}</td>
                      <td>
                        {entry.changes && Object.keys(entry.changes).length > 0 && (
                          <button
                            type="button"
                            className="btn btn-small"
                            aria-expanded={open === entry.id}
                            onClick={() => setOpen(open === entry.id ? null : entry.id)}
                          >
                            Changes
                          </button>
                        )}
                      </td>
                    </tr>
                    {open === entry.id && (
                      <tr className="detail-row">
                        <td colSpan={6}>
                          <JsonBlock value={entry.changes} />
                        </td>
                      </tr>
                    )}
                  </Fragment>
                ))}
              </tbody>
            </table>
          </div>
          <Pagination
            page={page}
            pageSize={query.data.page_size}
            total={query.data.total}
            onPage={(p) => setParams({ page: String(p) }, { replace: true })}
          />
        </>
      )}
    </>
  );
}
