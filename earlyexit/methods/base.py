"""What a method declares and does; one subclass instance per module of `earlyexit.methods`.

A method says who it is (its name in configs and paths, its name in the paper, its family), what it
runs (its variants, e.g. HashEE's hash functions; the artifacts a run needs, e.g. a fitted hash; the
parameters it sweeps at inference), how it is shown (order, colour, the paper tables it has rows in)
and, in `run`, how it is built, trained and evaluated and how its cost is counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

# static: a fixed smaller/pruned model; token-level: per-token exits (HashEE); dynamic: per-instance
# exits decided at inference (thresholds, patience, learned exits).
FAMILIES = ("static", "token-level", "dynamic")
DEFAULT_VARIANT = "default"


@dataclass
class RunContext:
    """Everything one run (task x backbone x method x variant x seed) gets from the experiment step."""

    task: Any                       # earlyexit.data.tasks.TaskSpec
    backbone: Any                   # earlyexit.models.backbones.BackboneSpec
    variant: str
    seed: int
    splits: dict                    # "train" | "dev" | "test" -> earlyexit.data.encoded.EncodedSplit
    meta: dict                      # the tokenisation meta (pad_id, special_ids, num_layers, ...)
    artifacts: dict                 # artifact name -> path (as declared by Method.artifacts)
    train_config: Any               # earlyexit.training.loop.TrainConfig
    device: Any                     # torch.device
    checkpoint: str | None = None   # save the selected weights here, when set
    train_state: Any = None         # earlyexit.training.state.StateFile: train resumably there, when set
    progress: bool = True
    # The method's own settings from the config (dynamic methods: the schema-filled
    # `dynamic.<method>` section, e.g. FastBERT's distillation epochs); empty for the others.
    settings: dict = field(default_factory=dict)
    # summarization runs (task kind "summarization"): the tokenised file (targets too), the
    # config's summarization.generation settings, and the full model's depths the speed-ups divide
    # by (None: the run's own backbone before truncation is not known, use its own depths)
    tokenized: str | None = None
    generation: dict | None = None
    reference_layers: int | None = None
    reference_decoder_layers: int | None = None


@dataclass
class RunOutcome:
    """What `Method.run` returns; the experiment step turns it into the run record.

    Cost, per test instance in test order: `method_flops` (exact FLOPs of what the method ran),
    `elue_depth` (the number of layers the ELUE protocol is told, spec 6.3) and `tokens` (real
    tokens). `dims` are the model dimensions the FLOPs were counted with.
    """

    dev: dict
    test: dict
    best_on_test: dict | None
    selected_step: int
    history: list
    train_seconds: float
    eval_seconds: float
    method_flops: np.ndarray
    elue_depth: np.ndarray
    tokens: np.ndarray
    dims: Any                       # earlyexit.cost.flops.ModelDims
    extra: dict = field(default_factory=dict)   # method-specific record fields
    cost: dict | None = None        # the record's speedup/flops fields when the method counts them itself (seq2seq)
    # Per test instance, test order: the predicted label (classification), the predicted value
    # (regression) or the instance's ROUGE score (summarization); the run record keeps them
    # (`test_instances`, earlyexit/runs/instances.py) for the claims ledger's paired bootstrap.
    test_predictions: np.ndarray | None = None

    @classmethod
    def from_fine_tune(cls, result: dict, *, method_flops, elue_depth, tokens, dims, **fields) -> "RunOutcome":
        """The outcome of a run trained by earlyexit.training.fine_tuning.fine_tune (or seq2seq.fine_tune_seq2seq):
        its dev-selected scores, best-on-test, history and timings, with the cost the method counted;
        `fields`: the other RunOutcome fields (extra, cost, test_predictions when the result has none)."""
        return cls(dev=result["dev"], test=result["test"], best_on_test=result["best_on_test"],
                   selected_step=result["selected_step"], history=result["history"],
                   train_seconds=result["train_seconds"], eval_seconds=result["eval_seconds"],
                   method_flops=method_flops, elue_depth=elue_depth, tokens=tokens, dims=dims,
                   **{"test_predictions": result.get("test_predictions"), **fields})


@dataclass
class SweepPoint:
    """One inference-time setting of a dynamic method scored on its trained checkpoint
    (`Method.score_sweep`); the sweep step (earlyexit/dynamic/sweeps.py) turns it into speed-ups.

    Per instance, in split order: `*_exit_layers` (1-based layer that answered) and `*_cost`
    (earlyexit.cost.flops.TokenExitCost: real tokens, exact FLOPs, ELUE-protocol depth; a cascade
    counts every model it ran). `dims` are the dimensions the FLOPs were counted with."""

    setting: dict                   # swept parameter -> value, e.g. {"entropy": 0.4}
    dev: dict                       # metrics in percent with "score"
    test: dict
    dev_exit_layers: np.ndarray
    test_exit_layers: np.ndarray
    dev_cost: Any                   # earlyexit.cost.flops.TokenExitCost
    test_cost: Any
    dims: Any                       # earlyexit.cost.flops.ModelDims
    extra: dict = field(default_factory=dict)   # method-specific per-point fields (JSON-able)
    # the predicted label (value, for regression) per test instance at this setting, test order
    test_predictions: np.ndarray | None = None


# "<variant>@<parameter>=<value>": the path segment and wildcard of one run of a training-time sweep.
RUN_SEPARATOR = "@"


def run_name(variant: str, train_setting: dict) -> str:
    """The run's name in paths and wildcards: the variant, plus its training-time setting if any."""
    return f"{variant}{RUN_SEPARATOR}{setting_label(train_setting)}" if train_setting else variant


