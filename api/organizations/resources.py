"""HTTP endpoints of /organizations and /organizations/{id}/members.

By id, only the caller's current organization (the one of their token or API
key) exists: any other id answers 404, whether it exists or not.
"""

from __future__ import annotations

import uuid
from typing import Any

from flask.views import MethodView

from api.auth.openapi import AUTHENTICATED_ERRORS, error_responses, resource_blueprint
from api.auth.principal import authenticated, current_principal, requires, user_session
from api.organizations import membership, organization
from api.organizations.schemas import (
    MemberAddSchema,
    MemberSchema,
    MemberUpdateSchema,
    OrganizationCreateSchema,
    OrganizationSchema,
    OrganizationUpdateSchema,
)
from api.pagination import PageQuerySchema, page_envelope_schema
from api.services import services
from models.identity import Membership, User

blp = resource_blueprint("organizations", __name__, "Organizations, members and roles")

OrganizationPageSchema = page_envelope_schema("organizations", OrganizationSchema)
MemberPageSchema = page_envelope_schema("members", MemberSchema)


@blp.route("/organizations")
class Organizations(MethodView):
    @authenticated
    @blp.arguments(PageQuerySchema, location="query")
    @blp.response(200, OrganizationPageSchema)
    @error_responses(blp, *AUTHENTICATED_ERRORS)
    def get(self, query: dict[str, Any]) -> dict[str, Any]:
        """List the organizations the caller belongs to, with their role in each

        Any authenticated caller; with an API key, only the key's organization.
        """
        with services().session_factory() as session:
            return organization.list_organizations(
                session, current_principal(), query["page"], query["page_size"]
            )

    @user_session
    @blp.arguments(OrganizationCreateSchema)
    @blp.response(201, OrganizationSchema)
    @error_responses(blp, *AUTHENTICATED_ERRORS)
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """Create an organization; the caller becomes its admin

        Any signed-in user (Bearer token; API keys get 403). Switch to it with
        `POST /auth/switch-organization` to act in it.
        """
        with services().unit_of_work() as uow:
            user = uow.session.get(User, current_principal().user_id)
            assert user is not None  # authenticated just now
            created = organization.create_organization(
                uow.session, user, body["name"], body["description"]
            )
            uow.commit()
        return organization.as_view(created.organization, created.role_name)


@blp.route("/organizations/<uuid:organization_id>")
class OrganizationById(MethodView):
    @requires("organization:read")
    @blp.response(200, OrganizationSchema)
    @error_responses(blp, *AUTHENTICATED_ERRORS, 404)
    def get(self, organization_id: uuid.UUID) -> dict[str, Any]:
        """Read the current organization

        Requires `organization:read`. 404 for any organization but the current one.
        """
        with services().session_factory() as session:
            current = organization.current_membership(session, current_principal(), organization_id)
            return organization.as_view(current.organization, current.role_name)

    @requires("organization:update")
    @blp.arguments(OrganizationUpdateSchema)
    @blp.response(200, OrganizationSchema)
    @error_responses(blp, *AUTHENTICATED_ERRORS, 404)
    def put(self, body: dict[str, Any], organization_id: uuid.UUID) -> dict[str, Any]:
        """Rename or describe the current organization

        Requires `organization:update`. 404 for any organization but the current one.
        """
        with services().unit_of_work() as uow:
            updated = organization.update_organization(
                uow.session, current_principal(), organization_id, body
            )
            uow.commit()
        return updated

    @requires("organization:delete")
    @blp.response(204)
    @error_responses(blp, *AUTHENTICATED_ERRORS, 404)
    def delete(self, organization_id: uuid.UUID) -> None:
        """Delete the current organization and everything in it

        Requires `organization:delete`. Its members' tokens and keys for it stop
        working; a member left without any organization gets a new one of their
        own at their next sign-in. 404 for any organization but the current one.
        """
        with services().unit_of_work() as uow:
            organization.delete_organization(uow.session, current_principal(), organization_id)
            uow.commit()


@blp.route("/organizations/<uuid:organization_id>/members")
class Members(MethodView):
    @requires("organization:read")
    @blp.arguments(PageQuerySchema, location="query")
    @blp.response(200, MemberPageSchema)
    @error_responses(blp, *AUTHENTICATED_ERRORS, 404)
    def get(self, query: dict[str, Any], organization_id: uuid.UUID) -> dict[str, Any]:
        """List the members, with their role and approval groups

        Requires `organization:read`. 404 for any organization but the current one.
        """
        with services().session_factory() as session:
            return membership.list_members(
                session,
                current_principal(),
                organization_id,
                query["page"],
                query["page_size"],
            )

    @requires("organization:members")
    @blp.arguments(MemberAddSchema)
    @blp.response(201, MemberSchema)
    @error_responses(blp, *AUTHENTICATED_ERRORS, 404, 409)
    def post(self, body: dict[str, Any], organization_id: uuid.UUID) -> Membership:
        """Add an existing user (by username or email) with a role and approval groups

        Requires `organization:members`. 404 when no user has that username or
        email (or for another organization), 409 when they are already a member,
        422 for an unknown role. The user then switches organization to act in it.
        """
        with services().unit_of_work() as uow:
            added = membership.add_member(uow.session, current_principal(), organization_id, body)
            uow.commit()
        return added


@blp.route("/organizations/<uuid:organization_id>/members/<uuid:user_id>")
class MemberById(MethodView):
    @requires("organization:members")
    @blp.arguments(MemberUpdateSchema)
    @blp.response(200, MemberSchema)
    @error_responses(blp, *AUTHENTICATED_ERRORS, 404, 409)
    def put(
        self, body: dict[str, Any], organization_id: uuid.UUID, user_id: uuid.UUID
    ) -> Membership:
        """Change a member's role and/or approval groups

        Requires `organization:members`. 409 when it would leave the organization
        without an admin; 404 for someone who is not a member.
        """
        with services().unit_of_work() as uow:
            changed = membership.update_member(
                uow.session, current_principal(), organization_id, user_id, body
            )
            uow.commit()
        return changed

    @requires("organization:members")
    @blp.response(204)
    @error_responses(blp, *AUTHENTICATED_ERRORS, 404, 409)
    def delete(self, organization_id: uuid.UUID, user_id: uuid.UUID) -> None:
        """Remove a member

        Requires `organization:members`. Their sessions and API keys in this
        organization are revoked. 409 for the last admin; 404 for a non-member.
        """
        with services().unit_of_work() as uow:
            membership.remove_member(uow.session, current_principal(), organization_id, user_id)
            uow.commit()
