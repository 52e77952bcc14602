import { useMutation, useQuery } from "@tanstack/react-query";
import { useState } from "react";
import { useNavigate } from "react-router";
import { api, errorMessage } from "../api/client";
import type { Organization, OrganizationPage, Paged } from "../api/types";
import { useAuth } from "../auth/AuthContext";
import { EmptyState, ErrorState, InlineError, PageHeader, TableSkeleton, Tag, Time } from "../components/ui";

interface Member {
  user_id: string;
  username: string;
  email: string;
  role: string;
  approver_roles: string[];
  created_at?: string;
}

const ROLES = ["admin", "workflow_manager", "workflow_viewer", "approver", "agent"];

export function OrganizationsPage() {
  const { me, switchOrganization, reloadMe, can } = useAuth();
  const navigate = useNavigate();
  const orgs = useQuery({
    queryKey: ["organizations"],
    queryFn: () => api.get<OrganizationPage>("/organizations", { page_size: 100 }),
  });
  const members = useQuery({
    queryKey: ["members", me?.organization_id],
    queryFn: () =>
      api.get<Paged & { members: Member[] }>(`/organizations/${me!.organization_id}/members`, { page_size: 100 }),
    enabled: !!me && can("organization:read"),
  });
  const [name, setName] = useState("");
  const [description, setDescription] = useState("");
  const create = useMutation({
    mutationFn: () => api.post<Organization>("/organizations", { name, description: description || undefined }),
    onSuccess: async () => {
      setName("");
      setDescription("");
      await Promise.all([orgs.refetch(), reloadMe()]);
    },
  });
  const [member, setMember] = useState({ who: "", role: "approver", groups: "" });
  const addMember = useMutation({
    mutationFn: () =>
      api.post(`/organizations/${me!.organization_id}/members`, {
        ...(member.who.includes("@") ? { email: member.who } : { username: member.who }),
        role: member.role,
        approver_roles: member.groups
          .split(",")
          .map((s) => s.trim())
          .filter(Boolean),
      }),
    onSuccess: () => {
      setMember({ who: "", role: "approver", groups: "" });
      members.refetch();
    },
  });
  const [switchError, setSwitchError] = useState<string | null>(null);

  return (
    <>
      <PageHeader title="Organizations" description="Every organization you belong to. Switching opens a session in it." />
      <section className="card">
        <h2>Your organizations</h2>
        {orgs.isPending ? (
          <TableSkeleton rows={2} columns={4} />
        ) : orgs.isError ? (
          <ErrorState error={orgs.error} onRetry={() => orgs.refetch()} />
        ) : (
          <div className="table-wrap">
            <table className="table">
              <thead>
                <tr>
                  <th>Name</th>
                  <th>Your role</th>
                  <th>Created</th>
                  <th>
                    <span className="visually-hidden">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {orgs.data.organizations.map((org) => (
                  <tr key={org.id}>
                    <td>
                      <strong>{org.name}</strong>
                      {org.description && <div className="muted small">{org.description}</div>}
                    </td>
                    <td>
                      <Tag>{org.role}</Tag>
                    </td>
                    <td>
                      <Time value={org.created_at} />
                    </td>
                    <td className="actions-cell">
                      {org.id === me?.organization_id ? (
                        <span className="badge badge-ok">current</span>
                      ) : (
                        <button
                          type="button"
                          className="btn btn-small"
                          onClick={async () => {
                            setSwitchError(null);
                            try {
                              await switchOrganization(org.id);
                              navigate("/workflows");
                            } catch (caught) {
                              setSwitchError(errorMessage(caught));
                            }
                          }}
                        >
                          Switch to it
                        </button>
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
        {switchError && (
          <p className="inline-error" role="alert">
            {switchError}
          </p>
        )}
      </section>

      <div className="two-columns">
        <section className="card">
          <h2>Create an organization</h2>
          <form
            onSubmit={(event) => {
              event.preventDefault();
              create.mutate();
            }}
          >
            <div className="field">
              <label htmlFor="org-name">Name</label>
              <input id="org-name" value={name} onChange={(e) => setName(e.target.value)} required maxLength={200} />
            </div>
            <div className="field">
              <label htmlFor="org-description">Description (optional)</label>
              <input id="org-description" value={description} onChange={(e) => setDescription(e.target.value)} />
            </div>
            <InlineError error={create.error} />
            <button className="btn btn-primary" type="submit" disabled={create.isPending || !name.trim()}>
              Create
            </button>
          </form>
        </section>

        {can("organization:read") && (
          <section className="card">
            <h2>Members of the current organization</h2>
            {members.isPending ? (
              <TableSkeleton rows={2} columns={3} />
            ) : members.isError ? (
              <ErrorState error={members.error} />
            ) : members.data.members.length === 0 ? (
              <EmptyState title="No members" />
            ) : (
              <ul className="plain-list">
                {members.data.members.map((m) => (
                  <li key={m.user_id}>
                    <strong>{m.username}</strong> <span className="muted small">{m.email}</span> <Tag>{m.role}</Tag>
                    {m.approver_roles.map((group) => (
                      <Tag key={group}>approves: {group}</Tag>
                    ))}
                  </li>
                ))}
              </ul>
            )}
            {can("organization:members") && (
              <form
                className="inline-form"
                onSubmit={(event) => {
                  event.preventDefault();
                  addMember.mutate();
                }}
              >
                <h3>Add a member</h3>
                <div className="field-row">
                  <div className="field">
                    <label htmlFor="member-who">Username or email</label>
                    <input id="member-who" value={member.who} onChange={(e) => setMember({ ...member, who: e.target.value })} required />
                  </div>
                  <div className="field">
                    <label htmlFor="member-role">Role</label>
                    <select id="member-role" value={member.role} onChange={(e) => setMember({ ...member, role: e.target.value })}>
                      {ROLES.map((role) => (
                        <option key={role}>{role}</option>
                      ))}
                    </select>
                  </div>
                </div>
                <div className="field">
                  <label htmlFor="member-groups">Approval groups (comma-separated)</label>
                  <input
                    id="member-groups"
                    value={member.groups}
                    placeholder="sales_manager, finance"
                    onChange={(e) => setMember({ ...member, groups: e.target.value })}
                  />
                </div>
                <InlineError error={addMember.error} />
                <button className="btn" type="submit" disabled={addMember.isPending}>
                  Add member
                </button>
              </form>
            )}
          </section>
        )}
      </div>
    </>
  );
}
