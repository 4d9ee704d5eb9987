"""The run shared by the dynamic (instance-level) early-exit methods, and the pieces they build on.

A dynamic method is a `DynamicMethod` subclass that says
- `heads`: the exit classifiers' shape (a key of earlyexit.models.multi_exit.EXIT_HEADS, or
  override `build`);
- `stages(model, ctx)`: its training scheme as a list of `Stage`s, each one call of the one training
  loop (earlyexit.training.loop.train_loop) with its own trainable parameters, loss, selection and
  state file (resumable per stage through ctx.train_state.stage(name));
- `make_rule(setting, task)` (or `model_rule` for a learned rule): the exit rule
  (earlyexit.dynamic.exit_rules) of one sweep setting, and `never_exit_setting`;
- `sweep` / `sweep_settings` and `exit_support` (earlyexit.methods.base.Method).

Timed (earlyexit/cost/timing.py) as an `EarlyExitModel`: real batched early exit with the rule of the
matched setting.

`run` trains the stages, saves the weights to ctx.checkpoint, and records the LAST layer's scores
with no exit (every instance runs L layers, so its speed-up against the own full model is 1.0);
the exits are scored afterwards, at every sweep setting, by `score_sweep` (the sweep rule, on the
saved checkpoint: training is never repeated). Where the method's exit rule cannot run the task
(`exit_support` gives a reason, e.g. entropy on regression), only the stages a plain fine-tune
needs run (`Stage.needs_exits` False), and the record says why (`exit_unsupported`).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from earlyexit.cost.inference import TimedModel
from earlyexit.methods.base import Method, RunContext, RunOutcome, SweepPoint


@dataclass
class Stage:
    """One training stage: a train_loop call.

    name:        the stage's state file name (ctx.train_state.stage(name)) and history label;
    trainable:   predicate on a parameter name of the MultiExitClassifier: trained in this stage
                 (every other parameter is frozen; frozen modules still run in train mode);
    loss:        (model, batch) -> scalar, batch = (input_ids, token_type_ids, attention_mask,
                 labels) on the device;
    select:      per-layer dev scores [L] -> the number the loop maximises;
    config:      changes to the run's TrainConfig (e.g. {"lr": ..., "epochs": ...});
    needs_exits: False for a stage that only fine-tunes the last layer (run even where the exit
                 rule cannot run the task).
    start:       (model) -> None, called before the stage trains, after the previous stage restored
                 its selected weights (also on a resumed run), e.g. ConsistentEE's memorized layers;
    indexed:     the loss gets (model, batch, rows, position): the batch's training-example indices
                 and its position in the epoch (BERxiT alternates objectives by step parity);
    max_batches: at most this many batches per epoch (the first ones of the shuffled plan);
    independent_of: settings (keys of ctx.settings, e.g. ConsistentEE's "alpha") the FIRST stage does
                 not read: runs of one process (a grouped job) that differ only in them reuse its
                 trained weights instead of training it again (every stage seeds itself, so the later
                 stages and the results are the same as in a fresh process; tested).
    """

    name: str
    trainable: Callable[[str], bool]
    loss: Callable
    select: Callable[[list], float]
    config: dict = dataclasses.field(default_factory=dict)
    needs_exits: bool = True
    start: Callable | None = None
    indexed: bool = False
    max_batches: int | None = None
    independent_of: tuple = ()


def last_layer(scores: list) -> float:
    return scores[-1]


def mean_of_exits(scores: list) -> float:
    """Mean dev score of the internal exits 1..L-1 (the stages that train only them)."""
    return float(np.mean(scores[:-1])) if len(scores) > 1 else scores[-1]


def task_loss(logits, labels, regression: bool):
    from earlyexit.training.fine_tuning import classification_loss

    return classification_loss(logits, labels, regression)


class DynamicMethod(Method):
    family = "dynamic"
    tables = ("elue_main",)
    heads: str = ""
    timed = True

    # --- what subclasses define ----------------------------------------------------------------
    def stages(self, model, ctx: RunContext) -> list[Stage]:
        raise NotImplementedError

    def extra_record(self, model, ctx: RunContext, tokens: np.ndarray, exit_layers: np.ndarray) -> dict:
        """Method-specific fields of the run record (e.g. FastBERT's classifier cost)."""
        return {}

    # --- shared ----------------------------------------------------------------------------------
    def build(self, ctx: RunContext):
        from earlyexit.models.backbones import load_classifier
        from earlyexit.models.multi_exit import MultiExitClassifier

        return MultiExitClassifier(load_classifier(ctx.backbone, ctx.task.num_labels, ctx.seed), self.heads)

    def run(self, ctx: RunContext) -> RunOutcome:
        import torch

        from earlyexit.dynamic.exit_rules import NeverExit
        from earlyexit.cost.flops import ModelDims, dynamic_exit_cost
        from earlyexit.plumbing.files import atomic_path

        unsupported = self.exit_support(ctx.task)
        model = self.build(ctx).to(ctx.device)
        stages = [s for s in self.stages(model, ctx) if unsupported is None or not s.needs_exits]
        trained = train_stages(model, stages, ctx)
        if ctx.checkpoint:
            with atomic_path(ctx.checkpoint) as tmp:
                torch.save(model.state_dict(), tmp)
        started = time.perf_counter()
        dev = evaluate_with_rule(model, ctx.splits["dev"], NeverExit, ctx)
        test = evaluate_with_rule(model, ctx.splits["test"], NeverExit, ctx)
        eval_seconds = time.perf_counter() - started
        dims = ModelDims.from_hf_config(model.hf.config)
        tokens = ctx.splits["test"].lengths
        cost = dynamic_exit_cost(tokens, test.exit_layers, dims)
        extra = {"mean_exit_layer": float(test.exit_layers.mean()), "stages": trained["stages"],
                 **self.extra_record(model, ctx, tokens, test.exit_layers)}
        if unsupported is not None:
            extra["exit_unsupported"] = unsupported
        else:
            # did the exits learn? every exit's dev score beside the train-majority answer's, before
            # any sweep (an exit at or below it is one the sweeps can only misuse)
            extra["exit_dev_scores"] = layer_scores(model, ctx.splits["dev"], ctx)
            extra["majority_dev_score"] = majority_score(ctx)
        return RunOutcome(dev=dev.metrics, test=test.metrics, best_on_test=trained["best_on_test"],
                          selected_step=trained["selected_step"], history=trained["history"],
                          train_seconds=trained["train_seconds"], eval_seconds=eval_seconds,
                          method_flops=cost.method_flops, elue_depth=cost.elue_depth, tokens=cost.tokens,
                          dims=dims, extra=extra, test_predictions=test.predictions)

    def timed_model(self, ctx: RunContext, checkpoint: str | None, setting: dict | None):
        """Real early exit with the rule at `setting` (a fresh rule per batch, as the sweep scores it)."""
        import torch

        model = self.build(ctx)
        if checkpoint is not None:
            model.load_state_dict(torch.load(checkpoint, map_location="cpu", weights_only=True))
        model.eval()
        return EarlyExitModel(model, lambda: self.model_rule(model, setting, ctx.task))

    def score_sweep(self, ctx: RunContext, checkpoint: str, settings: list[dict]) -> list[SweepPoint]:
        from earlyexit.cost.flops import ModelDims, dynamic_exit_cost

        reason = self.exit_support(ctx.task)
        if reason is not None:
            raise ValueError(f"method {self.name} on {ctx.task.name}: {reason}")
        model = self.load(ctx, checkpoint)
        dims = ModelDims.from_hf_config(model.hf.config)
        # one pass of every layer per split, every setting's exits replayed on it
        makers = [lambda setting=setting: self.model_rule(model, setting, ctx.task) for setting in settings]
        per_split = {name: replay_rules(model, ctx.splits[name], makers, ctx) for name in ("dev", "test")}
        points = []
        for i, setting in enumerate(settings):
            scored = {name: per_split[name][i] for name in ("dev", "test")}
            points.append(SweepPoint(
                setting=dict(setting), dev=scored["dev"].metrics, test=scored["test"].metrics,
                dev_exit_layers=scored["dev"].exit_layers, test_exit_layers=scored["test"].exit_layers,
                dev_cost=dynamic_exit_cost(ctx.splits["dev"].lengths, scored["dev"].exit_layers, dims),
                test_cost=dynamic_exit_cost(ctx.splits["test"].lengths, scored["test"].exit_layers, dims),
                dims=dims, extra=self.extra_record(model, ctx, ctx.splits["test"].lengths, scored["test"].exit_layers),
                test_predictions=scored["test"].predictions))
        return points


class EarlyExitModel(TimedModel):
    """A multi-exit model (earlyexit.models.multi_exit) in real batched early exit, with a fresh exit
    rule per batch (`make_rule()`)."""

    def __init__(self, model, make_rule: Callable):
        from earlyexit.cost.flops import ModelDims

        super().__init__(model, model.num_layers, ModelDims.from_hf_config(model.hf.config))
        self.make_rule = make_rule

    def forward(self, batch):
        result = self.model.early_exit(batch.input_ids, batch.token_type_ids, batch.attention_mask, self.make_rule(),
                                       lengths=batch.lengths)
        return result.logits, result.exit_layers

    def cost(self, split, per_row):
        from earlyexit.cost.flops import dynamic_exit_cost

        return dynamic_exit_cost(split.lengths, per_row, self.dims)

    def exit_points(self) -> list[int]:
        return list(range(1, self.num_layers))

    def exiting_at(self, layer: int) -> "EarlyExitModel":
        from earlyexit.dynamic.exit_rules import ExitAtLayer

        return EarlyExitModel(self.model, lambda: ExitAtLayer(layer))

    def reference(self, layer: int | None):
        depth = self.num_layers if layer is None else layer
        return lambda batch: self.model.truncated(batch.input_ids, batch.token_type_ids, batch.attention_mask, depth)


# --- training ------------------------------------------------------------------------------------

# First stages already trained in this process (Stage.independent_of): key -> (weights on the CPU,
# the loop's result). Bounded: a grouped job runs a method's runs value-major, seeds inner.
_SHARED_STAGES: dict = {}
_SHARED_LIMIT = 8


def _shared_key(stage: Stage, ctx: RunContext, cfg) -> str | None:
    """What the first stage's result depends on, when it declares settings it does not read."""
    import json

    if not stage.independent_of:
        return None
    settings = {k: v for k, v in ctx.settings.items() if k not in stage.independent_of}
    return json.dumps({"stage": stage.name, "task": ctx.task.name, "variant": ctx.variant, "seed": ctx.seed,
                       "backbone": {k: str(v) for k, v in vars(ctx.backbone).items()},
                       "tokenized": ctx.meta.get("sha256"), "splits": {k: len(v) for k, v in ctx.splits.items()},
                       "config": cfg.as_dict(), "settings": settings, "device": str(ctx.device)},
                      sort_keys=True, default=str)

def train_stages(model, stages: list[Stage], ctx: RunContext) -> dict:
    """Run the stages in order on the one loop; each stage restores its dev-selected weights before
    the next starts, and each is resumable on its own (ctx.train_state.stage(name)). Returns the
    first stage's selected step and best-on-test (the last layer's, which later stages freeze),
    every stage's history (labelled with the stage), a summary per stage and the training time.
    The caller scores the final model itself."""
    from earlyexit.data.batching import training_batches
    from earlyexit.training.fine_tuning import autocast
    from earlyexit.models.multi_exit import device_batch
    from earlyexit.training.loop import TrainHooks, train_loop

    if not stages:
        raise ValueError("a dynamic method needs at least one training stage")
    train, dev, test = ctx.splits["train"], ctx.splits["dev"], ctx.splits["test"]
    pad_id, device = ctx.meta["pad_id"], ctx.device
    history, summary, first, seconds = [], [], None, 0.0
    for stage in stages:
        cfg = dataclasses.replace(ctx.train_config, **stage.config)
        for name, parameter in model.named_parameters():
            parameter.requires_grad_(stage.trainable(name))
        if not any(p.requires_grad for p in model.parameters()):
            raise ValueError(f"stage {stage.name}: no trainable parameter")

        if stage.start is not None:
            stage.start(model)

        def loss(planned, stage=stage, cfg=cfg):
            # an indexed stage's plan holds [position, *indices] (an int array keeps the plan's digest)
            indices = planned[1:] if stage.indexed else planned
            batch = device_batch(train, indices, pad_id, device)
            with autocast(device, cfg.autocast_bf16(device)):
                if stage.indexed:
                    return stage.loss(model, batch, indices, int(planned[0]))
                return stage.loss(model, batch)

        def epoch_batches(rng, stage=stage, cfg=cfg):
            batches = training_batches(train, cfg.batch_size, rng)[:stage.max_batches]
            if stage.indexed:
                return [np.concatenate([[position], rows]) for position, rows in enumerate(batches)]
            return batches

        def evaluate_point(stage=stage, cfg=cfg):
            scores = layer_scores(model, dev, ctx, cfg)
            point = {"dev": {"score": scores[-1], "layers": scores}, "select": stage.select(scores)}
            if cfg.track_best_on_test:
                point["test"] = {"score": layer_scores(model, test, ctx, cfg, last_only=True)[-1]}
            return point

        hooks = TrainHooks(epoch_batches=epoch_batches, loss=loss, evaluate=evaluate_point)
        state = ctx.train_state.stage(stage.name) if ctx.train_state is not None else None
        key = _shared_key(stage, ctx, cfg) if first is None else None
        if key is not None and key in _SHARED_STAGES:
            weights, result = _SHARED_STAGES[key]
            model.load_state_dict(weights)
            result = {**result, "train_seconds": 0.0, "shared": True}
        else:
            result = train_loop(model, hooks, cfg, ctx.seed, progress=ctx.progress, desc=stage.name, state=state)
            if key is not None:
                while len(_SHARED_STAGES) >= _SHARED_LIMIT:
                    _SHARED_STAGES.pop(next(iter(_SHARED_STAGES)))
                _SHARED_STAGES[key] = ({k: v.detach().cpu().clone() for k, v in model.state_dict().items()}, result)
        seconds += result["train_seconds"]
        history += [{"stage": stage.name, **{k: v for k, v in p.items() if k != "select"}} for p in result["history"]]
        summary.append({"name": stage.name, "selected_step": result["selected"]["step"], "steps": result["steps"],
                        "lr": cfg.lr, "epochs": cfg.epochs,
                        # reused from a run of this process that differs only in settings the stage does not read
                        **({"reused": True} if result.get("shared") else {})})
        if first is None:
            first = result
    for parameter in model.parameters():
        parameter.requires_grad_(True)
    model.eval()
    tested = [p for p in first["history"] if "test" in p]
    best = max(tested, key=lambda p: p["test"]["score"], default=None)
    return {"best_on_test": None if best is None else {**best["test"], "step": best["step"], "stage": stages[0].name},
            "selected_step": first["selected"]["step"], "history": history, "stages": summary,
            "train_seconds": seconds}


# --- inference -----------------------------------------------------------------------------------

def _eval_batches(split, ctx: RunContext, cfg=None):
    from earlyexit.data.batching import evaluation_batches
    from earlyexit.models.multi_exit import device_batch

    cfg = cfg or ctx.train_config
    for indices in evaluation_batches(split, cfg.eval_batch_size):
        ids, types, mask, _ = device_batch(split, indices, ctx.meta["pad_id"], ctx.device)
        yield indices, ids, types, mask


def _answer(logits, regression: bool) -> np.ndarray:
    logits = logits.float()
    return (logits[:, 0] if regression else logits.argmax(-1)).cpu().numpy()


def layer_scores(model, split, ctx: RunContext, cfg=None, last_only: bool = False) -> list[float]:
    """Dev/test score of every exit (every row through every layer), in layer order; with
    `last_only`, [last layer's score]."""
    import torch

    from earlyexit.training.fine_tuning import autocast
    from earlyexit.runs.metrics import compute_metrics

    cfg = cfg or ctx.train_config
    regression = ctx.task.is_regression
    layers = [model.num_layers - 1] if last_only else range(model.num_layers)
    out = {l: np.zeros(len(split), dtype=np.float64 if regression else np.int64) for l in layers}
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for indices, ids, types, mask in _eval_batches(split, ctx, cfg):
            with autocast(ctx.device, cfg.autocast_bf16(ctx.device)):
                logits = model(ids, types, mask).logits
            for l in layers:
                out[l][indices] = _answer(logits[l], regression)
    model.train(was_training)
    return [compute_metrics(ctx.task.metric, out[l], split.labels)["score"] for l in layers]


def majority_score(ctx: RunContext) -> float | None:
    """The dev score of answering every instance with the train split's most frequent class (None
    for regression, which has no majority class)."""
    from earlyexit.runs.metrics import compute_metrics

    if ctx.task.is_regression:
        return None
    labels, dev = np.asarray(ctx.splits["train"].labels), ctx.splits["dev"]
    majority = np.bincount(labels.astype(np.int64)).argmax()
    return compute_metrics(ctx.task.metric, np.full(len(dev), majority), dev.labels)["score"]


@dataclass
class RuleScores:
    metrics: dict
    predictions: np.ndarray
    exit_layers: np.ndarray     # per instance, split order


def evaluate_with_rule(model, split, make_rule: Callable, ctx: RunContext) -> RuleScores:
    """Real batched early exit over a split with a fresh rule per batch (`make_rule()`)."""
    import torch

    from earlyexit.training.fine_tuning import autocast
    from earlyexit.runs.metrics import compute_metrics

    regression = ctx.task.is_regression
    predictions = np.zeros(len(split), dtype=np.float64 if regression else np.int64)
    exit_layers = np.zeros(len(split), dtype=np.int64)
    model.eval()
    with torch.no_grad():
        for indices, ids, types, mask in _eval_batches(split, ctx):
            with autocast(ctx.device, ctx.train_config.autocast_bf16(ctx.device)):
                result = model.early_exit(ids, types, mask, make_rule())
            predictions[indices] = _answer(result.logits, regression)
            exit_layers[indices] = result.exit_layers
    return RuleScores(compute_metrics(ctx.task.metric, predictions, split.labels), predictions, exit_layers)


def replay_rules(model, split, makers: list[Callable], ctx: RunContext) -> list[RuleScores]:
    """`evaluate_with_rule` for several rules at the cost of one full pass: every layer's outputs
    once per batch, each rule's exits replayed on them (earlyexit.models.multi_exit.replay_exit)."""
    import torch

    from earlyexit.training.fine_tuning import autocast
    from earlyexit.runs.metrics import compute_metrics
    from earlyexit.models.multi_exit import replay_exit

    regression = ctx.task.is_regression
    predictions = np.zeros((len(makers), len(split)), dtype=np.float64 if regression else np.int64)
    exit_layers = np.zeros((len(makers), len(split)), dtype=np.int64)
    model.eval()
    with torch.no_grad():
        for indices, ids, types, mask in _eval_batches(split, ctx):
            with autocast(ctx.device, ctx.train_config.autocast_bf16(ctx.device)):
                recorded = model.layer_outputs(ids, types, mask)
                for i, make_rule in enumerate(makers):
                    result = replay_exit(recorded, make_rule())
                    predictions[i, indices] = _answer(result.logits, regression)
                    exit_layers[i, indices] = result.exit_layers
    return [RuleScores(compute_metrics(ctx.task.metric, predictions[i], split.labels), predictions[i], exit_layers[i])
            for i in range(len(makers))]


# --- losses the methods share ----------------------------------------------------------------------

def forward_all(model, batch):
    """Every exit's logits [L x [B, C]] of a training batch."""
    ids, types, mask, _ = batch
    return model(ids, types, mask).logits


def forward_last(model, batch):
    """The last exit's logits [B, C] only (the other heads do not run)."""
    ids, types, mask, _ = batch
    return model(ids, types, mask, exits=[model.num_layers]).logits[-1]


def exit_names(model, layers) -> Callable[[str], bool]:
    """Predicate: the parameter belongs to one of the exit heads `layers` (1-based)."""
    prefixes = tuple(f"exits.{l - 1}." for l in layers)
    return lambda name: name.startswith(prefixes)
