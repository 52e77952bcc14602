import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { fireEvent, render, screen, waitFor, within } from "@testing-library/react";
import { MemoryRouter } from "react-router";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { Schedule, Workflow } from "../api/types";
import { SchedulesPage } from "./SchedulesPage";

const auth = vi.hoisted(() => ({ permissions: new Set<string>() }));
vi.mock("../auth/AuthContext", () => ({
  useAuth: () => ({ can: (permission: string) => auth.permissions.has(permission), me: { user_id: "u1" } }),
}));

const EVERYTHING = ["schedule:read", "schedule:create", "schedule:update", "schedule:delete"];

const workflow = {
  id: "9a7b0000-0000-0000-0000-000000000001",
  workflow_id: "nightly_report",
  version: "1.0.0",
  name: "Nightly report",
  enabled: true,
  tags: [],
  definition: { trigger: { type: "manual" }, steps: [] },
} as unknown as Workflow;

function schedule(overrides: Partial<Schedule> = {}): Schedule {
  return {
    id: "5c1e0000-0000-0000-0000-000000000001",
    workflow_id: workflow.workflow_id,
    workflow_row_id: workflow.id,
    cron: "@hourly",
    timezone: "UTC",
    payload: {},
    enabled: true,
    from_trigger: false,
    next_run_at: new Date(Date.now() + 30 * 60_000).toISOString(),
    last_run_at: null,
    created_at: new Date().toISOString(),
    updated_at: new Date().toISOString(),
    ...overrides,
  };
}

// Mondays to Fridays at 09:00 Europe/Berlin (winter), as GET /schedules/{id}/next-runs answers them.
const WEEKDAY_RUNS = [
  "2030-01-07T08:00:00+00:00",
  "2030-01-08T08:00:00+00:00",
  "2030-01-09T08:00:00+00:00",
  "2030-01-10T08:00:00+00:00",
  "2030-01-11T08:00:00+00:00",
];

function jsonResponse(status: number, body: unknown) {
  return new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });
}

/** An in-memory stand-in for api/schedules: the same paths, shapes and 422s. */
function fakeApi(schedules: Schedule[]) {
  const calls: { method: string; url: string; body?: unknown }[] = [];
  const fetchMock = vi.fn(async (url: string, init?: RequestInit) => {
    const method = init?.method ?? "GET";
    const body = init?.body ? JSON.parse(String(init.body)) : undefined;
    calls.push({ method, url, body });
    const path = url.split("?")[0];
    if (method === "GET" && path === "/api/v1/schedules") {
      return jsonResponse(200, { schedules, total: schedules.length, page: 1, page_size: 20 });
    }
    if (method === "GET" && path === "/api/v1/workflows") {
      return jsonResponse(200, { workflows: [workflow], total: 1, page: 1, page_size: 100 });
    }
    if (method === "POST" && path === `/api/v1/workflows/${workflow.id}/schedules`) {
      const errors: Record<string, string[]> = {};
      if (body.cron.split(" ")[0] === "61") errors.cron = [`invalid cron expression '${body.cron}'`];
      if (body.timezone === "Mars/Olympus") errors.timezone = ["unknown timezone 'Mars/Olympus'; use an IANA name such as 'Europe/Paris'"];
      if (Object.keys(errors).length) {
        return jsonResponse(422, { code: 422, status: "Unprocessable Entity", message: "The schedule is invalid", errors });
      }
      const created = schedule({ id: "5c1e0000-0000-0000-0000-00000000000a", ...body, next_run_at: WEEKDAY_RUNS[0] });
      schedules.unshift(created);
      return jsonResponse(201, created);
    }
    const one = schedules.find((s) => path.startsWith(`/api/v1/schedules/${s.id}`));
    if (one && method === "GET" && path.endsWith("/next-runs")) {
      const count = Number(new URL(url, "http://x").searchParams.get("count"));
      return jsonResponse(200, { schedule_id: one.id, cron: one.cron, timezone: one.timezone, next_runs: WEEKDAY_RUNS.slice(0, count) });
    }
    if (one && method === "PUT") {
      Object.assign(one, body, body.enabled === false ? { next_run_at: null } : {});
      return jsonResponse(200, one);
    }
    if (one && method === "DELETE") {
      schedules.splice(schedules.indexOf(one), 1);
      return new Response(null, { status: 204 });
    }
    return jsonResponse(404, { code: 404, status: "Not Found", message: "nope" });
  });
  vi.stubGlobal("fetch", fetchMock);
  return calls;
}

