"""CascadeBERT (Li et al., Findings of EMNLP 2021; baselines-spec 2.4): a small complete model
answers the instances it is confident on, the big one (the whole backbone) the rest; a cascaded
instance pays for both (2 + L layers).

- Small model: the spec's offline approximation, the first `small_layers` (2) layers of the
  backbone fine-tuned as a complete model, unless `small_models` names a hub model for this backbone
  (the paper's `google/bert_uncased_L-2_H-768_A-12` for BERT-base) and it can be loaded; the run
  record says which (`cascade.approximated`).
- Difficulty labels: `label_seeds` small models are fine-tuned alone (seeds derived from the run's)
  and each training instance is easy when every one of them classifies it correctly, else hard.
- Joint training on the one loop: CE(small) + CE(big) + `dar_weight` * DAR(`dar_margin`).
  Checkpoint selection on dev: the mean of the two models' dev scores (both answer at every
  threshold).
- Inference: the small model's max probability > threshold (strict) answers; otherwise the big
  model runs on those rows only (earlyexit/models/cascade.py).
- Regression: one logit's softmax is always 1, so every instance would stop at the small model;
  the run records that it cannot run (the tables show "–"), as the spec says.
"""

from __future__ import annotations

import copy
import logging

import numpy as np

from earlyexit.methods.base import Method, RunContext, RunOutcome, SweepPoint

log = logging.getLogger("earlyexit.methods.cascadebert")


def cascade_cost(tokens: np.ndarray, escalated: np.ndarray, small_dims, big_dims):
    """Per instance (earlyexit.flops.TokenExitCost): real tokens, exact FLOPs (the small model's,
    plus the big model's when it answered) and the ELUE-protocol depth, counted in layers of the
    big model's width: small or small + big layers (the counter is linear in depth, spec 2.4; the
    small model's own embedding LayerNorm, paid twice, is left out as the spec allows)."""
    from earlyexit.flops import TokenExitCost, full_flops

    tokens, escalated = np.asarray(tokens, dtype=np.int64), np.asarray(escalated, dtype=bool)
    exact = np.array([full_flops(n, small_dims) + (full_flops(n, big_dims) if up else 0.0)
                      for n, up in zip(tokens, escalated)], dtype=float)
    depth = np.where(escalated, small_dims.num_layers + big_dims.num_layers, small_dims.num_layers).astype(float)
    return TokenExitCost(tokens=tokens, method_flops=exact, elue_depth=depth)


# Settings and their defaults (the spec's); the config's `method_settings.cascadebert` overrides them.
DEFAULTS = {"small_layers": 2, "label_seeds": 5, "dar_weight": 0.5, "dar_margin": 0.5, "small_models": {}}


def label_seed(seed: int, k: int) -> int:
    """The seed of the k-th difficulty-labelling small model of a run with `seed`."""
    return 1000 * seed + 1 + k


def predict_plain(model, split, batch_size: int, pad_id: int, device, bf16: bool, regression: bool = False) -> np.ndarray:
    """Predictions (classes, or scores for regression) of a plain HF classifier over a split, in
    the split's order."""
    import torch

    from earlyexit.batching import evaluation_batches
    from earlyexit.fine_tuning import autocast
    from earlyexit.models.cascade import pad_batch

    model.eval()
    out = np.zeros(len(split), dtype=np.float64 if regression else np.int64)
    with torch.no_grad():
        for indices in evaluation_batches(split, batch_size):
            batch = pad_batch(split, indices, pad_id).to(device)
            with autocast(device, bf16):
                logits = model(input_ids=batch.input_ids, token_type_ids=batch.token_type_ids,
                               attention_mask=batch.attention_mask).logits.float()
            out[indices] = (logits[:, 0] if regression else logits.argmax(-1)).cpu().numpy()
    return out


