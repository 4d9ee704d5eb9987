"""Dynamic early exit: exit rules, the train-once sweep at inference, operating-point matching, settings."""
