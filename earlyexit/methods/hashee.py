"""HashEE (Sun et al., 2022): every token exits at the layer a hash function gives its id; no
internal classifiers, no extra parameters. The variant is the hash function (earlyexit/hashing/functions.py),
fitted on the training split by the workflow's `fit_hash` rule before the run."""

from __future__ import annotations

from earlyexit.hashing.functions import HASH_NAMES, SEEDED_HASHES
from earlyexit.methods._token_exit import TokenExitMethod, run_token_exit, timed_token_model
from earlyexit.methods.base import RunContext, RunOutcome


class HashEE(TokenExitMethod):
    name = "hashee"
    paper_name = "HashEE"
    family = "token-level"
    order = 1000             # last, as in the paper's main table (after every baseline)
    color = "tab:red"
    variants = HASH_NAMES
    variant_labels = {"rand-incons": "Rand-incons", "rand-cons": "Rand-cons", "frequency": "Frequency",
                      "mi": "MI", "clustered": "Clustered"}
    # Colours of the hash functions where they share a figure (colour-blind-safe, fixed per hash).
    variant_colors = {"rand-incons": "#0173b2", "rand-cons": "#de8f05", "frequency": "#029e73",
                      "mi": "#d55e00", "clustered": "#cc78bc"}
    tables = ("hash_functions", "elue_main", "summarization")
    # The main table's one HashEE row: the frequency hash (the authors' default, spec 5.1) on
    # ElasticBERT-6L, whose hash-table speed-up (4.9x) matches the row's 4.4-6.2x [inferred].
    table_variants = {"elue_main": ("frequency",)}
    paper_subject = True            # the claims ledger's claims (c)-(f) are about HashEE
    uses_hash = True                # its variants are the fitted hashes (artifact "hash")
    speed_variant = "frequency"     # "frequency hash: the largest speed-up at a similar score" (claim d)
    main_table_backbone = "ElasticBERT-6L"
    timed = True

    def published_row(self, table: str, variant: str, paper_backbone: str | None = None) -> str:
        # The hash-function table's rows are the hash names; elsewhere the paper writes "HashEE",
        # and its main-table row is the ElasticBERT-6L one ("" = no published row).
        if table == "hash_functions":
            return variant
        if table == "elue_main" and paper_backbone not in (None, self.main_table_backbone):
            return ""
        return self.paper_name

    def artifacts(self, variant: str, seed: int) -> dict:
        # rand-cons and clustered depend on the seed; the others are fitted once per task x backbone
        # (rand-incons draws its per-occurrence layers inside each run, from the run's seed).
        return {"hash": {"kind": "hash", "hash": variant,
                         "fit": f"seed{seed}" if variant in SEEDED_HASHES else "train"}}

    def run(self, ctx: RunContext) -> RunOutcome:
        return run_token_exit(ctx, self._hash(ctx))

    def timed_model(self, ctx: RunContext, checkpoint: str | None, setting: dict | None):
        return timed_token_model(ctx, checkpoint, self._hash(ctx))

    def _hash(self, ctx: RunContext):
        from earlyexit.hashing.functions import TokenExitHash

        token_hash = TokenExitHash.load(ctx.artifacts["hash"])
        if token_hash.name != ctx.variant:
            raise ValueError(f"{ctx.artifacts['hash']}: holds a {token_hash.name!r} hash, the run asks for "
                             f"{ctx.variant!r}")
        return token_hash


METHOD = HashEE()