def run_variant(run: str) -> str:
    """The variant of a run name (run_name's inverse, first half)."""
    return run.split(RUN_SEPARATOR, 1)[0]


@dataclass
class LLMRunContext:
    """One run of the decoder-LM generation grid (config llm_generation; workflow/rules/llm.smk):
    the multi-exit LM after the shared stages (base LM + per-layer heads, rule llm_exits), its data,
    and the section's settings. `score(...)` is earlyexit.generation.llm_eval.score_point bound to the test
    split and the generation settings: one operating point."""

    model: Any                      # earlyexit.models.multi_exit_lm.MultiExitCausalLM
    splits: dict                    # "train" | "dev" | "test" -> earlyexit.generation.llm_data.LMSplit
    tokenizer: Any
    memorized: list                 # per training example, the memorized layer of each target token
    variant: str
    seed: int
    settings: dict                  # the schema-filled llm_generation section
    device: Any
    state: Any = None               # earlyexit.training.state.StateFile of the run (its own stages)
    score: Any = None               # (rule_kind, rule, setting, depth=None, own_head=False) -> point dict
    progress: bool = False


def setting_label(setting: dict) -> str:
    """"entropy=0.4" / "patience=3,regression_threshold=0.94": how an operating point is named."""
    return ",".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in setting.items())


