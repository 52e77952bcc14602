// Shapes of the API's JSON (see /api/v1/openapi.json and SPEC §3). Only the
// fields the console reads are spelled out; everything else passes through.

export interface Paged {
  total: number;
  page: number;
  page_size: number;
}

export interface TokenPair {
  access_token: string;
  refresh_token: string;
  expires_in: number;
  token_type: string;
}

export interface OrganizationRef {
  id: string;
  name: string;
  slug?: string;
  role: string;
}

export interface Registration extends TokenPair {
  user: { id: string; username: string; email: string };
  organization: OrganizationRef;
}

export interface Me {
  user_id: string;
  username: string;
  email: string;
  first_name?: string | null;
  last_name?: string | null;
  organization_id: string;
  role: string;
  approver_roles: string[];
  permissions: string[];
  organizations: OrganizationRef[];
  api_key_id?: string | null;
}

export interface Organization {
  id: string;
  name: string;
  slug?: string;
  description?: string | null;
  role?: string;
  created_at?: string;
}

export type JsonObject = Record<string, unknown>;

export interface Definition {
  trigger?: { type?: string; event?: string; cron?: string; timezone?: string; filter?: unknown };
  context?: JsonObject;
  steps?: unknown[];
  timeout?: string;
}

export interface Workflow {
  id: string;
  organization_id: string;
  workflow_id: string;
  version: string;
  name: string;
  description?: string | null;
  definition: Definition;
  enabled: boolean;
  tags: string[];
  created_at: string;
  updated_at: string;
  created_by?: string | null;
}

export interface WorkflowPage extends Paged {
  workflows: Workflow[];
}

export interface VersionPage extends Paged {
  versions: Workflow[];
}

export type ExecutionStatus =
  | "pending"
  | "running"
  | "waiting"
  | "paused"
  | "completed"
  | "failed"
  | "cancelled";

export const EXECUTION_STATUSES: ExecutionStatus[] = [
  "pending",
  "running",
  "waiting",
  "paused",
  "completed",
  "failed",
  "cancelled",
];

export const FINAL_STATUSES = new Set<string>(["completed", "failed", "cancelled"]);

export interface Execution {
  id: string;
  workflow_id: string;
  workflow_row_id: string;
  workflow_version: string;
  status: ExecutionStatus | string;
  result?: string | null;
  error_type?: string | null;
  error_message?: string | null;
  trigger_type?: string;
  trigger_event?: string | null;
  trigger_payload?: JsonObject;
  context?: JsonObject;
  current_step_id?: string | null;
  attempt_group?: number;
  started_at?: string | null;
  completed_at?: string | null;
  duration_ms?: number | null;
  created_at?: string;
  updated_at?: string;
}

export interface ExecutionPage extends Paged {
  executions: Execution[];
}

export interface StepRun {
  id: string;
  step_id: string;
  step_type: string;
  branch_key?: string;
  status: string;
  attempt: number;
  attempt_group?: number;
  input?: unknown;
  output?: unknown;
  error_message?: string | null;
  error_code?: string | null;
  due_at?: string | null;
  started_at?: string | null;
  completed_at?: string | null;
  duration_ms?: number | null;
}

export interface Trace {
  execution: Execution;
  steps: StepRun[];
}

export interface DryRun {
  path: string[];
  decisions: JsonObject[];
  result?: string | null;
  status: string;
  error_type?: string | null;
  message?: string | null;
  effects: JsonObject[];
  steps: JsonObject[];
  waiting?: JsonObject | null;
  context: JsonObject;
}

export interface ShadowCount {
  count: number;
  change?: string;
  step_id?: string;
}

export interface ShadowSummary {
  events_replayed: number;
  same_result: number;
  different_result: number;
  differences: number;
  unresolved: number;
  by_change: ShadowCount[];
  steps_newly_reached: ShadowCount[];
  steps_no_longer_reached: ShadowCount[];
}

/** One replayed event whose run differs: the recorded run (`from`) beside the candidate's (`to`). */
export interface ShadowDifference {
  event_id: string;
  event_type: string;
  received_at: string;
  recorded_execution_id?: string | null;
  recorded_version?: string | null;
  from: string;
  to: string;
  path_from: string[];
  path_to: string[];
  newly_reached: string[];
  no_longer_reached: string[];
  decisions_changed: JsonObject[];
  approvals_from: string[];
  approvals_to: string[];
  unresolved?: JsonObject | null;
  would: JsonObject[];
}

export interface ShadowReport {
  id: string;
  workflow_id: string;
  workflow_row_id?: string | null;
  status: "pending" | "running" | "completed" | "failed";
  selection: JsonObject;
  summary?: ShadowSummary | null;
  error_message?: string | null;
  created_at: string;
  started_at?: string | null;
  completed_at?: string | null;
  differences: ShadowDifference[];
  total: number;
  page: number;
  page_size: number;
}

