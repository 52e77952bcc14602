"""Metrics, their exposition and the monitoring assets (see README.md).

Nothing is imported here: importing the package has no side effects.
"""
