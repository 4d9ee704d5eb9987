"""CascadeBERT (Li et al., Findings of EMNLP 2021; baselines-spec 2.4): a small complete model
answers the instances it is confident on, the big one (the whole backbone) the rest; a cascaded
instance pays for both (small + L layers).

Settings (`dynamic.cascadebert`, defaults in the config schema):
- Small model: the first `small_layers` (2) layers of the backbone fine-tuned as a complete model,
  the spec's offline approximation, unless `small_models` names a hub model for this backbone (the
  paper's `google/bert_uncased_L-2_H-768_A-12` beside BERT-base) and it loads; the run record says
  which (`cascade.small_model`, `cascade.approximated`).
- Difficulty labels: for each of `label_seeds` seeds the small model is fine-tuned alone
  (fresh heads, seeds derived from the run's; `label_epochs`, else the run's epochs) by
  `label_folds`-fold cross-fitting, so each training instance is predicted by a model that never
  fitted it; it is easy when every seed's out-of-fold prediction is right, else hard (the authors'
  `dif_5seeds-2level` file; its rule is not published). Scored on the data they fitted, the small
  models mark almost everything easy (they overfit), which is no difficulty signal. With 2 folds the
  cost equals one small model per seed on all the data.
- Joint training on the one loop: CE(small) + CE(big) + `dar_weight` * DAR(margin `dar_margin`).
  Checkpoint selection on dev: the mean of the two models' dev scores (both answer at every
  threshold).
- Inference (the sweep, the timing): the small model's max probability > threshold (strict) keeps
  its answer; otherwise the big model runs on those rows only (earlyexit/models/cascade.py).
- The run record, like the other dynamic methods' no-exit record, holds the big model alone on every
  instance (L layers: the own full model's cost); the cascade is scored at every threshold by
  `score_sweep`. Cost per instance: small layers, or small + L (ELUE protocol; spec 1.3, 2.4).
- Regression: one logit's softmax is always 1, so every instance would stop at the small model.
  The run fine-tunes the big model alone and records that the cascade cannot run (tables: "–").
"""

from __future__ import annotations

import copy
import logging

import numpy as np

from earlyexit.cost.inference import TimedModel
from earlyexit.methods.base import Method, RunContext, RunOutcome, SweepPoint

log = logging.getLogger("earlyexit.methods.cascadebert")


def label_seed(seed: int, k: int) -> int:
    """The seed of the k-th difficulty-labelling small model of a run with `seed`."""
    return 1000 * seed + 1 + k


def cascade_cost(tokens: np.ndarray, escalated: np.ndarray, small_dims, big_dims):
    """Per instance (earlyexit.cost.flops.TokenExitCost): real tokens, exact FLOPs (the small model's,
    plus the big model's when it answered) and the ELUE-protocol depth in layers: small, or small +
    big (the counter is linear in depth, spec 2.4; the small model's own embedding LayerNorm, paid
    twice, is left out as the spec allows)."""
    from earlyexit.cost.flops import TokenExitCost, full_flops

    tokens, escalated = np.asarray(tokens, dtype=np.int64), np.asarray(escalated, dtype=bool)
    exact = np.array([full_flops(n, small_dims) + (full_flops(n, big_dims) if up else 0.0)
                      for n, up in zip(tokens, escalated)], dtype=float)
    depth = np.where(escalated, small_dims.num_layers + big_dims.num_layers, small_dims.num_layers).astype(float)
    return TokenExitCost(tokens=tokens, method_flops=exact, elue_depth=depth)


