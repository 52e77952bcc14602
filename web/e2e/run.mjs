// End-to-end test of the console in headless Debian Chromium, driven by
// playwright-core against a running stack (API + worker + beat) whose URL is
// IW_BASE_URL. tests/e2e/web/test_console.py starts that stack on a throwaway
// database and runs this script; it can also be pointed at `make up`:
//
//   IW_BASE_URL=http://127.0.0.1:8080 IW_STREAM_URL=http://127.0.0.1:8081 node web/e2e/run.mjs
//
// IW_STREAM_URL is the stream service's origin (what GET /streams/endpoint names);
// empty when a same-origin proxy routes the stream paths. IW_E2E_PHASES=a,b runs
// only those phases.
//
// Each phase is recorded in <artifacts>/results.json (passed / failed /
// skipped with the reason); a screenshot of every page is saved next to it.
// Exit code 0 only when no phase failed.

import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { chromium } from "playwright-core";

const BASE = (process.env.IW_BASE_URL ?? "http://127.0.0.1:8080").replace(/\/$/, "");
const ARTIFACTS = resolve(process.env.IW_ARTIFACTS_DIR ?? "test-artifacts/web");
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const TIMEOUT = Number(process.env.IW_E2E_TIMEOUT_MS ?? 15000);
const EXECUTION_TIMEOUT = Number(process.env.IW_E2E_EXECUTION_TIMEOUT_MS ?? 45000);
// The stream service when it has an origin of its own (make up, the e2e stack); empty: the
// streams are on the console's origin (a proxy routes their paths to the stream service).
const STREAM_BASE = (process.env.IW_STREAM_URL ?? "").replace(/\/$/, "");
const STREAM_URL = STREAM_BASE || BASE;
const isStreamPath = (url) => /^\/api\/v1\/executions\/(stream|[0-9a-f-]{36}\/events)$/.test(url.pathname);
// IW_E2E_PHASES=a,b,c runs only those phases (a run behind a proxy needs the live ones only).
const ONLY = new Set((process.env.IW_E2E_PHASES ?? "").split(",").filter(Boolean));

mkdirSync(ARTIFACTS, { recursive: true });
const results = { base_url: BASE, phases: {}, screenshots: [], console_errors: [], csp_violations: [], started_at: new Date().toISOString() };
const started = Date.now();

const suffix = `${Date.now().toString(36)}${Math.floor(Math.random() * 1e4)}`;
const user = { username: `ada_${suffix}`, email: `ada_${suffix}@example.com`, password: "correct-horse-battery-9" };
const workflowId = `e2e_order_approval_${suffix}`;

function workflowDocument(nextOfApproval) {
  return {
    workflow_id: workflowId,
    version: "1.0.0",
    name: `E2E order approval ${suffix}`,
    description: "Orders of 1000 or more wait for a sales manager",
    tags: ["orders", "e2e"],
    definition: {
      trigger: { type: "event", event: "order.created" },
      steps: [
        {
          id: "check_total",
          type: "condition",
          condition: { field: "order.total", operator: "gte", value: 1000 },
          on_true: "manager_approval",
          on_false: "allow",
        },
        {
          id: "manager_approval",
          type: "action",
          action: { type: "require_approval", reason: "Order of 1000 or more" },
          metadata: { approver_role: "sales_manager" },
          next: nextOfApproval,
        },
        {
          id: "record_decision",
          type: "execute",
          execute: [{ type: "log", message: "order {{ order.id }} approved" }],
          next: "allow",
        },
        { id: "allow", type: "action", action: { type: "allow" } },
      ],
    },
  };
}

class Skip extends Error {}

const browserDir = mkdtempSync(join(tmpdir(), "iw-chromium-"));
// A persistent context on a fresh, throwaway profile directory: nothing leaks between runs.
const context = await chromium.launchPersistentContext(browserDir, {
  executablePath: CHROMIUM,
  headless: true,
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
  viewport: { width: 1366, height: 860 },
  locale: "en-US",
});
context.setDefaultTimeout(TIMEOUT);
const page = context.pages()[0] ?? (await context.newPage());
page.on("console", (message) => {
  const text = message.text();
  if (/Content Security Policy|Refused to (load|execute|apply|connect|evaluate)/i.test(text)) results.csp_violations.push(text);
  else if (message.type() === "error" && !/status of (401|404|409|422)/.test(text) && !(blockingStreams && /ERR_FAILED/.test(text)))
    results.console_errors.push(text);
});
page.on("pageerror", (error) => results.console_errors.push(`pageerror: ${error.message}`));

