"""The record store that workflows write, read-only over HTTP."""
