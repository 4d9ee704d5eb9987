"""Reusable code of the early-exit reproduction suite. The workflow's scripts (workflow/scripts/) are
thin wrappers over it; analysis/ and difficulty/ read what it writes.

The package, by part:

- `methods/`     the registry: one module per method (HashEE, each baseline, ConsistentEE); `base.Method`
                 declares every hook the rest of the suite calls. `_dynamic.py` is the shared base of the
                 dynamic (multi-exit) methods, `_token_exit.py` of the token-level ones.
- `models/`      the networks: backbones (`backbones.py`: hub, MiniLM, random, pre-trained here), HashEE's
                 token-exit encoder, multi-exit heads, the fast linear path every model uses.
- `hashing/`     the hash functions that send each token to its exit layer, and the fitted-hash files.
- `dynamic/`     dynamic early exit after training: exit rules, the train-once sweep of a checkpoint,
                 operating-point matching, the `dynamic:` config section.
- `training/`    the one training loop with hooks (`loop.py`), its resumable state, fine-tuning helpers,
                 HeadPrune's pruning, ElasticBERT-style multi-exit pre-training.
- `runs/`        one run end to end: its context (`context.py`), train -> evaluate -> record
                 (`experiment.py`), per-instance outcomes, task metrics, reuse of finished runs.
- `cost/`        the paper's speed-up convention (exact FLOPs, `flops.py`) and the wall-clock timing of
                 every method through one runner (`timing.py`, `inference.py`).
- `generation/`  summarization (HashEE on a seq2seq encoder, ROUGE) and decoder-LM early exit.
- `data/`        task specs, readers, synthetic tasks, hub loading, tokenised splits and batching.
- `plumbing/`    paths, atomic files, logs, config checks, locks: no science.
"""

__version__ = "0.1.0"