def replay_cascade(model, split, thresholds: list[float], batch_size: int, pad_id: int, device, bf16: bool):
    """The cascade's answers at every threshold from one pass of both models over the split: a row's
    answer is the small model's or the big model's logits on that row, whichever the routing picks,
    so both are computed once (equal to the real cascade up to float rounding). Returns a list of
    (predictions, escalated) per threshold."""
    import torch

    from earlyexit.data.batching import evaluation_batches
    from earlyexit.training.fine_tuning import autocast
    from earlyexit.models.cascade import answered_by_small
    from earlyexit.models.multi_exit import device_batch

    model.eval()
    predictions = np.zeros((len(thresholds), len(split)), dtype=np.int64)
    escalated = np.zeros((len(thresholds), len(split)), dtype=bool)
    with torch.no_grad():
        for indices in evaluation_batches(split, batch_size):
            ids, types, mask, _ = device_batch(split, indices, pad_id, device)
            with autocast(device, bf16):
                small, big = (logits.float() for logits in model(ids, types, mask))
            for i, threshold in enumerate(thresholds):
                up = ~answered_by_small(small, threshold)
                predictions[i, indices] = torch.where(up[:, None], big, small).argmax(-1).cpu().numpy()
                escalated[i, indices] = up.cpu().numpy()
    return list(zip(predictions, escalated))


def _classifier_hooks(model, ctx: RunContext, regression: bool = False):
    """The shared fine-tuning hooks (earlyexit.training.fine_tuning.classifier_hooks) for one HF classifier on
    ctx's splits: a difficulty-labelling small model, or the big model alone where the cascade cannot
    run the task."""
    from earlyexit.training import fine_tuning
    return fine_tuning.classifier_hooks(model, ctx.splits["train"], ctx.splits["dev"], metric=ctx.task.metric,
                                        cfg=ctx.train_config, pad_id=ctx.meta["pad_id"], device=ctx.device,
                                        regression=regression)


def _joint_hooks(model, hard: np.ndarray, ctx: RunContext):
    """Hooks of the one loop for the joint training: CE(small) + CE(big) + weight * DAR."""
    import torch
    import torch.nn.functional as F

    from earlyexit.data.batching import training_batches
    from earlyexit.training.fine_tuning import autocast, predict_classifier
    from earlyexit.runs.metrics import compute_metrics
    from earlyexit.models.cascade import confidence, dar_loss
    from earlyexit.models.multi_exit import device_batch
    from earlyexit.training.loop import TrainHooks

    train, dev, pad_id, cfg, device = ctx.splits["train"], ctx.splits["dev"], ctx.meta["pad_id"], ctx.train_config, ctx.device
    weight, margin = ctx.settings["dar_weight"], ctx.settings["dar_margin"]
    hard_t = torch.from_numpy(hard)

    def loss(indices):
        ids, types, mask, labels = device_batch(train, indices, pad_id, device)
        with autocast(device, cfg.autocast_bf16(device)):
            small, big = model(ids, types, mask)
        small, big = small.float(), big.float()
        return (F.cross_entropy(small, labels) + F.cross_entropy(big, labels)
                + weight * dar_loss(confidence(small), hard_t[indices], margin))

    def evaluate():
        scores = {name: compute_metrics(ctx.task.metric, predict_classifier(part, dev, cfg.eval_batch_size, pad_id, device,
                                                                            cfg.autocast_bf16(device)), dev.labels)
                  for name, part in (("small", model.small), ("big", model.big))}
        select = (scores["small"]["score"] + scores["big"]["score"]) / 2
        return {"dev": {"score": select, "small": scores["small"]["score"], "big": scores["big"]["score"]},
                "select": select}

    return TrainHooks(epoch_batches=lambda rng: training_batches(train, cfg.batch_size, rng), loss=loss,
                      evaluate=evaluate)


def _fresh_head(model, seed: int):
    """A copy of `model` whose classification head is initialised anew from `seed`."""
    import torch

    fresh = copy.deepcopy(model)
    torch.manual_seed(seed)
    fresh.classifier.apply(fresh._init_weights)
    return fresh


def fold_of(n: int, folds: int, seed: int) -> np.ndarray:
    """The fold (0..folds-1) of each of n instances: a seeded permutation dealt round-robin, so the
    folds differ in size by at most one."""
    fold = np.empty(n, dtype=np.int64)
    fold[np.random.default_rng(seed).permutation(n)] = np.arange(n) % folds
    return fold


