"""Task data: task specs, readers of the ELUE and normalized TSV formats, synthetic tasks, hub loading."""
