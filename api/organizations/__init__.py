"""Organizations, their members and roles; every query scoped to the caller's organization."""
