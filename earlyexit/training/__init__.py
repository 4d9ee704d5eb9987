"""The one training loop with hooks, its resumable state, fine-tuning helpers, multi-exit pre-training."""