async function shot(name) {
  const file = join(ARTIFACTS, `${name}.png`);
  await page.waitForTimeout(250); // let charts and the graph settle
  await page.screenshot({ path: file, fullPage: true });
  results.screenshots.push(file);
}

async function phase(name, body) {
  if (ONLY.size && !ONLY.has(name)) return;
  const t0 = Date.now();
  try {
    await body();
    results.phases[name] = { status: "passed", seconds: (Date.now() - t0) / 1000 };
    console.log(`PASS ${name} (${((Date.now() - t0) / 1000).toFixed(1)}s)`);
  } catch (error) {
    if (error instanceof Skip) {
      results.phases[name] = { status: "skipped", reason: error.message };
      console.log(`SKIP ${name}: ${error.message}`);
      return;
    }
    results.phases[name] = { status: "failed", error: String(error?.stack ?? error), url: page.url() };
    console.log(`FAIL ${name}: ${error?.message ?? error}`);
    try {
      await shot(`failed-${name}`);
    } catch {
      /* the page may be gone */
    }
  }
}

const failed = (name) => results.phases[name]?.status !== "passed";
function requires(...names) {
  const missing = names.filter(failed);
  if (missing.length) throw new Skip(`needs ${missing.join(", ")}`);
}

function expect(condition, message) {
  if (!condition) throw new Error(message);
}

let workflowRowId = null;
// While the fallback phase blocks the stream service, the browser logs each refused request.
let blockingStreams = false;
// Every stream request the console opened: [url, timestamp].
const streamRequests = [];
page.on("request", (request) => {
  if (isStreamPath(new URL(request.url()))) streamRequests.push(request.url());
});

