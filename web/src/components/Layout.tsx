import { useState } from "react";
import { NavLink, Outlet, useNavigate } from "react-router";
import { errorMessage } from "../api/client";
import { useAuth } from "../auth/AuthContext";

const NAV: { to: string; label: string; permission?: string }[] = [
  { to: "/workflows", label: "Workflows", permission: "workflow:read" },
  { to: "/executions", label: "Executions", permission: "execution:read" },
  { to: "/approvals", label: "Approvals", permission: "approval:read" },
  { to: "/events", label: "Events", permission: "event:read" },
  { to: "/schedules", label: "Schedules", permission: "schedule:read" },
  { to: "/analytics", label: "Analytics", permission: "analytics:read" },
  { to: "/api-keys", label: "API keys", permission: "apikey:read" },
  { to: "/audit-log", label: "Audit log", permission: "audit:read" },
  { to: "/organizations", label: "Organizations" },
];

function OrganizationSwitcher() {
  const { me, switchOrganization } = useAuth();
  const navigate = useNavigate();
  const [error, setError] = useState<string | null>(null);
  if (!me) return null;
  return (
    <div className="org-switcher">
      <label htmlFor="org-switch" className="visually-hidden">
        Organization
      </label>
      <select
        id="org-switch"
        value={me.organization_id}
        onChange={async (event) => {
          setError(null);
          try {
            await switchOrganization(event.target.value);
            navigate("/workflows");
          } catch (caught) {
            setError(errorMessage(caught));
          }
        }}
      >
        {me.organizations.map((org) => (
          <option key={org.id} value={org.id}>
            {org.name} ({org.role})
          </option>
        ))}
      </select>
      {error && (
        <span className="inline-error" role="alert">
          {error}
        </span>
      )}
    </div>
  );
}

export function Layout() {
  const { me, signOut, can } = useAuth();
  const navigate = useNavigate();
  return (
    <div className="shell">
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <aside className="sidebar">
        <div className="sidebar-inner">
        <div className="brand">
          <img src="/favicon.svg" alt="" width={24} height={24} />
          <span>Intelligent Workflows</span>
        </div>
        <nav aria-label="Main">
          <ul>
            {NAV.filter((item) => !item.permission || can(item.permission)).map((item) => (
              <li key={item.to}>
                <NavLink to={item.to} className={({ isActive }) => (isActive ? "active" : undefined)}>
                  {item.label}
                </NavLink>
              </li>
            ))}
          </ul>
        </nav>
        </div>
      </aside>
      <div className="main-column">
        <header className="topbar">
          <OrganizationSwitcher />
          <div className="topbar-user">
            <span className="muted small" title={me?.email}>
              {me?.username} · {me?.role}
            </span>
            <button
              type="button"
              className="btn btn-small"
              onClick={async () => {
                await signOut();
                navigate("/sign-in");
              }}
            >
              Sign out
            </button>
          </div>
        </header>
        <main id="main" tabIndex={-1}>
          <Outlet />
        </main>
      </div>
    </div>
  );
}