def hard_instances(small_init, ctx: RunContext) -> np.ndarray:
    """Hard (True) / easy per training instance: for each of `label_seeds` seeds, `label_folds` copies
    of the small model (fresh heads, each resumable as its own stage) are fine-tuned alone on all folds
    but one and predict the fold they did not fit; an instance is hard when one seed's out-of-fold
    prediction is wrong."""
    import dataclasses

    from earlyexit.training import fine_tuning
    from earlyexit.models.cascade import difficulty_labels
    from earlyexit.training.loop import train_loop

    train, cfg = ctx.splits["train"], ctx.train_config
    if ctx.settings["label_epochs"] is not None:
        cfg = dataclasses.replace(cfg, epochs=ctx.settings["label_epochs"])
    seeds, folds = ctx.settings["label_seeds"], ctx.settings["label_folds"]
    correct = []
    for k in range(seeds):
        seed = label_seed(ctx.seed, k)
        fold = fold_of(len(train), folds, seed)
        predicted = np.zeros(len(train), dtype=np.int64)
        for f in range(folds):
            fitted, held_out = np.flatnonzero(fold != f), np.flatnonzero(fold == f)
            fit_ctx = dataclasses.replace(ctx, splits={**ctx.splits, "train": train.take(fitted)})
            model = _fresh_head(small_init, seed).to(ctx.device)
            state = ctx.train_state.stage(f"labels{k}-fold{f}") if ctx.train_state is not None else None
            train_loop(model, _classifier_hooks(model, fit_ctx), cfg, seed, progress=ctx.progress,
                       desc=f"cascade labels seed {k + 1}/{seeds} fold {f + 1}/{folds}", state=state)
            predicted[held_out] = fine_tuning.predict_classifier(model, train.take(held_out), cfg.eval_batch_size,
                                                                 ctx.meta["pad_id"], ctx.device, cfg.autocast_bf16(ctx.device))
        correct.append(predicted == train.labels)
    return difficulty_labels(np.array(correct))


def _small_model(big_init, ctx: RunContext):
    """(small model, where it came from, approximated?): the hub model `small_models` names for this
    backbone when it loads, else the first `small_layers` layers of the backbone (fresh head)."""
    from earlyexit.models.backbones import BackboneSpec, load_classifier
    from earlyexit.models.cascade import truncated_copy

    # A backbone of at most `small_layers` layers (the tests' 2-layer one) gets a small model one layer shallower.
    layers = min(ctx.settings["small_layers"], big_init.config.num_hidden_layers - 1)
    hub_id = ctx.settings["small_models"].get(ctx.backbone.name)
    if hub_id:
        try:
            spec = BackboneSpec(name=f"{ctx.backbone.name}-cascade-small", source="hub", hub_id=hub_id)
            return load_classifier(spec, ctx.task.num_labels, ctx.seed + 1), hub_id, False
        except (OSError, ValueError) as error:
            log.warning("cascade small model %s not reachable (%s): the first %d layers of %s instead (approximated)",
                        hub_id, str(error).splitlines()[0] if str(error) else type(error).__name__, layers,
                        ctx.backbone.name)
    return truncated_copy(big_init, layers, ctx.seed + 1), f"first {layers} layers of {ctx.backbone.name}", True


