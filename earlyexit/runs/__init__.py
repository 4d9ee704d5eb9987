"""One run end to end: its context, train/evaluate/record, per-instance outcomes, metrics, finished-run reuse."""
