"""Generation: seq2seq summarization (HashEE on BART's encoder) and decoder-LM early exit (ConsistentEE)."""
