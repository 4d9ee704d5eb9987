"""Cost accounting: exact FLOPs (the paper's speed-up convention) and wall-clock timing of every method."""
