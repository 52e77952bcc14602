import { lazy, Suspense, useEffect, type ReactNode } from "react";
import { Link, Navigate, Route, Routes, useLocation, useNavigate } from "react-router";
import { session } from "./api/client";
import { useAuth } from "./auth/AuthContext";
import { Layout } from "./components/Layout";
import { EmptyState, Skeleton } from "./components/ui";
import { RegisterPage, SignInPage } from "./pages/AuthPages";

// The heavy pages (graph, charts) load on demand.
const WorkflowsPage = lazy(() => import("./pages/WorkflowsPage").then((m) => ({ default: m.WorkflowsPage })));
const WorkflowDetailPage = lazy(() => import("./pages/WorkflowDetailPage").then((m) => ({ default: m.WorkflowDetailPage })));
const WorkflowEditorPage = lazy(() => import("./pages/WorkflowEditorPage").then((m) => ({ default: m.WorkflowEditorPage })));
const ExecutionsPage = lazy(() => import("./pages/ExecutionsPage").then((m) => ({ default: m.ExecutionsPage })));
const ExecutionDetailPage = lazy(() => import("./pages/ExecutionDetailPage").then((m) => ({ default: m.ExecutionDetailPage })));
const ApprovalsPage = lazy(() => import("./pages/ApprovalsPage").then((m) => ({ default: m.ApprovalsPage })));
const EventsPage = lazy(() => import("./pages/EventsPage").then((m) => ({ default: m.EventsPage })));
const SchedulesPage = lazy(() => import("./pages/SchedulesPage").then((m) => ({ default: m.SchedulesPage })));
const AnalyticsPage = lazy(() => import("./pages/AnalyticsPage").then((m) => ({ default: m.AnalyticsPage })));
const ApiKeysPage = lazy(() => import("./pages/ApiKeysPage").then((m) => ({ default: m.ApiKeysPage })));
const AuditLogPage = lazy(() => import("./pages/AuditLogPage").then((m) => ({ default: m.AuditLogPage })));
const OrganizationsPage = lazy(() => import("./pages/OrganizationsPage").then((m) => ({ default: m.OrganizationsPage })));

function FullPageLoading() {
  return (
    <div className="auth-page" aria-busy="true">
      <div className="auth-card">
        <Skeleton lines={4} />
      </div>
    </div>
  );
}

function RequireAuth({ children }: { children: ReactNode }) {
  const { status } = useAuth();
  const location = useLocation();
  if (status === "loading") return <FullPageLoading />;
  if (status === "anonymous") {
    return <Navigate to="/sign-in" replace state={{ from: location.pathname + location.search }} />;
  }
  return <>{children}</>;
}

function PublicOnly({ children }: { children: ReactNode }) {
  const { status } = useAuth();
  if (status === "loading") return <FullPageLoading />;
  if (status === "signed-in") return <Navigate to="/workflows" replace />;
  return <>{children}</>;
}

/** When a refresh is refused mid-session, go to the sign-in page and come back afterwards. */
function SignedOutRedirect() {
  const navigate = useNavigate();
  const location = useLocation();
  useEffect(
    () =>
      session.onSignedOut(() =>
        navigate("/sign-in", { replace: true, state: { from: location.pathname + location.search, expired: true } }),
      ),
    [navigate, location],
  );
  return null;
}

/** Move focus to the page's heading after navigation, for keyboard and screen-reader users. */
function FocusOnNavigate() {
  const location = useLocation();
  useEffect(() => {
    const main = document.getElementById("main");
    if (main && document.activeElement === document.body) main.focus({ preventScroll: true });
  }, [location.pathname]);
  return null;
}

function NotFound() {
  return (
    <EmptyState title="Page not found" action={<Link to="/workflows">Go to workflows</Link>}>
      Nothing lives at this address.
    </EmptyState>
  );
}

export function App() {
  return (
    <>
      <SignedOutRedirect />
      <FocusOnNavigate />
      <Routes>
        <Route path="/sign-in" element={<PublicOnly><SignInPage /></PublicOnly>} />
        <Route path="/register" element={<PublicOnly><RegisterPage /></PublicOnly>} />
        <Route
          element={
            <RequireAuth>
              <Layout />
            </RequireAuth>
          }
        >
          <Route index element={<Navigate to="/workflows" replace />} />
          {[
            ["workflows", <WorkflowsPage />],
            ["workflows/new", <WorkflowEditorPage />],
            ["workflows/:id", <WorkflowDetailPage />],
            ["workflows/:id/edit", <WorkflowEditorPage />],
            ["executions", <ExecutionsPage />],
            ["executions/:id", <ExecutionDetailPage />],
            ["approvals", <ApprovalsPage />],
            ["events", <EventsPage />],
            ["schedules", <SchedulesPage />],
            ["analytics", <AnalyticsPage />],
            ["api-keys", <ApiKeysPage />],
            ["audit-log", <AuditLogPage />],
            ["organizations", <OrganizationsPage />],
            ["*", <NotFound />],
          ].map(([path, element]) => (
            <Route
              key={path as string}
              path={path as string}
              element={<Suspense fallback={<Skeleton lines={8} />}>{element}</Suspense>}
            />
          ))}
        </Route>
      </Routes>
    </>
  );
}
