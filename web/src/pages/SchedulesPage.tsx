import { keepPreviousData, useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { Fragment, useEffect, useMemo, useRef, useState } from "react";
import { Link, useSearchParams } from "react-router";
import { api, errorMessage } from "../api/client";
import type { NextRuns, Schedule, SchedulePage, Workflow, WorkflowPage } from "../api/types";
import { useAuth } from "../auth/AuthContext";
import { ConfirmDialog, Modal } from "../components/Dialogs";
import {
  EmptyState,
  ErrorState,
  Field,
  JsonBlock,
  PageHeader,
  Pagination,
  Skeleton,
  TableSkeleton,
  Tag,
  Time,
  Toggle,
  useNow,
} from "../components/ui";
import { timeAgo } from "../lib/format";
import {
  browserTimeZone,
  createBody,
  CRON_EXAMPLES,
  cronHasSeconds,
  describeFailure,
  draftOf,
  formatInZone,
  newDraft,
  timeZoneOptions,
  updateBody,
  type FieldErrors,
  type ScheduleBody,
  type ScheduleDraft,
} from "../lib/schedules";
import { useDebounced } from "../lib/useDebounced";

const NEXT_RUN_COUNTS = [5, 10, 25];
const TRIGGER_MANAGED =
  "Comes from the workflow's own schedule trigger: change the cron in the workflow's definition, and enable or disable the workflow.";

function scheduleLabel(schedule: Schedule): string {
  return `schedule ${schedule.cron} of ${schedule.workflow_id}`;
}

function ScheduleEnabledToggle({ schedule }: { schedule: Schedule }) {
  const queryClient = useQueryClient();
  const { can } = useAuth();
  const toggle = useMutation({
    mutationFn: (enabled: boolean) => api.put<Schedule>(`/schedules/${schedule.id}`, { enabled }),
    // Returning the refetch keeps the switch pending until the list shows the new state (no flicker back).
    onSuccess: () => queryClient.invalidateQueries({ queryKey: ["schedules"] }),
  });
  const checked = toggle.isPending ? !!toggle.variables : schedule.enabled;
  return (
    <span className="toggle-with-label" title={schedule.from_trigger ? TRIGGER_MANAGED : undefined}>
      <Toggle
        checked={checked}
        onChange={(value) => toggle.mutate(value)}
        disabled={toggle.isPending || schedule.from_trigger || !can("schedule:update")}
        label={`${schedule.enabled ? "Disable" : "Enable"} ${scheduleLabel(schedule)}`}
      />
      <span className="small">{checked ? "Enabled" : "Disabled"}</span>
      {toggle.isError && (
        <span className="inline-error" role="alert">
          {describeFailure(toggle.error, "edit").message}
        </span>
      )}
    </span>
  );
}

/** GET /schedules/{id}/next-runs, in the schedule's zone (and UTC, which is what the API answers). */
function NextRunsPanel({ schedule }: { schedule: Schedule }) {
  const [count, setCount] = useState(NEXT_RUN_COUNTS[0]);
  const now = useNow();
  const runs = useQuery({
    // The cron and zone are in the key so that an edit shows the new times at once.
    queryKey: ["schedules", schedule.id, "next-runs", count, schedule.cron, schedule.timezone],
    queryFn: ({ signal }) => api.get<NextRuns>(`/schedules/${schedule.id}/next-runs`, { count }, signal),
    placeholderData: keepPreviousData,
    refetchInterval: 60_000, // "after now" moves on
  });
  const seconds = cronHasSeconds(schedule.cron);
  return (
    <section className="next-runs" aria-label={`Next runs of ${scheduleLabel(schedule)}`}>
      <div className="card-head">
        <h3>Next runs</h3>
        <div className="field inline">
          <label htmlFor={`next-count-${schedule.id}`}>Show</label>
          <select id={`next-count-${schedule.id}`} value={count} onChange={(e) => setCount(Number(e.target.value))}>
            {NEXT_RUN_COUNTS.map((n) => (
              <option key={n} value={n}>
                {n}
              </option>
            ))}
          </select>
        </div>
      </div>
      {!schedule.enabled && <p className="notice small">Disabled: these are the times it would run once enabled.</p>}
      {runs.isPending ? (
        <Skeleton lines={3} />
      ) : runs.isError ? (
        <ErrorState error={runs.error} title="Could not compute the next runs" onRetry={() => runs.refetch()} />
      ) : (
        <ol className="next-run-list" data-testid={`next-runs-${schedule.id}`}>
          {runs.data.next_runs.map((run) => (
            <li key={run}>
              <time dateTime={run}>{formatInZone(run, schedule.timezone, seconds)}</time>
              <span className="muted small">
                {" "}
                · {timeAgo(run, now)}
                {schedule.timezone !== "UTC" && <> · {formatInZone(run, "UTC", seconds)}</>}
              </span>
            </li>
          ))}
        </ol>
      )}
    </section>
  );
}

function ScheduleDetails({ schedule }: { schedule: Schedule }) {
  return (
    <div className="two-columns schedule-details">
      <NextRunsPanel schedule={schedule} />
      <section aria-label="Payload">
        <h3>Payload of every run</h3>
        <JsonBlock value={schedule.payload} label={`Payload of ${scheduleLabel(schedule)}`} />
        <p className="muted small">
          Created <Time value={schedule.created_at} /> · updated <Time value={schedule.updated_at} />
        </p>
      </section>
    </div>
  );
}

function ScheduleRow({
  schedule,
  expanded,
  onExpand,
  onEdit,
  onDelete,
}: {
  schedule: Schedule;
  expanded: boolean;
  onExpand: () => void;
  onEdit: () => void;
  onDelete: () => void;
}) {
  const { can } = useAuth();
  return (
    <Fragment>
      <tr data-testid={`schedule-${schedule.id}`} data-enabled={schedule.enabled}>
        <td>
          <Link to={`/workflows/${schedule.workflow_row_id}`} className="strong-link mono">
            {schedule.workflow_id}
          </Link>
          {schedule.from_trigger && (
            <div>
              <span title={TRIGGER_MANAGED}>
                <Tag>workflow trigger</Tag>
              </span>
            </div>
          )}
        </td>
        <td>
          <span className="mono">{schedule.cron}</span>
          <div className="muted small">{schedule.timezone}</div>
        </td>
        <td>
          <ScheduleEnabledToggle schedule={schedule} />
        </td>
        <td>{schedule.next_run_at ? <Time value={schedule.next_run_at} /> : <span className="muted small">not while disabled</span>}</td>
        <td>{schedule.last_run_at ? <Time value={schedule.last_run_at} /> : <span className="muted small">never</span>}</td>
        <td className="actions-cell">
          <span className="actions">
            <button type="button" className="btn btn-small" aria-expanded={expanded} onClick={onExpand}>
              Next runs
            </button>
            {!schedule.from_trigger && can("schedule:update") && (
              <button type="button" className="btn btn-small" onClick={onEdit}>
                Edit
              </button>
            )}
            {!schedule.from_trigger && can("schedule:delete") && (
              <button type="button" className="btn btn-small btn-danger-outline" onClick={onDelete}>
                Delete
              </button>
            )}
          </span>
        </td>
      </tr>
      {expanded && (
        <tr className="detail-row">
          <td colSpan={6}>
            <ScheduleDetails schedule={schedule} />
          </td>
        </tr>
      )}
    </Fragment>
  );
}

/** The workflows a schedule can start: the newest version of each (a run starts the enabled one). */
function WorkflowPicker({
  value,
  onChange,
  preferSlug,
  error,
}: {
  value: string;
  onChange: (rowId: string) => void;
  preferSlug?: string;
  error?: string;
}) {
  const [search, setSearch] = useState("");
  const debounced = useDebounced(search, 300);
  const workflows = useQuery({
    queryKey: ["workflows", { picker: true, search: debounced }],
    queryFn: ({ signal }) =>
      api.get<WorkflowPage>("/workflows", { latest: true, search: debounced || undefined, page_size: 100 }, signal),
    placeholderData: keepPreviousData,
  });
  const options = workflows.data?.workflows ?? [];
  const selected: Workflow | undefined = options.find((w) => w.id === value);

  // Coming from a filtered list (?workflow_id=...), start with that workflow chosen.
  useEffect(() => {
    if (value || !preferSlug) return;
    const match = options.find((w) => w.workflow_id === preferSlug);
    if (match) onChange(match.id);
  }, [options, preferSlug, value]);

  if (workflows.isPending) return <Skeleton lines={1} />;
  if (workflows.isError) return <ErrorState error={workflows.error} title="Could not list the workflows" onRetry={() => workflows.refetch()} />;
  const manyWorkflows = workflows.data.total > options.length || !!search;
  return (
    <Field
      label="Workflow"
      htmlFor="sch-workflow"
      error={error}
      hint={
        selected && !selected.enabled
          ? `Its newest version (${selected.version}) is disabled. Runs start whichever version is enabled; while none is, due runs are skipped.`
          : "Each run starts the workflow's enabled version with the payload below."
      }
    >
      {manyWorkflows && (
        <input
          type="search"
          aria-label="Find a workflow"
          placeholder="Find a workflow by name or id"
          value={search}
          onChange={(e) => setSearch(e.target.value)}
        />
      )}
      {options.length === 0 && !search ? (
        <p className="muted small">
          No workflows yet. <Link to="/workflows/new">Create one</Link> first.
        </p>
      ) : (
        <select id="sch-workflow" value={value} onChange={(e) => onChange(e.target.value)} aria-invalid={!!error} required>
          <option value="">Choose a workflow…</option>
          {/* Keep the chosen one listed while a search narrows the others away. */}
          {value && !selected && <option value={value}>(chosen earlier)</option>}
          {options.map((w) => (
            <option key={w.id} value={w.id}>
              {w.name} ({w.workflow_id})
            </option>
          ))}
        </select>
      )}
    </Field>
  );
}

/** Create (no `schedule`) or edit a schedule; the API's field errors are shown next to the fields. */
function ScheduleForm({
  schedule,
  preferSlug,
  onSaved,
  onCancel,
}: {
  schedule?: Schedule;
  preferSlug?: string;
  onSaved: (saved: Schedule) => void;
  onCancel: () => void;
}) {
  const queryClient = useQueryClient();
  const mode = schedule ? "edit" : "create";
  const form = useRef<HTMLFormElement>(null);
  const [draft, setDraft] = useState<ScheduleDraft>(() => (schedule ? draftOf(schedule) : newDraft()));
  const [errors, setErrors] = useState<FieldErrors>({});
  const [message, setMessage] = useState<string | null>(null);
  // Bumped on every failed submit: focus goes to the first field in error then, not while typing.
  const [failedSubmits, setFailedSubmits] = useState(0);
  const zones = useMemo(timeZoneOptions, []);
  const myZone = browserTimeZone();

  useEffect(() => {
    if (failedSubmits) form.current?.querySelector<HTMLElement>('[aria-invalid="true"]')?.focus();
  }, [failedSubmits]);

  const save = useMutation({
    mutationFn: (body: ScheduleBody) =>
      schedule
        ? api.put<Schedule>(`/schedules/${schedule.id}`, body)
        : api.post<Schedule>(`/workflows/${draft.workflowRowId}/schedules`, body),
    onSuccess: async (saved) => {
      await queryClient.invalidateQueries({ queryKey: ["schedules"] });
      onSaved(saved);
    },
    onError: (error) => {
      const failure = describeFailure(error, mode);
      setErrors(failure.fields);
      setMessage(failure.message);
      setFailedSubmits((n) => n + 1);
    },
  });

  function change<K extends keyof ScheduleDraft>(key: K, value: ScheduleDraft[K]) {
    setDraft((current) => ({ ...current, [key]: value }));
    const field = key === "workflowRowId" ? "workflow" : key;
    setErrors((current) => ({ ...current, [field]: undefined }));
  }

  return (
    <form
      ref={form}
      noValidate // the API is the judge of a cron or a zone; its answer lands next to the field
      onSubmit={(event) => {
        event.preventDefault();
        const built = schedule ? updateBody(schedule, draft) : createBody(draft);
        if (!built.ok) {
          setErrors(built.errors);
          setMessage(null);
          setFailedSubmits((n) => n + 1);
          return;
        }
        if (schedule && !Object.keys(built.body).length) return onSaved(schedule); // nothing changed
        setMessage(null);
        save.mutate(built.body);
      }}
    >
      {schedule ? (
        <div className="field">
          <span className="field-label">Workflow</span>
          <span className="mono">{schedule.workflow_id}</span>
        </div>
      ) : (
        <WorkflowPicker
          value={draft.workflowRowId}
          onChange={(rowId) => change("workflowRowId", rowId)}
          preferSlug={preferSlug}
          error={errors.workflow}
        />
      )}
      <div className="field-row">
        <Field
          label="Cron expression"
          htmlFor="sch-cron"
          error={errors.cron}
          hint="5 fields (minute hour day month weekday), 6 with seconds first, or @hourly, @daily, @weekly, @monthly, @yearly."
        >
          <input
            id="sch-cron"
            className="mono"
            list="sch-cron-examples"
            value={draft.cron}
            onChange={(e) => change("cron", e.target.value)}
            placeholder="0 9 * * 1-5"
            autoComplete="off"
            spellCheck={false}
            maxLength={100}
            aria-invalid={!!errors.cron}
            required
          />
          <datalist id="sch-cron-examples">
            {CRON_EXAMPLES.map((example) => (
              <option key={example.cron} value={example.cron} label={example.label} />
            ))}
          </datalist>
        </Field>
        <Field
          label="Timezone"
          htmlFor="sch-timezone"
          error={errors.timezone}
          hint={
            <>
              IANA name; the cron is read in its local time, daylight saving included.
              {myZone && myZone !== draft.timezone && (
                <>
                  {" "}
                  <button type="button" className="link-button" onClick={() => change("timezone", myZone)}>
                    Use {myZone}
                  </button>
                </>
              )}
            </>
          }
        >
          <input
            id="sch-timezone"
            list="sch-timezones"
            value={draft.timezone}
            onChange={(e) => change("timezone", e.target.value)}
            autoComplete="off"
            spellCheck={false}
            maxLength={64}
            aria-invalid={!!errors.timezone}
            required
          />
          <datalist id="sch-timezones">
            {zones.map((zone) => (
              <option key={zone} value={zone} />
            ))}
          </datalist>
        </Field>
      </div>
      <Field
        label="Payload (JSON object)"
        htmlFor="sch-payload"
        error={errors.payload}
        hint="The trigger payload of every run: the execution's initial context."
      >
        <textarea
          id="sch-payload"
          className="code"
          rows={6}
          spellCheck={false}
          value={draft.payload}
          onChange={(e) => change("payload", e.target.value)}
          aria-invalid={!!errors.payload}
        />
      </Field>
      <div className={`field${errors.enabled ? " has-error" : ""}`}>
        <label className="checkbox">
          <input
            id="sch-enabled"
            type="checkbox"
            checked={draft.enabled}
            onChange={(e) => change("enabled", e.target.checked)}
            aria-invalid={!!errors.enabled}
          />
          Enabled: start runs at the due times
        </label>
        {errors.enabled && (
          <span className="field-error" role="alert">
            {errors.enabled}
          </span>
        )}
      </div>
      {message && (
        <p className="inline-error" role="alert">
          {message}
        </p>
      )}
      <div className="dialog-actions">
        <button type="button" className="btn" onClick={onCancel}>
          Cancel
        </button>
        <button type="submit" className="btn btn-primary" disabled={save.isPending}>
          {save.isPending ? "Saving…" : schedule ? "Save changes" : "Create schedule"}
        </button>
      </div>
    </form>
  );
}

type Editing = { mode: "create" } | { mode: "edit"; schedule: Schedule };

export function SchedulesPage() {
  const { can } = useAuth();
  const queryClient = useQueryClient();
  const [params, setParams] = useSearchParams();
  const [workflowFilter, setWorkflowFilter] = useState(params.get("workflow_id") ?? "");
  const debouncedWorkflow = useDebounced(workflowFilter.trim(), 300);
  const enabled = params.get("enabled") ?? "";
  const page = Number(params.get("page") ?? 1);
  const [expanded, setExpanded] = useState<string | null>(null);
  const [editing, setEditing] = useState<Editing | null>(null);
  const [deleting, setDeleting] = useState<Schedule | null>(null);

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
    if ((params.get("workflow_id") ?? "") !== debouncedWorkflow) update({ workflow_id: debouncedWorkflow });
  }, [debouncedWorkflow]);

  const query = useQuery({
    queryKey: ["schedules", { workflow_id: debouncedWorkflow, enabled, page }],
    queryFn: ({ signal }) =>
      api.get<SchedulePage>(
        "/schedules",
        { workflow_id: debouncedWorkflow || undefined, enabled: enabled || undefined, page, page_size: 20 },
        signal,
      ),
    placeholderData: keepPreviousData,
    refetchInterval: 15_000, // next and last run move as the scheduler fires
  });

  const newButton = can("schedule:create") && (
    <button type="button" className="btn btn-primary" onClick={() => setEditing({ mode: "create" })}>
      New schedule
    </button>
  );

  return (
    <>
      <PageHeader
        title="Schedules"
        description="Cron schedules start a workflow at its due times with a fixed payload, once per due time."
        actions={newButton}
      />
      <div className="filters" role="search">
        <div className="field">
          <label htmlFor="sch-filter-workflow">Workflow id</label>
          <input
            id="sch-filter-workflow"
            type="search"
            placeholder="exact workflow_id"
            value={workflowFilter}
            onChange={(e) => setWorkflowFilter(e.target.value)}
          />
        </div>
        <div className="field">
          <label htmlFor="sch-filter-enabled">State</label>
          <select id="sch-filter-enabled" value={enabled} onChange={(e) => update({ enabled: e.target.value })}>
            <option value="">All</option>
            <option value="true">Enabled</option>
            <option value="false">Disabled</option>
          </select>
        </div>
      </div>

      {query.isPending ? (
        <TableSkeleton rows={4} columns={6} />
      ) : query.isError ? (
        <ErrorState error={query.error} title="Could not load the schedules" onRetry={() => query.refetch()} />
      ) : query.data.schedules.length === 0 ? (
        <EmptyState title={debouncedWorkflow || enabled ? "No schedule matches these filters" : "No schedules yet"} action={newButton}>
          A schedule starts a workflow on a cron, such as every weekday at 09:00 in Europe/Berlin. Workflows whose trigger
          is a schedule get one automatically.
        </EmptyState>
      ) : (
        <>
          <div className="table-wrap">
            <table className="table" aria-label="Schedules">
              <thead>
                <tr>
                  <th>Workflow</th>
                  <th>Cron · timezone</th>
                  <th>Enabled</th>
                  <th>Next run</th>
                  <th>Last run</th>
                  <th>
                    <span className="visually-hidden">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {query.data.schedules.map((schedule) => (
                  <ScheduleRow
                    key={schedule.id}
                    schedule={schedule}
                    expanded={expanded === schedule.id}
                    onExpand={() => setExpanded(expanded === schedule.id ? null : schedule.id)}
                    onEdit={() => setEditing({ mode: "edit", schedule })}
                    onDelete={() => setDeleting(schedule)}
                  />
                ))}
              </tbody>
            </table>
          </div>
          <Pagination page={page} pageSize={query.data.page_size} total={query.data.total} onPage={(p) => update({ page: String(p) })} />
        </>
      )}

      <Modal
        open={editing !== null}
        onOpenChange={(open) => !open && setEditing(null)}
        title={editing?.mode === "edit" ? "Edit schedule" : "New schedule"}
        description={
          editing?.mode === "edit"
            ? "Changing the cron or timezone, or enabling, recomputes the next run from now."
            : "The first run is the first due time after now."
        }
        wide
      >
        {editing && (
          <ScheduleForm
            key={editing.mode === "edit" ? editing.schedule.id : "new"}
            schedule={editing.mode === "edit" ? editing.schedule : undefined}
            preferSlug={debouncedWorkflow || undefined}
            onCancel={() => setEditing(null)}
            onSaved={(saved) => {
              setEditing(null);
              setExpanded(saved.id); // show its next runs straight away
            }}
          />
        )}
      </Modal>
      <ConfirmDialog
        open={deleting !== null}
        onOpenChange={(open) => !open && setDeleting(null)}
        title="Delete this schedule?"
        description={
          deleting && (
            <>
              <span className="mono">{deleting.cron}</span> ({deleting.timezone}) stops starting{" "}
              <span className="mono">{deleting.workflow_id}</span>. Executions it already started are not affected.
            </>
          )
        }
        confirmLabel="Delete schedule"
        onConfirm={async () => {
          try {
            await api.del(`/schedules/${deleting!.id}`);
          } catch (error) {
            throw new Error(describeFailure(error, "edit").message ?? errorMessage(error)); // a 403 says why
          }
          await queryClient.invalidateQueries({ queryKey: ["schedules"] });
        }}
      />
    </>
  );
}