/** The API as another client (a second approver, another event source): the browser only watches. */
async function apiCall(method, path, body, token) {
  const response = await fetch(`${BASE}/api/v1${path}`, {
    method,
    headers: { "Content-Type": "application/json", ...(token ? { Authorization: `Bearer ${token}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path} answered ${response.status}: ${text}`);
  return text ? JSON.parse(text) : null;
}

async function signInElsewhere() {
  return (await apiCall("POST", "/auth/login", { username: user.username, password: user.password })).access_token;
}

async function orderWaitingForApproval(token, orderId) {
  const sent = await apiCall("POST", "/events", { event_type: "order.created", payload: { order: { id: orderId, total: 3000 } } }, token);
  expect(sent.execution_ids.length === 1, `the event started ${sent.execution_ids.length} executions`);
  return sent.execution_ids[0];
}

async function approveElsewhere(token, execution) {
  const deadline = Date.now() + EXECUTION_TIMEOUT;
  for (;;) {
    const page_ = await apiCall("GET", `/approvals?execution_id=${execution}&status=pending`, undefined, token);
    if (page_.approvals.length) {
      await apiCall("POST", `/approvals/${page_.approvals[0].id}/approve`, { reason: "approved by another client in e2e" }, token);
      return;
    }
    expect(Date.now() < deadline, `no pending approval for ${execution}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** How many times the console asked for `pattern` during `ms`: polling would ask every 1.5-4 s. */
async function requestsDuring(pattern, ms) {
  let count = 0;
  const count_ = (request) => {
    if (pattern.test(request.url())) count += 1;
  };
  page.on("request", count_);
  await page.waitForTimeout(ms);
  page.off("request", count_);
  return count;
}
let executionId = null;

await phase("console_served_under_csp", async () => {
  const response = await page.goto(`${BASE}/`);
  const csp = response.headers()["content-security-policy"] ?? "";
  expect(csp.includes("script-src 'self'"), `unexpected CSP: ${csp}`);
  await page.waitForURL(/\/sign-in$/);
  await page.getByRole("heading", { name: "Sign in" }).waitFor();
  // Keyboard: the first Tab lands on the skip link or the first field, never nowhere.
  await page.keyboard.press("Tab");
  const focused = await page.evaluate(() => document.activeElement?.tagName);
  expect(["INPUT", "A", "BUTTON"].includes(focused), `focus went to ${focused}`);
  await shot("01-sign-in");
});

await phase("register", async () => {
  requires("console_served_under_csp");
  await page.getByRole("link", { name: "Create one" }).click();
  await page.getByLabel("Username").fill(user.username);
  await page.getByLabel("Email").fill(user.email);
  await page.getByLabel("Password").fill(user.password);
  await shot("02-register");
  await page.getByRole("button", { name: "Create account" }).click();
  await page.waitForURL(/\/workflows$/);
  await page.getByText("No workflows yet").waitFor();
  await shot("03-workflows-empty");
});

await phase("sign_out_and_in", async () => {
  requires("register");
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.waitForURL(/\/sign-in$/);
  await page.getByLabel("Username or email").fill(user.username);
  await page.getByLabel("Password").fill("wrong-password-1");
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("alert").waitFor();
  await page.getByLabel("Password").fill(user.password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(/\/workflows$/);
  // A reload keeps the session: the tab's refresh token opens a new access token.
  await page.reload();
  await page.getByRole("heading", { name: "Workflows" }).waitFor();
  expect(!page.url().includes("sign-in"), "reload lost the session");
  // Without a refresh token, a reload goes to the sign-in page and back after.
  const refresh = await page.evaluate(() => sessionStorage.getItem("iw.refresh_token"));
  await page.evaluate(() => sessionStorage.removeItem("iw.refresh_token"));
  await page.goto(`${BASE}/executions`);
  await page.waitForURL(/\/sign-in$/);
  await page.evaluate((token) => sessionStorage.setItem("iw.refresh_token", token), refresh);
  await page.goto(`${BASE}/workflows`);
  await page.getByRole("heading", { name: "Workflows" }).waitFor();
});

await phase("editor_shows_validation_errors_at_their_path", async () => {
  requires("sign_out_and_in");
  await page.getByRole("link", { name: "New workflow" }).click();
  await page.waitForURL(/\/workflows\/new$/);
  const editor = page.getByLabel("Workflow JSON");
  // A JSON syntax error first: pinned to its line.
  await editor.fill('{\n  "workflow_id": "x",\n  "name": \n}');
  await page.getByText(/JSON syntax error: .* at line 4/).waitFor();
  // Then a definition whose approval step points at a step that does not exist.
  await editor.fill(JSON.stringify(workflowDocument("recrod"), null, 2));
  const problem = page.locator('.problem[data-path="definition.steps[1].next"]');
  await problem.waitFor();
  const text = await problem.innerText();
  expect(text.includes("Step manager_approval › next"), `problem says: ${text}`);
  expect(text.includes("unknown step 'recrod'"), `problem says: ${text}`);
  // The graph preview marks the step and draws the dangling reference.
  await page.locator('[data-testid="node-manager_approval"][data-invalid]').waitFor();
  await page.locator('[data-testid="node-recrod"]').waitFor();
  await problem.click();
  const selected = await editor.evaluate((el) => el.value.slice(el.selectionStart, el.selectionEnd));
  expect(selected.startsWith('"next": "recrod"'), `selection is ${JSON.stringify(selected)}`);
  await page.locator(".gutter-line.has-error").first().waitFor();
  await shot("04-editor-validation-error");
});

await phase("fix_and_create_workflow", async () => {
  requires("editor_shows_validation_errors_at_their_path");
  await page.getByLabel("Workflow JSON").fill(JSON.stringify(workflowDocument("record_decision"), null, 2));
  await page.getByTestId("validation-ok").waitFor();
  await shot("05-editor-valid");
  await page.getByRole("button", { name: "Create workflow" }).click();
  await page.waitForURL(/\/workflows\/[0-9a-f-]{36}$/);
  workflowRowId = page.url().split("/").pop();
  // The graph: a node per step, labelled edges.
  for (const id of ["check_total", "manager_approval", "record_decision", "allow"]) {
    await page.getByTestId(`node-${id}`).waitFor();
  }
  for (const label of ["true", "false", "next", "start"]) {
    await page.locator(".react-flow__edge-text", { hasText: new RegExp(`^${label}$`) }).first().waitFor();
  }
  await page.getByText("Disabled").first().waitFor();
  await shot("06-workflow-detail-graph");
});

await phase("enable_workflow", async () => {
  requires("fix_and_create_workflow");
  await page.getByRole("switch", { name: /^Enable / }).click();
  await page.getByRole("switch", { name: /^Disable / }).waitFor();
  const state = await page.getByRole("switch").first().getAttribute("data-state");
  expect(state === "checked", `switch is ${state}`);
});

await phase("dry_run", async () => {
  requires("fix_and_create_workflow");
  await page.getByRole("tab", { name: "Dry run" }).click();
  await page.getByLabel(/Sample payload/).fill('{"order": {"id": "o-dry", "total": 50}}');
  await page.getByRole("button", { name: "Dry run", exact: true }).click();
  const path = page.getByRole("list", { name: "Path taken" });
  await path.waitFor();
  const steps = await path.locator("li").allInnerTexts();
  expect(JSON.stringify(steps) === JSON.stringify(["check_total", "allow"]), `path ${steps}`);
  await page.locator('[data-testid="node-allow"][data-on-path]').waitFor();
  await shot("07-workflow-dry-run");
});

await phase("parallel_workflow_graph", async () => {
  requires("sign_out_and_in");
  // The original service's example, in its flat layout: a parallel step drawn as a group.
  const example = JSON.parse(readFileSync(new URL("../src/test/fixtures/cart-fraud-detection.json", import.meta.url), "utf8"));
  example.workflow_id = `cart_fraud_${suffix}`;
  await page.goto(`${BASE}/workflows/new`);
  await page.getByLabel("Workflow JSON").fill(JSON.stringify(example, null, 2));
  await page.getByTestId("validation-ok").waitFor();
  await page.getByRole("button", { name: "Create workflow" }).click();
  await page.waitForURL(/\/workflows\/[0-9a-f-]{36}$/);
  const group = page.getByTestId("node-parallel_fraud_checks");
  await group.waitFor();
  for (const id of ["check_velocity", "check_high_value_items", "check_shipping_address", "check_external_fraud_api"]) {
    await page.getByTestId(`node-${id}`).waitFor();
  }
  await page.locator(".react-flow__edge-text", { hasText: /^error$/ }).waitFor();
  await page.getByTestId("node-check_velocity").click();
  await page.getByRole("complementary", { name: "Selected step" }).getByText("carts_created_last_hour").waitFor();
  await shot("08a-parallel-workflow-graph");
});

await phase("workflows_list", async () => {
  requires("enable_workflow");
  await page.getByRole("link", { name: "Workflows", exact: true }).click();
  await page.getByLabel("Search").fill("E2E order");
  const row = page.getByRole("row", { name: new RegExp(`E2E order approval ${suffix}`) });
  await row.waitFor();
  await row.getByText("Enabled").waitFor();
  await row.getByRole("button", { name: "e2e" }).waitFor();
  await shot("08-workflows-list");
});

await phase("send_event_and_reach_waiting", async () => {
  requires("enable_workflow");
  await page.getByRole("link", { name: "Events", exact: true }).click();
  await page.getByLabel("Event type").fill("order.created");
  await page.getByLabel("Payload (JSON)").fill('{"order": {"id": "o-1001", "total": 2500}}');
  await page.getByRole("button", { name: "Send event" }).click();
  const result = page.getByTestId("send-result");
  await result.waitFor();
  expect((await result.innerText()).includes(workflowId), "the event did not start the workflow");
  await page.getByRole("table", { name: "Recent events" }).getByText("order.created").first().waitFor();
  await shot("09-events");
  await result.locator("a").first().click();
  await page.waitForURL(/\/executions\/[0-9a-f-]{36}$/);
  executionId = page.url().split("/").pop();
  await page.locator('h1 [data-status="waiting"]').waitFor({ timeout: EXECUTION_TIMEOUT });
  await page.getByTestId("trace-step-check_total").waitFor();
  await page.getByText(/Waiting at/).waitFor();
  await shot("10-execution-waiting");
  await page.getByRole("tab", { name: "Graph" }).click();
  await page.locator('[data-testid="node-manager_approval"][data-status="waiting"]').waitFor();
  await page.locator('[data-testid="node-check_total"][data-status="completed"]').waitFor();
  await shot("10b-execution-graph-waiting");
  await page.getByRole("link", { name: "Executions", exact: true }).click();
  await page.getByRole("row", { name: /waiting/ }).first().waitFor();
  await shot("11-executions-list");
});

await phase("approve_in_inbox", async () => {
  requires("send_event_and_reach_waiting");
  const probe = await page.evaluate(async () => {
    const response = await fetch("/api/v1/approvals");
    return response.status;
  });
  await page.getByRole("link", { name: "Approvals", exact: true }).click();
  if (probe === 404) {
    // GET without a token answers 401 when the route exists; 404 means it is not there.
    await page.getByText("The approvals API is not available on this server").waitFor();
    await shot("12-approvals-missing");
    throw new Skip("GET /api/v1/approvals answers 404: the approvals endpoints are not deployed");
  }
  // "All" rather than "Mine": an admin outside the approval group may decide it, whatever `mine` lists.
  await page.getByRole("tab", { name: "All" }).click();
  const card = page.locator('[data-testid^="approval-"]', { hasText: "manager_approval" }).first();
  await card.waitFor({ timeout: EXECUTION_TIMEOUT });
  await card.locator(".countdown").waitFor();
  await shot("12-approvals-inbox");
  await card.getByRole("button", { name: "Approve" }).click();
  const dialog = page.getByRole("dialog");
  await dialog.getByLabel(/Reason/).fill("Customer is known; approved in e2e");
  await dialog.getByRole("button", { name: "Approve" }).click();
  await dialog.waitFor({ state: "detached" });
  await page.getByText("Nothing is waiting for you").waitFor({ timeout: EXECUTION_TIMEOUT });
  await page.getByLabel("Status").selectOption("approved");
  await page.locator('[data-testid^="approval-"][data-status="approved"]').first().waitFor();
  await shot("13-approvals-decided");
});

await phase("execution_completes_with_trace", async () => {
  requires("approve_in_inbox");
  await page.goto(`${BASE}/executions/${executionId}`);
  await page.locator('h1 [data-status="completed"]').waitFor({ timeout: EXECUTION_TIMEOUT });
  await page.locator('h1 [data-status="allowed"]').waitFor();
  for (const id of ["check_total", "manager_approval", "record_decision", "allow"]) {
    await page.locator(`[data-testid="trace-step-${id}"][data-status="completed"]`).waitFor();
  }
  await shot("14-execution-completed-trace");
  await page.getByRole("tab", { name: "Graph" }).click();
  await page.locator('[data-testid="node-record_decision"][data-status="completed"]').waitFor();
  await shot("15-execution-graph");
});

await phase("shadow_run", async () => {
  requires("execution_completes_with_trace");
  // The approved order (2500) replayed through an edit that only reviews orders from 5000 on.
  await page.goto(`${BASE}/workflows/${workflowRowId}/edit`);
  const editor = page.getByLabel("Workflow JSON");
  await editor.waitFor();
  const edited = workflowDocument("record_decision");
  edited.version = "2.0.0";
  edited.definition.steps[0].condition.value = 5000;
  await editor.fill(JSON.stringify(edited, null, 2));
  await page.getByRole("tab", { name: "Shadow run" }).click();
  await page.getByLabel("Recorded events of the last").selectOption("1h");
  await page.getByRole("button", { name: "Shadow run", exact: true }).click();
  const table = page.getByRole("table", { name: "Events that differ" });
  await table.waitFor({ timeout: EXECUTION_TIMEOUT });
  const rows = await table.locator("tbody tr").allInnerTexts();
  expect(rows.length === 1, `rows: ${JSON.stringify(rows)}`);
  expect(rows[0].includes("allowed → allowed"), `row: ${rows[0]}`);
  expect(rows[0].includes("check_total › manager_approval › record_decision › allow"), `row: ${rows[0]}`);
  expect(rows[0].includes("check_total › allow"), `row: ${rows[0]}`);
  const summary = await page.getByLabel("Shadow run summary").innerText();
  expect(/Same result\s*1/.test(summary), `summary: ${summary}`);
  await shot("15b-editor-shadow-run");
});

// The live phases send orders of their own: after the shadow run, which replays the hour's events.
await phase("live_timeline", async () => {
  requires("execution_completes_with_trace");
  const endpoint = await page.evaluate(async () => (await fetch("/api/v1/streams/endpoint")).status);
  expect(endpoint === 401, `GET /streams/endpoint without a token answered ${endpoint}`);
  const token = await signInElsewhere();
  const { base_url: named } = await apiCall("GET", "/streams/endpoint", undefined, token);
  expect(named === (STREAM_BASE || null), `the API names the stream URL ${named}`);
  const execution = await orderWaitingForApproval(token, "o-live-1");
  const opened = streamRequests.length;
  await page.goto(`${BASE}/executions/${execution}`);
  await page.locator('h1 [data-status="waiting"]').waitFor({ timeout: EXECUTION_TIMEOUT });
  await page.locator('[data-testid="live-mode"][data-mode="live"]').waitFor();
  const followed = streamRequests.slice(opened);
  expect(followed.includes(`${STREAM_URL}/api/v1/executions/${execution}/events`), `stream requests: ${followed}`);
  // On the stream the page does not poll: one trace read at most in 4 s (polling: one per 1.5 s).
  const traceReads = await requestsDuring(new RegExp(`/executions/${execution}/trace$`), 4000);
  expect(traceReads <= 1, `${traceReads} trace reads in 4 s while live`);
  await page.getByTestId("trace-step-check_total").waitFor();
  await shot("14a-execution-live-waiting");
  // Another client approves: the timeline moves on by itself, from the stream's events.
  await approveElsewhere(token, execution);
  await page.locator('h1 [data-status="completed"]').waitFor({ timeout: 10000 });
  for (const id of ["check_total", "manager_approval", "record_decision", "allow"]) {
    await page.locator(`[data-testid="trace-step-${id}"][data-status="completed"]`).waitFor();
  }
  await shot("14b-execution-live-completed");
});

await phase("live_approvals_inbox", async () => {
  requires("live_timeline");
  const token = await signInElsewhere();
  await page.getByRole("link", { name: "Approvals", exact: true }).click();
  await page.getByRole("tab", { name: "All" }).click();
  await page.locator('[data-testid="live-mode"][data-mode="live"]').waitFor();
  expect(streamRequests.includes(`${STREAM_URL}/api/v1/executions/stream`), "the inbox did not open the execution stream");
  const quiet = await requestsDuring(/\/api\/v1\/approvals\?/, 4500);
  expect(quiet === 0, `${quiet} inbox reads in 4.5 s with nothing changing while live`);
  // A new order elsewhere: its approval shows up without polling, and goes once decided elsewhere.
  const execution = await orderWaitingForApproval(token, "o-live-2");
  const card = page.locator('[data-testid^="approval-"]', { has: page.locator(`a[href="/executions/${execution}"]`) });
  await card.waitFor({ timeout: 10000 });
  await shot("14c-approvals-inbox-live");
  await approveElsewhere(token, execution);
  await card.waitFor({ state: "detached", timeout: 10000 });
});

await phase("polling_fallback_without_the_stream", async () => {
  requires("live_timeline");
  const token = await signInElsewhere();
  blockingStreams = true;
  await page.route(isStreamPath, (route) => route.abort());
  try {
    const execution = await orderWaitingForApproval(token, "o-fallback-1");
    await page.goto(`${BASE}/executions/${execution}`);
    await page.locator('h1 [data-status="waiting"]').waitFor({ timeout: EXECUTION_TIMEOUT });
    await page.locator('[data-testid="live-mode"][data-mode="polling"]').waitFor();
    const traceReads = await requestsDuring(new RegExp(`/executions/${execution}/trace$`), 3500);
    expect(traceReads >= 2, `${traceReads} trace reads in 3.5 s while polling`);
    await shot("14d-execution-polling-fallback");
    await approveElsewhere(token, execution);
    await page.locator('h1 [data-status="completed"]').waitFor({ timeout: EXECUTION_TIMEOUT });
    await page.locator('[data-testid="trace-step-allow"][data-status="completed"]').waitFor();
  } finally {
    await page.unroute(isStreamPath);
    await page.goto(`${BASE}/workflows`);
    blockingStreams = false;
  }
});

await phase("pause_resume_cancel", async () => {
  requires("enable_workflow");
  // A second order, so the approval flow above is left alone.
  await page.getByRole("link", { name: "Events", exact: true }).click();
  await page.getByLabel("Event type").fill("order.created");
  await page.getByLabel("Payload (JSON)").fill('{"order": {"id": "o-2002", "total": 5000}}');
  await page.getByRole("button", { name: "Send event" }).click();
  await page.getByTestId("send-result").locator("a").first().click();
  await page.waitForURL(/\/executions\/[0-9a-f-]{36}$/);
  await page.locator('h1 [data-status="waiting"]').waitFor({ timeout: EXECUTION_TIMEOUT });
  await page.getByRole("button", { name: "Pause" }).click();
  await page.locator('h1 [data-status="paused"]').waitFor();
  await page.getByText(/Paused at/).waitFor();
  await page.getByRole("button", { name: "Resume" }).click();
  await page.locator('h1 [data-status="waiting"]').waitFor({ timeout: EXECUTION_TIMEOUT });
  await page.getByRole("button", { name: "Cancel" }).click();
  const dialog = page.getByRole("dialog");
  await dialog.getByLabel(/Reason/).fill("customer withdrew the order");
  await dialog.getByRole("button", { name: "Cancel execution" }).click();
  await page.locator('h1 [data-status="cancelled"]').waitFor({ timeout: EXECUTION_TIMEOUT });
  await page.getByText("cancelled", { exact: true }).first().waitFor();
  await shot("11b-execution-cancelled");
});

await phase("schedules", async () => {
  requires("fix_and_create_workflow");
  await page.getByRole("link", { name: "Schedules", exact: true }).click();
  await page.waitForURL(/\/schedules$/);
  await page.getByText("No schedules yet").waitFor();
  await page.getByRole("button", { name: "New schedule" }).first().click();
  const dialog = page.getByRole("dialog");
  await dialog.getByLabel("Workflow", { exact: true }).selectOption({ label: `E2E order approval ${suffix} (${workflowId})` });
  // A minute of 61 and an unknown zone: the API answers 422 with each problem under its field.
  await dialog.getByLabel("Cron expression").fill("61 * * * *");
  await dialog.getByLabel("Timezone").fill("Mars/Olympus");
  await dialog.getByLabel("Payload (JSON object)").fill('{"report": "weekday-morning"}');
  await dialog.getByRole("button", { name: "Create schedule" }).click();
  const fieldOf = (label) => dialog.locator(".field", { has: page.getByLabel(label, { exact: true }) });
  await fieldOf("Cron expression").getByRole("alert").filter({ hasText: "invalid cron expression '61 * * * *'" }).waitFor();
  await fieldOf("Timezone").getByRole("alert").filter({ hasText: "unknown timezone 'Mars/Olympus'" }).waitFor();
  expect((await dialog.getByLabel("Cron expression").getAttribute("aria-invalid")) === "true", "the cron field is not marked invalid");
  await shot("21-schedule-cron-rejected");

  await dialog.getByLabel("Cron expression").fill("0 9 * * 1-5");
  await dialog.getByLabel("Timezone").fill("Europe/Berlin");
  await dialog.getByRole("button", { name: "Create schedule" }).click();
  await dialog.waitFor({ state: "detached" });
  const row = page.locator('[data-testid^="schedule-"]', { has: page.getByRole("link", { name: workflowId }) });
  await row.getByText("Europe/Berlin").waitFor();
  await row.getByRole("link", { name: workflowId }).waitFor();
  expect((await row.getAttribute("data-enabled")) === "true", "the new schedule is not enabled");
  // Its next runs (GET /schedules/{id}/next-runs) open at once, in Berlin time: weekdays at 09:00.
  const runs = page.locator('[data-testid^="next-runs-"] li');
  await runs.first().waitFor();
  const times = await runs.allInnerTexts();
  expect(times.length === 5, `${times.length} next runs`);
  for (const time of times) {
    expect(/^(Mon|Tue|Wed|Thu|Fri), .* 09:00 GMT\+[12]\b/.test(time), `next run ${JSON.stringify(time)}`);
  }
  await page.getByLabel("Show").selectOption("10");
  await runs.nth(9).waitFor();
  await page.getByLabel("Show").selectOption("5");
  await runs.nth(5).waitFor({ state: "detached" });
  await shot("22-schedules-next-runs");

  // Edit: the PUT carries only what changed; the next runs follow the new cron.
  await row.getByRole("button", { name: "Edit" }).click();
  await dialog.getByLabel("Cron expression").fill("30 7 * * *");
  const put = page.waitForRequest((request) => request.method() === "PUT" && /\/api\/v1\/schedules\/[0-9a-f-]{36}$/.test(request.url()));
  await dialog.getByRole("button", { name: "Save changes" }).click();
  expect((await put).postData() === '{"cron":"30 7 * * *"}', `PUT body ${(await put).postData()}`);
  await dialog.waitFor({ state: "detached" });
  await row.getByText("30 7 * * *").waitFor();
  await runs.filter({ hasText: "09:00" }).first().waitFor({ state: "detached" });
  const edited = await runs.allInnerTexts();
  expect(edited.length === 5 && edited.every((time) => / 07:30 GMT\+[12]\b/.test(time)), `next runs after the edit: ${edited}`);

  await row.getByRole("switch", { name: `Disable schedule 30 7 * * * of ${workflowId}` }).click();
  await page.locator('[data-testid^="schedule-"][data-enabled="false"]', { has: page.getByRole("link", { name: workflowId }) }).waitFor();
  await row.getByText("not while disabled").waitFor();
  await page.getByText("Disabled: these are the times it would run once enabled.").waitFor();
  await shot("23-schedule-disabled");

  await row.getByRole("button", { name: "Delete" }).click();
  const confirm = page.getByRole("dialog");
  await confirm.getByText(/stops starting/).waitFor();
  await shot("24-schedule-delete-confirm");
  await confirm.getByRole("button", { name: "Delete schedule" }).click();
  await confirm.waitFor({ state: "detached" });
  await page.getByText("No schedules yet").waitFor();
});

await phase("analytics", async () => {
  requires("sign_out_and_in");
  await page.getByRole("link", { name: "Analytics", exact: true }).click();
  await page.getByRole("heading", { name: "Overview" }).waitFor();
  await page.locator(".stat, .error-state").first().waitFor();
  await page.locator(".recharts-surface, .error-state").first().waitFor();
  await shot("16-analytics");
});

await phase("api_keys", async () => {
  requires("sign_out_and_in");
  await page.getByRole("link", { name: "API keys", exact: true }).click();
  await page.getByText("No API keys yet").waitFor();
  await page.getByLabel("Name").fill("e2e-service");
  await page.getByRole("button", { name: "Create key" }).click();
  const key = await page.getByTestId("new-api-key").innerText();
  expect(key.length > 20, "no key shown");
  await shot("17-api-key-created");
  await page.keyboard.press("Escape");
  await page.getByRole("row", { name: /e2e-service/ }).waitFor();
  const status = await page.evaluate(
    async (apiKey) => (await fetch("/api/v1/auth/me", { headers: { "X-API-Key": apiKey } })).status,
    key,
  );
  expect(status === 200, `the new key answered ${status}`);
  await shot("18-api-keys");
});

await phase("audit_log", async () => {
  requires("sign_out_and_in");
  await page.getByRole("link", { name: "Audit log", exact: true }).click();
  await page.getByRole("table", { name: "Audit log" }).getByText("workflow_created").first().waitFor();
  await shot("19-audit-log");
});

await phase("organizations", async () => {
  requires("sign_out_and_in");
  await page.getByRole("link", { name: "Organizations", exact: true }).click();
  await page.getByLabel("Name", { exact: true }).fill(`Second org ${suffix}`);
  await page.getByRole("button", { name: "Create", exact: true }).click();
  const row = page.getByRole("row", { name: new RegExp(`Second org ${suffix}`) });
  await row.getByRole("button", { name: "Switch to it" }).click();
  await page.waitForURL(/\/workflows$/);
  await page.getByText("No workflows yet").waitFor();
  const selected = await page.getByLabel("Organization").evaluate((el) => el.selectedOptions[0].textContent);
  expect(selected.includes("Second org"), `switcher shows ${selected}`);
  await page.getByRole("link", { name: "Organizations", exact: true }).click();
  await page.getByRole("row", { name: new RegExp(`Second org ${suffix}`) }).getByText("current").waitFor();
  await shot("20-organizations");
});

await phase("no_csp_violations_or_page_errors", async () => {
  expect(results.csp_violations.length === 0, `CSP violations: ${results.csp_violations.join(" | ")}`);
  expect(results.console_errors.length === 0, `console errors: ${results.console_errors.join(" | ")}`);
});

await context.close();
rmSync(browserDir, { recursive: true, force: true });
results.seconds = (Date.now() - started) / 1000;
writeFileSync(join(ARTIFACTS, "results.json"), JSON.stringify(results, null, 2));
const failures = Object.entries(results.phases).filter(([, r]) => r.status === "failed");
console.log(`${Object.keys(results.phases).length} phases, ${failures.length} failed, ${results.seconds.toFixed(1)}s; artifacts in ${ARTIFACTS}`);
process.exit(failures.length ? 1 : 0);