def predict_cascade(model, split, threshold: float, batch_size: int, pad_id: int, device):
    """Cascade predictions and, per instance, whether the big model answered (split order)."""
    from earlyexit.batching import evaluation_batches
    from earlyexit.models.cascade import pad_batch

    model.eval()
    predictions = np.zeros(len(split), dtype=np.int64)
    escalated = np.zeros(len(split), dtype=bool)
    for indices in evaluation_batches(split, batch_size):
        logits, up = model.cascade(pad_batch(split, indices, pad_id).to(device), threshold)
        predictions[indices] = logits.argmax(-1).cpu().numpy()
        escalated[indices] = up
    return predictions, escalated


def _stage_state(state, stage: str):
    """The resumable state of one training stage (none when the run has no state file)."""
    return None if state is None else state.stage(stage)


def _plain_hooks(model, train, dev, metric, cfg, pad_id, device, regression: bool = False):
    """Hooks of the one loop for a single HF classifier (a difficulty-labelling small model; the big
    model alone where the cascade cannot run the task)."""
    from earlyexit.batching import training_batches
    from earlyexit.fine_tuning import autocast, classification_loss
    from earlyexit.metrics import compute_metrics
    from earlyexit.models.cascade import pad_batch
    from earlyexit.training import TrainHooks

    def loss(indices):
        batch = pad_batch(train, indices, pad_id).to(device)
        with autocast(device, cfg.bf16):
            logits = model(input_ids=batch.input_ids, token_type_ids=batch.token_type_ids,
                           attention_mask=batch.attention_mask).logits
        return classification_loss(logits, batch.labels, regression)

    def evaluate():
        predicted = predict_plain(model, dev, cfg.eval_batch_size, pad_id, device, cfg.bf16, regression)
        dev_metrics = compute_metrics(metric, predicted, dev.labels)
        return {"dev": dev_metrics, "select": dev_metrics["score"]}

    return TrainHooks(epoch_batches=lambda rng: training_batches(train, cfg.batch_size, rng), loss=loss,
                      evaluate=evaluate)


def hard_instances(small_init, ctx: RunContext, label_seeds: int) -> np.ndarray:
    """Easy/hard per training instance: fine-tune `label_seeds` copies of the small model alone
    (fresh heads, derived seeds) and mark hard every instance one of them gets wrong."""
    from earlyexit.training import train_loop

    train, dev, pad_id, cfg = ctx.splits["train"], ctx.splits["dev"], ctx.meta["pad_id"], ctx.train_config
    correct = []
    for k in range(label_seeds):
        seed = label_seed(ctx.seed, k)
        model = _fresh_head(small_init, seed).to(ctx.device)
        train_loop(model, _plain_hooks(model, train, dev, ctx.task.metric, cfg, pad_id, ctx.device), cfg, seed,
                   progress=ctx.progress, desc=f"cascade labels {k + 1}/{label_seeds}",
                   state=_stage_state(ctx.train_state, f"labels{k}"))
        predicted = predict_plain(model, train, cfg.eval_batch_size, pad_id, ctx.device, cfg.bf16)
        correct.append(predicted == train.labels)
    from earlyexit.models.cascade import difficulty_labels

    return difficulty_labels(np.array(correct))


def _fresh_head(model, seed: int):
    """A copy of `model` whose classification head is initialised anew from `seed`."""
    import torch

    fresh = copy.deepcopy(model)
    torch.manual_seed(seed)
    fresh.classifier.apply(fresh._init_weights)
    return fresh


def _small_model(big_init, ctx: RunContext, settings: dict):
    """(small model, where it came from, approximated?): the hub model named for this backbone in
    `small_models` when it loads, else the first `small_layers` layers of the backbone."""
    from earlyexit.backbones import BackboneSpec, load_classifier
    from earlyexit.models.cascade import truncated_copy

    hub_id = settings["small_models"].get(ctx.backbone.name)
    if hub_id:
        try:
            spec = BackboneSpec(name=f"{ctx.backbone.name}-cascade-small", source="hub", hub_id=hub_id)
            return load_classifier(spec, ctx.task.num_labels, ctx.seed + 1), hub_id, False
        except (OSError, ValueError) as error:
            log.warning("cascade small model %s not reachable (%s): using the first %d layers of %s "
                        "(approximated)", hub_id, str(error).splitlines()[0], settings["small_layers"], ctx.backbone.name)
    small = truncated_copy(big_init, settings["small_layers"], ctx.seed + 1)
    return small, f"first {settings['small_layers']} layers of {ctx.backbone.name}", True