export interface EventRecord {
  id: string;
  event_type: string;
  source?: string | null;
  payload: JsonObject;
  idempotency_key?: string | null;
  received_at: string;
  triggered_workflows: string[];
  execution_ids: string[];
}

export interface EventPage extends Paged {
  events: EventRecord[];
}

// SPEC §3 approval shape.
export interface Approval {
  id: string;
  execution_id: string;
  workflow_id?: string;
  step_id: string;
  entity_type?: string | null;
  entity_id?: string | null;
  approver_role?: string | null;
  status: string;
  reason?: string | null;
  data?: JsonObject | null;
  decided_by?: string | null;
  decision_reason?: string | null;
  requested_at?: string | null;
  decided_at?: string | null;
  expires_at?: string | null;
}

export interface ApprovalPage extends Paged {
  approvals: Approval[];
}

// SPEC §3 schedules (api/schedules/schemas.py). Times are UTC ISO strings.
export interface Schedule {
  id: string;
  /** The workflow's slug: a run starts its enabled version, whichever that is. */
  workflow_id: string;
  /** The workflow version the schedule was attached to. */
  workflow_row_id: string;
  cron: string;
  timezone: string;
  payload: JsonObject;
  enabled: boolean;
  /** Derived from the workflow's own `trigger.schedule`; kept in step with it by the API. */
  from_trigger: boolean;
  next_run_at?: string | null;
  last_run_at?: string | null;
  created_at: string;
  updated_at: string;
}

export interface SchedulePage extends Paged {
  schedules: Schedule[];
}

export interface NextRuns {
  schedule_id: string;
  cron: string;
  timezone: string;
  next_runs: string[];
}

export interface ApiKey {
  id: string;
  name: string;
  key_prefix: string;
  scopes: string[];
  user_id?: string | null;
  expires_at?: string | null;
  last_used_at?: string | null;
  revoked_at?: string | null;
  created_at: string;
}

export interface ApiKeyCreated extends ApiKey {
  api_key: string;
}

export interface ApiKeyPage extends Paged {
  api_keys: ApiKey[];
}

export interface AuditLog {
  id: string;
  organization_id: string;
  actor_user_id?: string | null;
  actor_api_key_id?: string | null;
  action: string;
  resource_type?: string | null;
  resource_id?: string | null;
  changes?: JsonObject | null;
  ip_address?: string | null;
  request_id?: string | null;
  created_at: string;
}

export interface AuditLogPage extends Paged {
  audit_logs: AuditLog[];
}

export interface OrganizationPage extends Paged {
  organizations: Organization[];
}

// Analytics
export interface WorkflowStats {
  workflow_id: string;
  total: number;
  completed: number;
  failed: number;
  cancelled: number;
  success_rate?: number | null;
  avg_duration_ms?: number | null;
  last_run_at?: string | null;
}

export interface Dashboard {
  time_range: string;
  executions: { total: number; by_status: Record<string, number>; by_result: Record<string, number> };
  success_rate?: number | null;
  avg_duration_ms?: number | null;
  p95_duration_ms?: number | null;
  active: number;
  waiting: number;
  pending_approvals: number;
  events_received: number;
  top_workflows: WorkflowStats[];
}

export interface Stats {
  total: number;
  completed: number;
  failed: number;
  cancelled: number;
  by_status: Record<string, number>;
  by_result: Record<string, number>;
  error_types: Record<string, number>;
  success_rate?: number | null;
  avg_duration_ms?: number | null;
  p50_duration_ms?: number | null;
  p95_duration_ms?: number | null;
  p99_duration_ms?: number | null;
}

export interface TrendBucket {
  bucket: string;
  total: number;
  completed: number;
  failed: number;
  cancelled: number;
  in_progress: number;
  avg_duration_ms?: number | null;
}

export interface Trends {
  interval: string;
  buckets: TrendBucket[];
}

export interface ErrorGroup {
  error_type: string;
  error_message?: string | null;
  count: number;
  last_seen?: string | null;
  workflow_ids: string[];
}

export interface RecentFailure {
  execution_id: string;
  workflow_id: string;
  workflow_version?: string;
  error_type?: string | null;
  error_message?: string | null;
  failed_at?: string | null;
}

export interface Errors {
  total_failed: number;
  groups: ErrorGroup[];
  recent: RecentFailure[];
}

export interface StepStats {
  workflow_id: string;
  step_id: string;
  step_type: string;
  runs: number;
  completed: number;
  failures: number;
  skipped: number;
  retries: number;
  avg_duration_ms?: number | null;
  p95_duration_ms?: number | null;
}

export interface StepStatsPage extends Paged {
  steps: StepStats[];
}

export interface WorkflowStatsPage extends Paged {
  workflows: WorkflowStats[];
}
