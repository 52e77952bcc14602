import * as RadixSwitch from "@radix-ui/react-switch";
import { useEffect, useId, useState, type ReactNode } from "react";
import { ApiError, errorMessage } from "../api/client";
import { countdown, fullDate, pretty, timeAgo } from "../lib/format";

/** The current time, refreshed every `intervalMs` (for relative dates and countdowns). */
export function useNow(intervalMs = 30_000): Date {
  const [now, setNow] = useState(() => new Date());
  useEffect(() => {
    const timer = window.setInterval(() => setNow(new Date()), intervalMs);
    return () => window.clearInterval(timer);
  }, [intervalMs]);
  return now;
}

export function PageHeader({
  title,
  description,
  actions,
}: {
  title: ReactNode;
  description?: ReactNode;
  actions?: ReactNode;
}) {
  return (
    <header className="page-header">
      <div>
        <h1>{title}</h1>
        {description && <p className="muted">{description}</p>}
      </div>
      {actions && <div className="page-actions">{actions}</div>}
    </header>
  );
}

export function Time({ value, prefix }: { value: string | null | undefined; prefix?: string }) {
  const now = useNow();
  if (!value) return <span className="muted">—</span>;
  return (
    <time dateTime={value} title={fullDate(value)}>
      {prefix}
      {timeAgo(value, now)}
    </time>
  );
}

export function Countdown({ until }: { until: string | null | undefined }) {
  const now = useNow(1000);
  const text = countdown(until, now);
  const urgent = until ? new Date(until).getTime() - now.getTime() < 15 * 60_000 : false;
  return (
    <span className={`countdown${text === "expired" ? " expired" : urgent ? " urgent" : ""}`} title={fullDate(until)}>
      {text}
    </span>
  );
}

const STATUS_TONE: Record<string, string> = {
  completed: "ok",
  approved: "ok",
  allowed: "ok",
  executed: "ok",
  enabled: "ok",
  running: "info",
  pending: "info",
  waiting: "warn",
  paused: "warn",
  expired: "warn",
  skipped: "muted",
  cancelled: "muted",
  disabled: "muted",
  failed: "bad",
  rejected: "bad",
  blocked: "bad",
};

export function StatusBadge({ status, label }: { status: string | null | undefined; label?: string }) {
  if (!status) return <span className="muted">—</span>;
  return (
    <span className={`badge badge-${STATUS_TONE[status] ?? "muted"}`} data-status={status}>
      {label ?? status}
    </span>
  );
}

export function Tag({ children }: { children: ReactNode }) {
  return <span className="tag">{children}</span>;
}

export function Skeleton({ lines = 3, height = 14 }: { lines?: number; height?: number }) {
  return (
    <div className="skeleton-block" aria-busy="true" aria-label="Loading">
      {Array.from({ length: lines }, (_, i) => (
        <div key={i} className="skeleton" style={{ height, width: `${90 - ((i * 17) % 40)}%` }} />
      ))}
    </div>
  );
}

export function TableSkeleton({ rows = 5, columns = 5 }: { rows?: number; columns?: number }) {
  return (
    <div className="table-wrap" aria-busy="true" aria-label="Loading">
      <table className="table">
        <tbody>
          {Array.from({ length: rows }, (_, r) => (
            <tr key={r}>
              {Array.from({ length: columns }, (_, c) => (
                <td key={c}>
                  <div className="skeleton" style={{ height: 12, width: `${50 + ((r + c * 7) % 5) * 10}%` }} />
                </td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

export function EmptyState({ title, children, action }: { title: string; children?: ReactNode; action?: ReactNode }) {
  return (
    <div className="empty-state" role="status">
      <strong>{title}</strong>
      {children && <p className="muted">{children}</p>}
      {action}
    </div>
  );
}

export function ErrorState({
  error,
  title = "Something went wrong",
  onRetry,
}: {
  error: unknown;
  title?: string;
  onRetry?: () => void;
}) {
  const status = error instanceof ApiError ? error.status : undefined;
  let hint: string | null = null;
  if (status === 404) hint = "This server does not have it (yet).";
  if (status === 403) hint = "Your role in this organization does not allow it.";
  return (
    <div className="error-state" role="alert">
      <strong>
        {title}
        {status ? ` (${status})` : ""}
      </strong>
      <p>{errorMessage(error)}</p>
      {hint && <p className="muted">{hint}</p>}
      {onRetry && (
        <button type="button" className="btn" onClick={onRetry}>
          Try again
        </button>
      )}
    </div>
  );
}

export function InlineError({ error }: { error: unknown }) {
  if (!error) return null;
  return (
    <p className="inline-error" role="alert">
      {errorMessage(error)}
    </p>
  );
}

export function Pagination({
  page,
  pageSize,
  total,
  onPage,
}: {
  page: number;
  pageSize: number;
  total: number;
  onPage: (page: number) => void;
}) {
  const pages = Math.max(1, Math.ceil(total / pageSize));
  if (total <= pageSize && page === 1) return <p className="muted small">{total} in all</p>;
  return (
    <nav className="pagination" aria-label="Pages">
      <button type="button" className="btn btn-small" disabled={page <= 1} onClick={() => onPage(page - 1)}>
        ← Previous
      </button>
      <span className="muted small">
        Page {page} of {pages} · {total} in all
      </span>
      <button type="button" className="btn btn-small" disabled={page >= pages} onClick={() => onPage(page + 1)}>
        Next →
      </button>
    </nav>
  );
}

export function JsonBlock({ value, label }: { value: unknown; label?: string }) {
  if (value === undefined || value === null) return <span className="muted">none</span>;
  return (
    <pre className="json" aria-label={label} tabIndex={0}>
      {pretty(value)}
    </pre>
  );
}

export function Field({
  label,
  hint,
  error,
  children,
  htmlFor,
}: {
  label: string;
  hint?: ReactNode;
  error?: string | null;
  children: ReactNode;
  htmlFor?: string;
}) {
  return (
    <div className={`field${error ? " has-error" : ""}`}>
      <label htmlFor={htmlFor}>{label}</label>
      {children}
      {hint && !error && <span className="hint">{hint}</span>}
      {error && (
        <span className="field-error" role="alert">
          {error}
        </span>
      )}
    </div>
  );
}

export function Toggle({
  checked,
  onChange,
  label,
  disabled,
}: {
  checked: boolean;
  onChange: (checked: boolean) => void;
  label: string;
  disabled?: boolean;
}) {
  const id = useId();
  return (
    <span className="toggle">
      <RadixSwitch.Root
        id={id}
        className="switch"
        checked={checked}
        onCheckedChange={onChange}
        disabled={disabled}
        aria-label={label}
      >
        <RadixSwitch.Thumb className="switch-thumb" />
      </RadixSwitch.Root>
    </span>
  );
}

export function Stat({ label, value, hint }: { label: string; value: ReactNode; hint?: ReactNode }) {
  return (
    <div className="stat">
      <span className="stat-label">{label}</span>
      <span className="stat-value">{value}</span>
      {hint && <span className="stat-hint muted small">{hint}</span>}
    </div>
  );
}