function renderPage(path = "/schedules") {
  const client = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  return render(
    <QueryClientProvider client={client}>
      <MemoryRouter initialEntries={[path]}>
        <SchedulesPage />
      </MemoryRouter>
    </QueryClientProvider>,
  );
}

/** The `.field` around a labelled control: where its error message is shown. */
function fieldOf(label: string): HTMLElement {
  return screen.getByLabelText(label).closest(".field") as HTMLElement;
}

describe("SchedulesPage", () => {
  beforeEach(() => {
    auth.permissions = new Set(EVERYTHING);
  });
  afterEach(() => vi.unstubAllGlobals());

  it("creates a schedule: the API's cron and timezone errors land next to their fields, then the next runs show", async () => {
    const calls = fakeApi([]);
    renderPage();
    await screen.findByText("No schedules yet");

    fireEvent.click(screen.getAllByRole("button", { name: "New schedule" })[0]);
    const dialog = await screen.findByRole("dialog");
    const picker = await within(dialog).findByLabelText("Workflow");
    fireEvent.change(picker, { target: { value: workflow.id } });
    fireEvent.change(within(dialog).getByLabelText("Cron expression"), { target: { value: "61 * * * *" } });
    fireEvent.change(within(dialog).getByLabelText("Timezone"), { target: { value: "Mars/Olympus" } });
    fireEvent.change(within(dialog).getByLabelText("Payload (JSON object)"), { target: { value: '{"report": "daily"}' } });
    fireEvent.click(within(dialog).getByRole("button", { name: "Create schedule" }));

    await waitFor(() => expect(within(fieldOf("Cron expression")).getByRole("alert")).toHaveTextContent("invalid cron expression '61 * * * *'"));
    expect(within(fieldOf("Timezone")).getByRole("alert")).toHaveTextContent("unknown timezone 'Mars/Olympus'");
    expect(screen.getByLabelText("Cron expression")).toHaveAttribute("aria-invalid", "true");
    expect(document.activeElement).toBe(screen.getByLabelText("Cron expression")); // the first field in error

    // Editing a field clears its message; the other stays until the API says otherwise.
    fireEvent.change(screen.getByLabelText("Cron expression"), { target: { value: "0 9 * * 1-5" } });
    expect(within(fieldOf("Cron expression")).queryByRole("alert")).toBeNull();
    expect(within(fieldOf("Timezone")).getByRole("alert")).toBeInTheDocument();
    fireEvent.change(screen.getByLabelText("Timezone"), { target: { value: "Europe/Berlin" } });
    fireEvent.click(screen.getByRole("button", { name: "Create schedule" }));

    await waitFor(() => expect(screen.queryByRole("dialog")).toBeNull());
    const posts = calls.filter((c) => c.method === "POST");
    expect(posts.map((c) => c.url)).toEqual([`/api/v1/workflows/${workflow.id}/schedules`, `/api/v1/workflows/${workflow.id}/schedules`]);
    expect(posts[1].body).toEqual({ cron: "0 9 * * 1-5", timezone: "Europe/Berlin", payload: { report: "daily" }, enabled: true });

    // The new schedule is listed with its next runs opened, in Berlin time.
    const runs = await screen.findByTestId("next-runs-5c1e0000-0000-0000-0000-00000000000a");
    expect(within(runs).getAllByRole("listitem")).toHaveLength(5);
    expect(within(runs).getAllByRole("listitem")[0]).toHaveTextContent("Mon, Jan 7, 2030, 09:00 GMT+1");
    expect(within(runs).getAllByRole("listitem")[0]).toHaveTextContent("08:00 UTC");
    expect(calls.some((c) => c.url.endsWith("/next-runs?count=5"))).toBe(true);
    const row = screen.getByTestId("schedule-5c1e0000-0000-0000-0000-00000000000a");
    expect(within(row).getByText("0 9 * * 1-5")).toBeInTheDocument();
    expect(within(row).getByText("Europe/Berlin")).toBeInTheDocument();
    expect(within(row).getByRole("link", { name: "nightly_report" })).toHaveAttribute("href", `/workflows/${workflow.id}`);
  });

  it("edits with only the changed fields, disables with the switch and deletes after confirming", async () => {
    const existing = schedule({ payload: { report: "daily" } });
    const calls = fakeApi([existing]);
    renderPage();
    const row = await screen.findByTestId(`schedule-${existing.id}`);

    fireEvent.click(within(row).getByRole("button", { name: "Edit" }));
    const dialog = await screen.findByRole("dialog");
    expect(within(dialog).getByLabelText("Payload (JSON object)")).toHaveValue('{\n  "report": "daily"\n}');
    fireEvent.change(within(dialog).getByLabelText("Cron expression"), { target: { value: "@daily" } });
    fireEvent.click(within(dialog).getByRole("button", { name: "Save changes" }));
    await waitFor(() => expect(screen.queryByRole("dialog")).toBeNull());
    expect(calls.find((c) => c.method === "PUT")).toEqual({ method: "PUT", url: `/api/v1/schedules/${existing.id}`, body: { cron: "@daily" } });

    fireEvent.click(within(row).getByRole("switch", { name: "Disable schedule @daily of nightly_report" }));
    await waitFor(() => expect(row).toHaveAttribute("data-enabled", "false"));
    expect(calls.filter((c) => c.method === "PUT").at(-1)!.body).toEqual({ enabled: false });
    expect(within(row).getByText("not while disabled")).toBeInTheDocument();

    fireEvent.click(within(row).getByRole("button", { name: "Delete" }));
    const confirm = await screen.findByRole("dialog");
    expect(confirm).toHaveTextContent("@daily (UTC) stops starting nightly_report");
    fireEvent.click(within(confirm).getByRole("button", { name: "Delete schedule" }));
    await screen.findByText("No schedules yet");
    expect(calls.filter((c) => c.method === "DELETE").map((c) => c.url)).toEqual([`/api/v1/schedules/${existing.id}`]);
  });

  it("shows a read-only user no way to change schedules", async () => {
    auth.permissions = new Set(["schedule:read"]);
    const existing = schedule();
    fakeApi([existing]);
    renderPage();
    const row = await screen.findByTestId(`schedule-${existing.id}`);
    expect(screen.queryByRole("button", { name: "New schedule" })).toBeNull();
    expect(within(row).queryByRole("button", { name: "Edit" })).toBeNull();
    expect(within(row).queryByRole("button", { name: "Delete" })).toBeNull();
    expect(within(row).getByRole("switch")).toBeDisabled();
    expect(within(row).getByRole("button", { name: "Next runs" })).toBeEnabled();
  });

  it("leaves a schedule from the workflow's trigger to the workflow", async () => {
    const derived = schedule({ from_trigger: true });
    fakeApi([derived]);
    renderPage();
    const row = await screen.findByTestId(`schedule-${derived.id}`);
    expect(within(row).getByText("workflow trigger")).toBeInTheDocument();
    expect(within(row).queryByRole("button", { name: "Edit" })).toBeNull();
    expect(within(row).getByRole("switch")).toBeDisabled();
  });

  it("says plainly when the API refuses", async () => {
    vi.stubGlobal(
      "fetch",
      vi.fn(async () => jsonResponse(403, { code: 403, status: "Forbidden", message: "Missing permission: schedule:read" })),
    );
    renderPage();
    const alert = await screen.findByRole("alert");
    expect(alert).toHaveTextContent("Could not load the schedules (403)");
    expect(alert).toHaveTextContent("Missing permission: schedule:read");
    expect(alert).toHaveTextContent("Your role in this organization does not allow it.");
  });

  it("filters by workflow and state through the query string", async () => {
    const calls = fakeApi([]);
    renderPage("/schedules?workflow_id=nightly_report&enabled=false&page=2");
    await screen.findByText("No schedule matches these filters");
    expect(calls[0].url).toBe("/api/v1/schedules?workflow_id=nightly_report&enabled=false&page=2&page_size=20");
  });

  it("starts a new schedule on the workflow the list is filtered by (the workflow page links here)", async () => {
    const calls = fakeApi([]);
    renderPage("/schedules?workflow_id=nightly_report");
    await screen.findByText("No schedule matches these filters");
    fireEvent.click(screen.getAllByRole("button", { name: "New schedule" })[0]);
    const dialog = await screen.findByRole("dialog");
    await waitFor(() => expect(within(dialog).getByLabelText("Workflow")).toHaveValue(workflow.id));
    expect(calls.find((c) => c.url.startsWith("/api/v1/workflows?"))!.url).toBe("/api/v1/workflows?latest=true&page_size=100");
  });
});
