"""Analytics: execution, workflow, error and step statistics of an organization, in SQL."""