def _joint_hooks(model, hard: np.ndarray, ctx: RunContext, settings: dict):
    """Hooks of the one loop for the joint training: CE(small) + CE(big) + weight * DAR."""
    import torch
    import torch.nn.functional as F

    from earlyexit.batching import training_batches
    from earlyexit.fine_tuning import autocast
    from earlyexit.metrics import compute_metrics
    from earlyexit.models.cascade import confidence, dar_loss, pad_batch
    from earlyexit.training import TrainHooks

    train, dev, pad_id, cfg, device = ctx.splits["train"], ctx.splits["dev"], ctx.meta["pad_id"], ctx.train_config, ctx.device
    hard_t = torch.from_numpy(hard)

    def loss(indices):
        batch = pad_batch(train, indices, pad_id).to(device)
        with autocast(device, cfg.bf16):
            small, big = model(batch)
        small, big = small.float(), big.float()
        return (F.cross_entropy(small, batch.labels) + F.cross_entropy(big, batch.labels)
                + settings["dar_weight"] * dar_loss(confidence(small), hard_t[indices], settings["dar_margin"]))

    def evaluate():
        scores = {name: compute_metrics(ctx.task.metric, predict_plain(part, dev, cfg.eval_batch_size, pad_id, device,
                                                                      cfg.bf16), dev.labels)
                  for name, part in (("small", model.small), ("big", model.big))}
        select = (scores["small"]["score"] + scores["big"]["score"]) / 2
        return {"dev": {"score": select}, "dev_small": scores["small"], "dev_big": scores["big"], "select": select}

    return TrainHooks(epoch_batches=lambda rng: training_batches(train, cfg.batch_size, rng), loss=loss,
                      evaluate=evaluate)


