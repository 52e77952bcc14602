import { keepPreviousData, useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { Fragment, useState } from "react";
import { Link } from "react-router";
import { api } from "../api/client";
import type { EventPage, EventRecord } from "../api/types";
import { useAuth } from "../auth/AuthContext";
import { EmptyState, ErrorState, InlineError, JsonBlock, PageHeader, Pagination, TableSkeleton, Tag, Time } from "../components/ui";
import { shortId } from "../lib/format";

function ExecutionLinks({ ids }: { ids: string[] }) {
  if (!ids.length) return <span className="muted small">none</span>;
  return (
    <span className="tags">
      {ids.map((id) => (
        <Link key={id} to={`/executions/${id}`} className="mono tag tag-link">
          {shortId(id)}
        </Link>
      ))}
    </span>
  );
}

function SendEvent() {
  const queryClient = useQueryClient();
  const [eventType, setEventType] = useState("order.created");
  const [source, setSource] = useState("console");
  const [payload, setPayload] = useState('{\n  "order": {"id": "o-1001", "total": 2500}\n}');
  const [idempotencyKey, setIdempotencyKey] = useState("");
  const [parseError, setParseError] = useState<string | null>(null);
  const send = useMutation({
    mutationFn: (body: unknown) => api.post<EventRecord>("/events", body),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: ["events"] }),
  });
  return (
    <section className="card" aria-labelledby="send-title">
      <h2 id="send-title">Send a test event</h2>
      <form
        onSubmit={(event) => {
          event.preventDefault();
          let body: unknown;
          try {
            body = JSON.parse(payload || "{}");
            if (typeof body !== "object" || body === null || Array.isArray(body)) throw new Error("The payload must be a JSON object.");
          } catch (error) {
            setParseError((error as Error).message);
            return;
          }
          setParseError(null);
          send.mutate({
            event_type: eventType.trim(),
            source: source.trim() || undefined,
            payload: body,
            idempotency_key: idempotencyKey.trim() || undefined,
          });
        }}
      >
        <div className="field-row">
          <div className="field">
            <label htmlFor="ev-type">Event type</label>
            <input id="ev-type" value={eventType} onChange={(e) => setEventType(e.target.value)} required />
          </div>
          <div className="field">
            <label htmlFor="ev-source">Source</label>
            <input id="ev-source" value={source} onChange={(e) => setSource(e.target.value)} />
          </div>
        </div>
        <div className="field">
          <label htmlFor="ev-payload">Payload (JSON)</label>
          <textarea id="ev-payload" className="code" rows={7} spellCheck={false} value={payload} onChange={(e) => setPayload(e.target.value)} />
        </div>
        <div className="field">
          <label htmlFor="ev-key">Idempotency key (optional)</label>
          <input id="ev-key" value={idempotencyKey} onChange={(e) => setIdempotencyKey(e.target.value)} placeholder="the same key returns the first answer" />
        </div>
        {parseError && (
          <p className="inline-error" role="alert">
            {parseError}
          </p>
        )}
        <InlineError error={send.error} />
        <button type="submit" className="btn btn-primary" disabled={send.isPending}>
          {send.isPending ? "Sending…" : "Send event"}
        </button>
      </form>
      {send.data && (
        <div className="send-result" role="status" data-testid="send-result">
          <p>
            Accepted as <span className="mono">{shortId(send.data.id)}</span>.{" "}
            {send.data.triggered_workflows.length ? (
              <>
                Started {send.data.execution_ids.length} execution{send.data.execution_ids.length === 1 ? "" : "s"} of{" "}
                {send.data.triggered_workflows.map((w) => (
                  <Tag key={w}>{w}</Tag>
                ))}
                :
              </>
            ) : (
              "No enabled workflow matched this event type."
            )}
          </p>
          <ExecutionLinks ids={send.data.execution_ids} />
        </div>
      )}
    </section>
  );
}

export function EventsPage() {
  const { can } = useAuth();
  const [page, setPage] = useState(1);
  const [eventType, setEventType] = useState("");
  const [open, setOpen] = useState<string | null>(null);
  const events = useQuery({
    queryKey: ["events", { page, eventType }],
    queryFn: ({ signal }) => api.get<EventPage>("/events", { page, page_size: 20, event_type: eventType || undefined }, signal),
    placeholderData: keepPreviousData,
    refetchInterval: 5000,
  });
  return (
    <>
      <PageHeader title="Events" description="Events start the enabled workflows whose trigger matches their type." />
      {can("event:create") && <SendEvent />}
      <section className="card" aria-labelledby="recent-title">
        <div className="card-head">
          <h2 id="recent-title">Recent events</h2>
          <div className="field inline">
            <label htmlFor="ev-filter">Type</label>
            <input id="ev-filter" value={eventType} onChange={(e) => { setEventType(e.target.value); setPage(1); }} placeholder="exact type" />
          </div>
        </div>
        {events.isPending ? (
          <TableSkeleton rows={5} columns={5} />
        ) : events.isError ? (
          <ErrorState error={events.error} onRetry={() => events.refetch()} />
        ) : events.data.events.length === 0 ? (
          <EmptyState title="No events yet">Send one above, or POST to /api/v1/events with an API key.</EmptyState>
        ) : (
          <>
            <div className="table-wrap">
              <table className="table" aria-label="Recent events">
                <thead>
                  <tr>
                    <th>Received</th>
                    <th>Type</th>
                    <th>Source</th>
                    <th>Workflows started</th>
                    <th>Executions</th>
                    <th>
                      <span className="visually-hidden">Payload</span>
                    </th>
                  </tr>
                </thead>
                <tbody>
                  {events.data.events.map((event) => (
                    <Fragment key={event.id}>
                      <tr>
                        <td>
                          <Time value={event.received_at} />
                        </td>
                        <td className="mono">{event.event_type}</td>
                        <td className="small">{event.source ?? "—"}</td>
                        <td>
                          {event.triggered_workflows.length ? (
                            <span className="tags">
                              {event.triggered_workflows.map((w) => (
                                <Tag key={w}>{w}</Tag>
                              ))}
                            </span>
                          ) : (
                            <span className="muted small">none</span>
                          )}
                        </td>
                        <td>
                          <ExecutionLinks ids={event.execution_ids} />
                        </td>
                        <td>
                          <button
                            type="button"
                            className="btn btn-small"
                            aria-expanded={open === event.id}
                            onClick={() => setOpen(open === event.id ? null : event.id)}
                          >
                            Payload
                          </button>
                        </td>
                      </tr>
                      {open === event.id && (
                        <tr className="detail-row">
                          <td colSpan={6}>
                            <JsonBlock value={event.payload} />
                          </td>
                        </tr>
                      )}
                    </Fragment>
                  ))}
                </tbody>
              </table>
            </div>
            <Pagination page={page} pageSize={events.data.page_size} total={events.data.total} onPage={setPage} />
          </>
        )}
      </section>
    </>
  );
}
