"""The `iwctl` commands, one module per area."""