class Method:
    name: str                       # in configs, wildcards and paths
    paper_name: str                 # as the paper writes it
    family: str                     # one of FAMILIES
    order: int                      # position in tables and legends
    color: str                      # matplotlib colour of its points and curves
    variants: tuple = (DEFAULT_VARIANT,)
    variant_labels: dict = {}       # variant -> label as the paper writes it
    variant_colors: dict = {}       # variant -> colour where variants share a figure (else `color`)
    sweep: dict = {}                # inference-time parameter -> values scored on one trained model
                                    # (dynamic family: the sweep rule scores every value; see score_sweep)
    tables: tuple = ()              # paper tables (data/published table names) it has rows in
    table_variants: dict = {}       # table -> the variants with rows in it (absent: every variant)
    reference: bool = False         # the no-exit model every other row is compared with
    # Its variants cut the backbone to each depth: with the reference row they draw a backbone's static
    # depth curve (the ELUE score's reference curve, the backbone-effect figure's lines).
    reference_curve: bool = False
    # Its runs read a fitted token-exit hash (artifact kind "hash"; the variants are hash functions): the
    # config checks which hashes apply (e.g. to a summarization encoder) and buckets vs depth for it.
    uses_hash: bool = False
    needs_hub: bool = False         # loads its own hub checkpoint: no run where requirements.network is false
    # The registry name of the method that this method's own paper compares it with at equal speed-up
    # (e.g. ConsistentEE against plain multi-exit training); the claims ledger reads it. None: no such rival.
    paper_rival: str | None = None
    # Runs on the decoder-LM generation grid (config llm_generation, rules in workflow/rules/llm.smk)
    # through `run_llm`, never on the encoder grid (train_eval through `run`): the encoder config's
    # `methods`, its rules and the encoder contract test leave such a method out, and
    # llm_generation.methods takes only such methods.
    generation_lm: bool = False
    # The method the HashEE paper proposes: the subject of the ledger's claims (c)-(f) (HashEE). One
    # method at most sets it; the claims ledger finds it here instead of naming it.
    paper_subject: bool = False
    # The variant its paper credits with the largest speed-up at a similar score (HashEE: the
    # frequency hash; claim d). None: no such claim.
    speed_variant: str | None = None
    # A TRAINING-time parameter: the name of a key of the method's settings (e.g. ConsistentEE's reward
    # weight "alpha") trained at every value of `train_grid`; each value is a run of its own (own
    # record, checkpoint and sweep file, path segment "<variant>@<name>=<value>": run_name), and the runs
    # of one variant (all values x inference settings) form ONE curve, across which the matched
    # operating point is picked. None: one run per variant. Dynamic methods only.
    train_sweep: str | None = None
    # In the actual-inference-time comparison (workflow/rules/timing.smk): its saved weights are
    # timed through `timed_model`.
    timed: bool = False

    def row_label(self, variant: str, paper_backbone: str, stand_in: str | None = None) -> str:
        """The run's row label; the same as `label` unless the name depends on the backbone
        (e.g. "BERT-3L" for the 3-layer truncation of the BERT backbone). `stand_in`: the config name
        of the backbone actually run when it only stands in for `paper_backbone` (a random or MiniLM
        backbone in an offline preset), so a backbone-named row says what really ran."""
        return self.label(variant)

    def applies(self, variant: str, backbone: dict) -> bool:
        """Whether `variant` runs on `backbone` (its config entry); e.g. a truncation no deeper than it."""
        return True

    def label(self, variant: str) -> str:
        """The row label: the variant's paper name, or the method's when it has one variant."""
        if variant == DEFAULT_VARIANT or len(self.variants) == 1:
            return self.paper_name
        return self.variant_labels.get(variant, variant)

    def published_row(self, table: str, variant: str, paper_backbone: str | None = None) -> str:
        """This run's row name in data/published/hashee_published.csv's `table`; `paper_backbone`
        (the run's) for methods whose row depends on it (BERxiT w/ BERT / w/ ElasticBERT)."""
        return self.label(variant)

    def train_grid(self, variant: str, settings: dict) -> tuple:
        """The values of `train_sweep` that `variant` trains at, given the method's schema-filled
        `settings`; () = one run with the settings as they are (e.g. a variant the parameter does
        not act on)."""
        return ()

    def artifacts(self, variant: str, seed: int) -> dict:
        """Artifacts a run needs: input name -> {"kind": ..., **keys}; the workflow maps them to
        files (see workflow/rules/common.smk). None by default."""
        return {}

    def run(self, ctx: RunContext) -> RunOutcome:
        raise NotImplementedError

    # --- the model a run saves, rebuilt (the sweep and the timing score saved weights) -------------

    def build(self, ctx: RunContext):
        """The model whose weights a run saves at ctx.checkpoint, before training (seeded from ctx.seed)."""
        raise NotImplementedError(f"method {self.name}: its saved weights cannot be rebuilt (no `build`)")

    def load(self, ctx: RunContext, checkpoint: str):
        """The model a run saved at `checkpoint` (rule train_eval's `model` output), on ctx.device, in
        eval mode: `build`, then the saved weights."""
        import torch

        model = self.build(ctx)
        model.load_state_dict(torch.load(checkpoint, map_location="cpu", weights_only=True))
        return model.to(ctx.device).eval()

    def run_llm(self, ctx: "LLMRunContext") -> list[dict]:
        """generation_lm methods: train what the method adds to the shared multi-exit LM and score
        its operating points (ctx.score); one JSON-able point per setting, in order."""
        raise NotImplementedError(f"method {self.name}: not a decoder-LM generation method")

    # --- dynamic methods: train once, sweep at inference (workflow/rules/sweeps.smk) ---------------

    def exit_support(self, task) -> str | None:
        """None when the method's exit rule can run `task` (a TaskSpec); else the reason it cannot
        (e.g. entropy on one regression logit): the run then records the reason, its sweep holds no
        point, and tables show "–" (the paper's empty cells), never a number."""
        return None

    def sweep_settings(self, task) -> list[dict]:
        """The inference-time settings the sweep scores for `task`: by default every combination of
        the `sweep` values (parameter -> value dicts, in `sweep` order). Methods override this where
        the grid depends on the task (e.g. PABEE's regression threshold on STS-B)."""
        import itertools

        names = list(self.sweep)
        return [dict(zip(names, values)) for values in itertools.product(*(self.sweep[n] for n in names))]

    def score_sweep(self, ctx: RunContext, checkpoint: str, settings: list[dict]) -> list[SweepPoint]:
        """Score the weights a run saved at `checkpoint` (the rule train_eval's `model` output) at
        every setting, on ctx.splits["dev"] and ["test"], without training; one SweepPoint per
        setting, in order. Called only when `exit_support(ctx.task)` is None."""
        raise NotImplementedError(f"method {self.name}: no inference-time sweep")

    def make_rule(self, setting: dict, task):
        """The exit rule (earlyexit.dynamic.exit_rules) of one inference-time setting, for a method whose
        rule needs nothing but the setting (entropy, patience)."""
        raise NotImplementedError(f"method {self.name}: no exit rule made from a setting alone")

    def model_rule(self, model, setting: dict, task):
        """The exit rule of one setting for a trained `model`: learned rules read its modules
        (BERxiT's exit module, ConsistentEE's policies); by default `make_rule`."""
        return self.make_rule(setting, task)

    def never_exit_setting(self, task) -> dict | None:
        """A setting of the method's own exit rule at which no instance leaves before the last layer
        (the exit-overhead benchmark's no-exit case); None: the method has no such rule."""
        return None

    # --- the actual-inference-time comparison (earlyexit/cost/timing.py) ----------------------------------

    def timed_model(self, ctx: RunContext, checkpoint: str | None, setting: dict | None):
        """The weights a run saved at `checkpoint` (None: freshly built, untrained: benchmarks), at
        the inference `setting` (dynamic methods: the matched operating point), as an
        earlyexit.cost.inference.TimedModel for the timing rule's one runner. Methods with `timed` set
        define it."""
        raise NotImplementedError(f"method {self.name}: not timed")

    def check(self) -> None:
        """Registration-time sanity: a malformed method fails the import, naming itself."""
        for attribute in ("name", "paper_name", "family", "order", "color"):
            if not hasattr(self, attribute):
                raise ImportError(f"method {type(self).__name__}: missing attribute {attribute!r}")
        if self.family not in FAMILIES:
            raise ImportError(f"method {self.name}: family {self.family!r} is not one of {FAMILIES}")
        if not self.variants or len(set(self.variants)) != len(self.variants):
            raise ImportError(f"method {self.name}: variants must be distinct and non-empty")
        if self.speed_variant is not None and self.speed_variant not in self.variants:
            raise ImportError(f"method {self.name}: speed_variant {self.speed_variant!r} is not one of its variants")
        if any(RUN_SEPARATOR in v for v in self.variants):
            raise ImportError(f"method {self.name}: a variant name may not contain {RUN_SEPARATOR!r} (it starts a run's training setting)")
        hashed = any(a.get("kind") == "hash" for v in self.variants for a in self.artifacts(v, 0).values())
        if hashed != self.uses_hash:
            raise ImportError(f"method {self.name}: uses_hash is {self.uses_hash} but its artifacts "
                              f"{'do' if hashed else 'do not'} name a hash")
        if self.timed and type(self).timed_model is Method.timed_model:
            raise ImportError(f"method {self.name}: timed, but defines no timed_model")
        if self.train_sweep is not None and self.family != "dynamic":
            raise ImportError(f"method {self.name}: a training-time sweep needs the dynamic family (its runs are matched as one curve)")