class CascadeModel(TimedModel):
    """CascadeBERT's cascade (earlyexit.models.cascade) at one threshold, timed: the big model runs
    only on the rows the small one does not answer. The own full model is the big one."""

    def __init__(self, model, threshold: float):
        from earlyexit.cost.flops import ModelDims

        super().__init__(model, model.big_layers, ModelDims.from_hf_config(model.big.config))
        self.threshold = threshold

    def forward(self, batch):
        return self.model.cascade(batch.input_ids, batch.token_type_ids, batch.attention_mask, self.threshold,
                                  batch.lengths)

    def cost(self, split, per_row):
        from earlyexit.cost.flops import ModelDims

        return cascade_cost(split.lengths, per_row, ModelDims.from_hf_config(self.model.small.config), self.dims)

    def exit_points(self) -> list[int]:
        return [self.model.small_layers]

    def exiting_at(self, layer: int) -> "CascadeModel":
        """Every row answered by the small model (threshold 0: every confidence is above it)."""
        if layer != self.model.small_layers:
            raise ValueError(f"the cascade's rows can leave only after its small model's {self.model.small_layers} layers")
        return CascadeModel(self.model, 0.0)

    def reference(self, layer: int | None):
        """Both models on every row (the own full forward, nobody answered early), or the small model
        alone (its truncation: `layer` = the small model's layers)."""
        if layer is None:
            return lambda batch: self.model(batch.input_ids, batch.token_type_ids, batch.attention_mask)[1]
        if layer != self.model.small_layers:
            raise ValueError(f"the cascade's truncation is its small model ({self.model.small_layers} layers)")
        return lambda batch: self.model.small(input_ids=batch.input_ids, token_type_ids=batch.token_type_ids,
                                              attention_mask=batch.attention_mask).logits


