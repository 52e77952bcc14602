"""Idempotent seeding of the RBAC catalogue into the database."""

from __future__ import annotations

from sqlalchemy import Connection, delete, tuple_
from sqlalchemy.dialects.postgresql import insert

from models.identity import Permission, Role, RolePermission
from models.permission import PERMISSIONS, ROLES


def seed_roles(connection: Connection) -> None:
    """Make roles, permissions and their links equal to models.permission."""
    for name, description in PERMISSIONS.items():
        statement = insert(Permission).values(name=name, description=description)
        connection.execute(
            statement.on_conflict_do_update(
                index_elements=["name"], set_={"description": description}
            )
        )
    links: list[tuple[str, str]] = []
    for role, (description, permissions) in ROLES.items():
        statement = insert(Role).values(name=role, description=description)
        connection.execute(
            statement.on_conflict_do_update(
                index_elements=["name"], set_={"description": description}
            )
        )
        links.extend((role, permission) for permission in permissions)
    connection.execute(
        delete(RolePermission).where(
            tuple_(RolePermission.role_name, RolePermission.permission_name).not_in(links)
        )
    )
    connection.execute(
        insert(RolePermission)
        .values([{"role_name": r, "permission_name": p} for r, p in links])
        .on_conflict_do_nothing()
    )
    connection.execute(delete(Permission).where(Permission.name.not_in(list(PERMISSIONS))))
