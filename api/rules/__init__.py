"""Rules: named, reusable condition sets referenced by `rule_id`."""
