// Human dates and durations. Pure: `now` is a parameter wherever time matters.

const relative = new Intl.RelativeTimeFormat("en", { numeric: "auto" });
const absolute = new Intl.DateTimeFormat("en", {
  year: "numeric",
  month: "short",
  day: "numeric",
  hour: "2-digit",
  minute: "2-digit",
  second: "2-digit",
});

const UNITS: [Intl.RelativeTimeFormatUnit, number][] = [
  ["year", 365 * 24 * 3600],
  ["month", 30 * 24 * 3600],
  ["week", 7 * 24 * 3600],
  ["day", 24 * 3600],
  ["hour", 3600],
  ["minute", 60],
  ["second", 1],
];

export function parseDate(value: string | null | undefined): Date | null {
  if (!value) return null;
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? null : date;
}

/** "3 minutes ago", "in 2 hours", "now". */
export function timeAgo(value: string | null | undefined, now: Date = new Date()): string {
  const date = parseDate(value);
  if (!date) return "—";
  const seconds = Math.round((date.getTime() - now.getTime()) / 1000);
  if (Math.abs(seconds) < 5) return "just now";
  for (const [unit, size] of UNITS) {
    if (Math.abs(seconds) >= size || unit === "second") {
      return relative.format(Math.trunc(seconds / size), unit);
    }
  }
  return "—";
}

export function fullDate(value: string | null | undefined): string {
  const date = parseDate(value);
  return date ? absolute.format(date) : "—";
}

/** 850 ms, 12.3 s, 4 min 5 s, 2 h 10 min. */
export function formatDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return "—";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const seconds = ms / 1000;
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 2 : 1)} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${Math.round(seconds % 60)} s`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours} h ${minutes % 60} min`;
  return `${Math.floor(hours / 24)} d ${hours % 24} h`;
}

/** "1h 02m 05s left" until `until`, or "expired". */
export function countdown(until: string | null | undefined, now: Date = new Date()): string {
  const date = parseDate(until);
  if (!date) return "no expiry";
  let left = Math.floor((date.getTime() - now.getTime()) / 1000);
  if (left <= 0) return "expired";
  const days = Math.floor(left / 86400);
  left -= days * 86400;
  const hours = Math.floor(left / 3600);
  left -= hours * 3600;
  const minutes = Math.floor(left / 60);
  const seconds = left - minutes * 60;
  const pad = (n: number) => String(n).padStart(2, "0");
  if (days > 0) return `${days}d ${hours}h ${pad(minutes)}m left`;
  if (hours > 0) return `${hours}h ${pad(minutes)}m ${pad(seconds)}s left`;
  return `${minutes}m ${pad(seconds)}s left`;
}

export function percent(value: number | null | undefined): string {
  if (value === null || value === undefined) return "—";
  // The API answers a ratio (0..1); tolerate a percentage too.
  const ratio = value > 1 ? value / 100 : value;
  return `${(ratio * 100).toFixed(1)}%`;
}

export function shortId(id: string | null | undefined): string {
  return id ? id.slice(0, 8) : "—";
}

export function pretty(value: unknown): string {
  if (value === undefined) return "";
  try {
    return JSON.stringify(value, null, 2);
  } catch {
    return String(value);
  }
}