class CascadeBERT(Method):
    name = "cascadebert"
    paper_name = "CascadeBERT"
    family = "dynamic"
    order = 40
    color = "tab:brown"
    # The script's grid is 0.6-0.9; the curve runs from 0.5 (the small model answers almost every
    # binary instance) to 0.99, and 1.0 (never exits: every instance pays small + big).
    sweep = {"threshold": (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 0.99, 1.0)}
    tables = ("elue_main",)

    def exit_support(self, task) -> str | None:
        if task.is_regression:
            return ("the small model's confidence (max softmax probability) of one regression logit is always 1, "
                    "so every instance would stop at the small model (baselines-spec 2.4)")
        return None

    def settings(self, ctx: RunContext) -> dict:
        return {**DEFAULTS, **(ctx.settings or {})}

    def build(self, ctx: RunContext):
        """The cascade before training: (model, small model's source, approximated?). The big model
        is the backbone (seeded head); the small one see `_small_model`."""
        from earlyexit.backbones import load_classifier
        from earlyexit.models.cascade import CascadeClassifier

        big = load_classifier(ctx.backbone, ctx.task.num_labels, ctx.seed)
        small, source, approximated = _small_model(big, ctx, self.settings(ctx))
        return CascadeClassifier(small, big), source, approximated

    def run(self, ctx: RunContext) -> RunOutcome:
        """Label, train jointly, save; the record holds the big model alone on every instance (no
        cascade: L layers, the own full model's cost), like the other dynamic methods' no-exit
        record. The cascade is scored at every threshold by `score_sweep`. Where the cascade cannot
        run the task (regression), only the big model is fine-tuned and the record says why."""
        import time

        import torch

        from earlyexit.flops import ModelDims, token_exit_cost
        from earlyexit.metrics import compute_metrics
        from earlyexit.plumbing.files import atomic_path
        from earlyexit.training import train_loop

        settings, cfg, pad_id = self.settings(ctx), ctx.train_config, ctx.meta["pad_id"]
        regression, unsupported = ctx.task.is_regression, self.exit_support(ctx.task)
        model, source, approximated = self.build(ctx)
        extra = {"cascade": {"small_model": source, "approximated": approximated,
                             "small_layers": model.small_layers, "big_layers": model.big_layers}}
        if unsupported is None:
            hard = hard_instances(model.small, ctx, settings["label_seeds"])
            extra["cascade"].update(label_seeds=settings["label_seeds"], hard_fraction=float(hard.mean()),
                                    dar_weight=settings["dar_weight"], dar_margin=settings["dar_margin"])
            model.to(ctx.device)
            result = train_loop(model, _joint_hooks(model, hard, ctx, settings), cfg, ctx.seed, progress=ctx.progress,
                                desc="cascade joint", state=ctx.train_state)
        else:
            extra["exit_unsupported"] = unsupported
            model.to(ctx.device)
            result = train_loop(model.big, _plain_hooks(model.big, ctx.splits["train"], ctx.splits["dev"], ctx.task.metric,
                                                        cfg, pad_id, ctx.device, regression),
                                cfg, ctx.seed, progress=ctx.progress, desc="cascade big alone", state=ctx.train_state)
        if ctx.checkpoint:
            with atomic_path(ctx.checkpoint) as tmp:
                torch.save(model.state_dict(), tmp)
        started = time.perf_counter()
        scores = {name: compute_metrics(ctx.task.metric, predict_plain(model.big, ctx.splits[name], cfg.eval_batch_size,
                                                                       pad_id, ctx.device, cfg.bf16, regression),
                                        ctx.splits[name].labels)
                  for name in ("dev", "test")}
        eval_seconds = time.perf_counter() - started
        dims = ModelDims.from_hf_config(model.big.config)
        test = ctx.splits["test"]
        cost = token_exit_cost((np.full(n, dims.num_layers) for n in test.lengths), dims)
        extra["mean_exit_layer"] = float(dims.num_layers)
        return RunOutcome(dev=scores["dev"], test=scores["test"], best_on_test=None,
                          selected_step=result["selected"]["step"],
                          history=[{k: v for k, v in p.items() if k != "select"} for p in result["history"]],
                          train_seconds=result["train_seconds"], eval_seconds=eval_seconds,
                          method_flops=cost.method_flops, elue_depth=cost.elue_depth, tokens=cost.tokens, dims=dims,
                          extra=extra)

    def load(self, ctx: RunContext, checkpoint: str):
        """The trained cascade saved by `run`, on ctx.device, in eval mode."""
        import torch

        model, _, _ = self.build(ctx)
        model.load_state_dict(torch.load(checkpoint, map_location="cpu", weights_only=True))
        return model.to(ctx.device).eval()

    def score_sweep(self, ctx: RunContext, checkpoint: str, settings: list[dict]) -> list[SweepPoint]:
        from earlyexit.flops import ModelDims
        from earlyexit.metrics import compute_metrics

        reason = self.exit_support(ctx.task)
        if reason is not None:
            raise ValueError(f"method {self.name} on {ctx.task.name}: {reason}")
        model = self.load(ctx, checkpoint)
        small_dims, big_dims = (ModelDims.from_hf_config(m.config) for m in (model.small, model.big))
        points = []
        for setting in settings:
            scored = {}
            for name in ("dev", "test"):
                split = ctx.splits[name]
                predictions, escalated = predict_cascade(model, split, float(setting["threshold"]),
                                                         ctx.train_config.eval_batch_size, ctx.meta["pad_id"], ctx.device)
                scored[name] = (compute_metrics(ctx.task.metric, predictions, split.labels),
                                model.cost_layers(escalated), cascade_cost(split.lengths, escalated, small_dims, big_dims))
            points.append(SweepPoint(
                setting=dict(setting), dev=scored["dev"][0], test=scored["test"][0],
                dev_exit_layers=scored["dev"][1], test_exit_layers=scored["test"][1],
                dev_cost=scored["dev"][2], test_cost=scored["test"][2], dims=big_dims,
                extra={"escalated_fraction": {name: float(np.mean(scored[name][1] > model.small_layers))
                                              for name in ("dev", "test")}}))
        return points


METHOD = CascadeBERT()
