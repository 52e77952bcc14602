"""Workflow definitions: CRUD, versions, enable/disable and validation."""