class CascadeBERT(Method):
    name = "cascadebert"
    paper_name = "CascadeBERT"
    family = "dynamic"
    timed = True
    order = 230
    color = "tab:brown"
    tables = ("elue_main",)
    # The script's grid is 0.6-0.9; the curve runs from 0.5 (the small model answers nearly every
    # binary instance) to 0.99, and 1.0 (never exits: every instance pays small + big).
    sweep = {"threshold": (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 0.99, 1.0)}

    def exit_support(self, task) -> str | None:
        if task.is_regression:
            return ("cascade exit is undefined for regression (the confidence of one logit is always 1: every "
                    "instance would stop at the small model)")
        return None

    def build(self, ctx: RunContext):
        """The cascade before training (`cascade_with_source`, without where its small model came from)."""
        return self.cascade_with_source(ctx)[0]

    def cascade_with_source(self, ctx: RunContext):
        """The cascade before training: (model, the small model's source, approximated?). The big
        model is the backbone with a seeded head; the small one comes from `_small_model`."""
        from earlyexit.models.backbones import load_classifier
        from earlyexit.models.cascade import CascadeClassifier

        big = load_classifier(ctx.backbone, ctx.task.num_labels, ctx.seed)
        small, source, approximated = _small_model(big, ctx)
        return CascadeClassifier(small, big), source, approximated

    def run(self, ctx: RunContext) -> RunOutcome:
        import time

        import torch

        from earlyexit.training.fine_tuning import predict_classifier
        from earlyexit.cost.flops import ModelDims, dynamic_exit_cost
        from earlyexit.runs.metrics import compute_metrics
        from earlyexit.plumbing.files import atomic_path
        from earlyexit.training.loop import train_loop

        cfg, pad_id = ctx.train_config, ctx.meta["pad_id"]
        regression, unsupported = ctx.task.is_regression, self.exit_support(ctx.task)
        model, source, approximated = self.cascade_with_source(ctx)
        extra = {"cascade": {"small_model": source, "approximated": approximated,
                             "small_layers": model.small_layers, "big_layers": model.big_layers}}
        if approximated:   # the record's row label says so (it replaces the registry's label)
            extra["label"] = f"{self.paper_name} (approximated)"
        if unsupported is None:
            hard = hard_instances(model.small, ctx)
            extra["cascade"].update(label_seeds=ctx.settings["label_seeds"], label_folds=ctx.settings["label_folds"],
                                    label_epochs=ctx.settings["label_epochs"],
                                    hard_fraction=float(hard.mean()),
                                    dar_weight=ctx.settings["dar_weight"], dar_margin=ctx.settings["dar_margin"])
            model.to(ctx.device)
            result = train_loop(model, _joint_hooks(model, hard, ctx), cfg, ctx.seed, progress=ctx.progress,
                                desc="cascade joint", state=ctx.train_state)
        else:
            extra["exit_unsupported"] = unsupported
            model.to(ctx.device)
            result = train_loop(model.big, _classifier_hooks(model.big, ctx, regression), cfg, ctx.seed,
                                progress=ctx.progress, desc="cascade big alone", state=ctx.train_state)
        model.eval()
        if ctx.checkpoint:
            with atomic_path(ctx.checkpoint) as tmp:
                torch.save(model.state_dict(), tmp)
        started = time.perf_counter()
        predicted = {name: predict_classifier(model.big, ctx.splits[name], cfg.eval_batch_size, pad_id, ctx.device,
                                              cfg.autocast_bf16(ctx.device), regression) for name in ("dev", "test")}
        scores = {name: compute_metrics(ctx.task.metric, predicted[name], ctx.splits[name].labels)
                  for name in ("dev", "test")}
        eval_seconds = time.perf_counter() - started
        dims = ModelDims.from_hf_config(model.big.config)
        test = ctx.splits["test"]
        cost = dynamic_exit_cost(test.lengths, np.full(len(test), dims.num_layers), dims)
        extra["mean_exit_layer"] = float(dims.num_layers)
        return RunOutcome(dev=scores["dev"], test=scores["test"], best_on_test=None,
                          selected_step=result["selected"]["step"],
                          history=[{k: v for k, v in p.items() if k != "select"} for p in result["history"]],
                          train_seconds=result["train_seconds"], eval_seconds=eval_seconds,
                          method_flops=cost.method_flops, elue_depth=cost.elue_depth, tokens=cost.tokens, dims=dims,
                          extra=extra, test_predictions=predicted["test"])

    def score_sweep(self, ctx: RunContext, checkpoint: str, settings: list[dict]) -> list[SweepPoint]:
        from earlyexit.cost.flops import ModelDims
        from earlyexit.runs.metrics import compute_metrics

        reason = self.exit_support(ctx.task)
        if reason is not None:
            raise ValueError(f"method {self.name} on {ctx.task.name}: {reason}")
        model = self.load(ctx, checkpoint)
        small_dims, big_dims = (ModelDims.from_hf_config(m.config) for m in (model.small, model.big))
        cfg, points = ctx.train_config, []
        thresholds = [float(setting["threshold"]) for setting in settings]
        routed = {name: replay_cascade(model, ctx.splits[name], thresholds, cfg.eval_batch_size, ctx.meta["pad_id"],
                                       ctx.device, cfg.autocast_bf16(ctx.device)) for name in ("dev", "test")}
        for i, setting in enumerate(settings):
            scored = {}
            for name in ("dev", "test"):
                predictions, escalated = routed[name][i]
                scored[name] = (compute_metrics(ctx.task.metric, predictions, ctx.splits[name].labels), escalated)
            points.append(SweepPoint(
                setting=dict(setting), dev=scored["dev"][0], test=scored["test"][0],
                # the layers each instance paid for: small, or small + big
                dev_exit_layers=model.cost_layers(scored["dev"][1]), test_exit_layers=model.cost_layers(scored["test"][1]),
                dev_cost=cascade_cost(ctx.splits["dev"].lengths, scored["dev"][1], small_dims, big_dims),
                test_cost=cascade_cost(ctx.splits["test"].lengths, scored["test"][1], small_dims, big_dims),
                dims=big_dims,
                extra={"escalated_fraction": {name: float(scored[name][1].mean()) for name in ("dev", "test")}},
                test_predictions=routed["test"][i][0]))
        return points

    def never_exit_setting(self, task) -> dict:
        return {"threshold": 1.0}         # a confidence above 1 never holds: every row goes on to the big model

    def timed_model(self, ctx: RunContext, checkpoint: str | None, setting: dict | None):
        """The cascade at `setting` (None checkpoint: as built, untrained)."""
        model = self.build(ctx) if checkpoint is None else self.load(ctx, checkpoint)
        return CascadeModel(model.eval(), float(setting["threshold"]))


METHOD = CascadeBERT()
