"""Schedules: cron due-times attached to a workflow, fired by the scheduler job."""
