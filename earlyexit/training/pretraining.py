"""Multi-exit continued pre-training of a BERT-family encoder with ElasticBERT's objective (issue 20).

ElasticBERT (Liu et al., NAACL 2022) pre-trains every layer to be an exit: the masked-language-model
(MLM) and sentence-order-prediction (SOP) losses are computed at the output of every layer l = 1..L
and summed,

    loss = sum_l ( MLM_l + SOP_l ),

one MLM head and one SOP classifier shared by all layers, and each layer its own pooler (dense + tanh
on [CLS]) in front of the SOP classifier, as in ElasticBERT's checkpoints (`encoder.pooler.<i>`).

Gradient equilibrium (Li et al. 2019, as ElasticBERT's encoder applies it): after layer l (0-based
i = l - 1) the state h_i goes to its exit through a gradient rescale of 1 / (L - i), and on to the
next layer through a further rescale of (L - i - 1). The factors telescope: the gradient reaching h_i
is (1 / (L - i)) * sum_{j >= i} dLoss_j / dh_i, the MEAN over the exits that depend on layer l of
their gradients, where the plain sum would give the shallow layers L times the deepest one's. So
each encoder layer l's parameter gradient is its plain-sum gradient divided by L - l + 1, and the
shared heads' gradients are unchanged (tests/test_pretraining.py checks both).

The run, on the suite's one training loop (`earlyexit.training.loop.train_loop`, resumable), has two
stages:
- `head`: the encoder frozen, the shared MLM head, the per-layer poolers and the SOP classifier fitted
  to it (a sentence-transformers checkpoint such as MiniLM ships no MLM head: the decoder is the tied
  word-embedding matrix, the transform dense + LayerNorm is fresh). Its held-back losses per layer
  are the "before": what each layer of the unchanged encoder predicts through the shared head.
- `exits`: everything trained on the summed loss with gradient equilibrium; the held-back losses of
  its selected point are the "after".

Corpus (`build_corpus`): texts the evaluations never score: the train splits of the tasks and
optionally the released difficulty files' texts, minus every text that occurs in any dev or test
split the suite reads (exact match after lower-casing and collapsing whitespace). Each text is one
"document": SOP cuts it at a seeded word-piece boundary into segments A and B and swaps them with
probability 1/2 (label 1 = swapped); texts too short to cut carry no SOP label. BERT's masking: 15% of
the non-special positions, of those 80% [MASK], 10% a random token, 10% unchanged. Masks, cuts and
swaps are drawn from a generator seeded per batch (the batch plan holds its seed), so a resumed run
draws exactly what the uninterrupted one drew.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import re
import shutil
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from earlyexit.training.loop import TrainConfig, TrainHooks, train_loop
from earlyexit.training.state import StateFile

log = logging.getLogger("earlyexit.training.pretraining")
IGNORE = -100
STAGES = ("head", "exits")
POOLERS_FILE = "layer_poolers.safetensors"     # the per-layer poolers (BERT pooler keys, prefix "<i>.")
HEADS_FILE = "pretraining_heads.safetensors"   # the shared MLM head and SOP classifier


@dataclass(frozen=True)
class PretrainSettings:
    """config `pretraining` (workflow/schemas/config.schema.yaml holds every default and its meaning)."""

    steps: int
    head_steps: int
    batch_size: int
    lr: float
    head_lr: float
    warmup_ratio: float
    weight_decay: float
    grad_clip: float
    max_seq_len: int
    mask_prob: float
    sop: bool
    gradient_equilibrium: bool
    dtype: str                    # fp32 | bf16 (autocast; the weights stay fp32)
    heldout: int
    evaluations: int
    eval_batch_size: int
    seed: int
    checkpoint_every_steps: int = 0

    @classmethod
    def from_config(cls, section: dict) -> "PretrainSettings":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in section.items() if k in known})

    def loop_config(self, stage: str) -> TrainConfig:
        """The one loop's settings of a stage: one 'epoch' of `steps` batches (the plan is drawn by
        `epoch_batches`), evaluation points on the held-back texts."""
        head = stage == "head"
        return TrainConfig(lr=self.head_lr if head else self.lr, batch_size=self.batch_size, epochs=1,
                           eval_batch_size=self.eval_batch_size, warmup_ratio=self.warmup_ratio,
                           weight_decay=self.weight_decay, grad_clip=self.grad_clip, max_seq_len=self.max_seq_len,
                           optimizer="adamw", evals_per_epoch=1 if head else self.evaluations,
                           bf16=self.dtype == "bf16", cpu_bf16=self.dtype == "bf16", track_best_on_test=False,
                           checkpoint_every_steps=self.checkpoint_every_steps)


# --- corpus ---------------------------------------------------------------------------------------

def normalized(text: str) -> str:
    """The key two texts are 'the same' under: lower-cased (the tokenizers are uncased), whitespace collapsed."""
    return re.sub(r"\s+", " ", text).strip().lower()


def split_texts(path, task_name: str) -> list[str]:
    """Every text (both sides of a pair) of a split in the suite's normalized TSV (rule prepare_task)."""
    from earlyexit.data.examples import read_examples
    from earlyexit.data.tasks import get_task

    return [t for ex in read_examples(path, get_task(task_name)) for t in (ex.text_a, ex.text_b) if t]


def elue_texts(path, task_name: str) -> list[str]:
    """Every text of a raw ELUE split file (labelled or not)."""
    from earlyexit.data.elue import read_elue_split
    from earlyexit.data.tasks import get_task

    return [t for ex in read_elue_split(path, get_task(task_name), labelled=False) for t in (ex.text_a, ex.text_b) if t]


def difficulty_texts(path) -> list[str]:
    """Both sentences of every pair of a released difficulty file (human/ or model/)."""
    from difficulty.formats import read_pairs

    multilabel = "model" in Path(path).parent.name
    pairs = read_pairs(path, multilabel=multilabel)
    return [t for a, b in zip(pairs.text_a, pairs.text_b) for t in (a, b) if t and t.strip()]


def build_corpus(sources: dict[str, list[str]], excluded: dict[str, list[str]]) -> tuple[list[str], dict]:
    """The corpus: the texts of `sources` (name -> texts, in order), de-duplicated, less every text of
    `excluded` (name -> texts of dev and test splits). Returns (texts, summary with counts per source)."""
    banned = {normalized(t) for texts in excluded.values() for t in texts}
    seen: set[str] = set()
    texts, per_source = [], {}
    for name, items in sources.items():
        kept = dropped = duplicate = 0
        for text in items:
            key = normalized(text)
            if not key:
                continue
            if key in banned:
                dropped += 1
            elif key in seen:
                duplicate += 1
            else:
                seen.add(key)
                texts.append(text)
                kept += 1
        per_source[name] = {"texts_read": len(items), "kept": kept, "excluded_dev_or_test": dropped,
                            "duplicates": duplicate}
    summary = {"texts": len(texts), "sources": per_source,
               "excluded_from": {name: len(items) for name, items in excluded.items()}}
    return texts, summary


# --- batches: SOP cuts and BERT masking -----------------------------------------------------------

@dataclass
class Documents:
    """The corpus tokenised once: word-piece ids per text (no special tokens), cut to fit a sequence."""

    ids: list[np.ndarray]
    starts_word: list[np.ndarray]   # per text: True where a word piece begins a word (a place SOP may cut)

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, index) -> "Documents":
        return Documents([self.ids[i] for i in index], [self.starts_word[i] for i in index])

    def tokens(self, index, sop: bool) -> int:
        """Tokens of the sequences built from these texts ([CLS] A [SEP] B [SEP], or [CLS] A [SEP])."""
        return int(sum(len(self.ids[i]) + (3 if sop and self.can_cut(i) else 2) for i in index))

    def can_cut(self, i: int) -> bool:
        return bool(self.starts_word[i][1:].any())


def tokenize_documents(texts: list[str], tokenizer, max_seq_len: int) -> Documents:
    room = max_seq_len - 3                      # [CLS] A [SEP] B [SEP]
    encoded = tokenizer(texts, add_special_tokens=False, truncation=True, max_length=room)["input_ids"]
    ids, starts = [], []
    for row in encoded:
        pieces = tokenizer.convert_ids_to_tokens(row)
        ids.append(np.asarray(row, dtype=np.int64))
        starts.append(np.asarray([not p.startswith("##") for p in pieces], dtype=bool))
    return Documents(ids, starts)


@dataclass
class Special:
    cls: int
    sep: int
    pad: int
    mask: int
    vocab_size: int

    @classmethod
    def of(cls, tokenizer) -> "Special":
        return cls(tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id, tokenizer.mask_token_id,
                   len(tokenizer))


@dataclass
class Batch:
    input_ids: torch.Tensor       # [B, T]
    token_type_ids: torch.Tensor  # [B, T]
    attention_mask: torch.Tensor  # [B, T] 1 real, 0 padding
    mlm_labels: torch.Tensor      # [B, T] original id where masked, IGNORE elsewhere
    sop_labels: torch.Tensor      # [B] 0 in order, 1 swapped, IGNORE where the text was too short to cut

    def to(self, device) -> "Batch":
        return Batch(*(t.to(device) for t in (self.input_ids, self.token_type_ids, self.attention_mask,
                                               self.mlm_labels, self.sop_labels)))


def make_batch(docs: Documents, index, seed: int, special: Special, mask_prob: float, sop: bool) -> Batch:
    """The sequences of texts `index`: SOP segments (a seeded cut and swap) and BERT masking, all
    drawn from a generator seeded with `seed` (the same seed, the same batch)."""
    rng = np.random.default_rng(seed)
    rows, types, sop_labels = [], [], []
    for i in index:
        ids = docs.ids[i]
        if sop and docs.can_cut(i):
            cuts = np.flatnonzero(docs.starts_word[i][1:]) + 1
            cut = int(cuts[rng.integers(len(cuts))])
            a, b = ids[:cut], ids[cut:]
            swapped = int(rng.random() < 0.5)
            if swapped:
                a, b = b, a
            rows.append(np.concatenate([[special.cls], a, [special.sep], b, [special.sep]]))
            types.append(np.concatenate([np.zeros(len(a) + 2, np.int64), np.ones(len(b) + 1, np.int64)]))
            sop_labels.append(swapped)
        else:
            rows.append(np.concatenate([[special.cls], ids, [special.sep]]))
            types.append(np.zeros(len(ids) + 2, np.int64))
            sop_labels.append(IGNORE)
    width = max(len(r) for r in rows)
    input_ids = np.full((len(rows), width), special.pad, np.int64)
    token_types = np.zeros((len(rows), width), np.int64)
    attention = np.zeros((len(rows), width), np.int64)
    labels = np.full((len(rows), width), IGNORE, np.int64)
    for r, (row, kind) in enumerate(zip(rows, types)):
        n = len(row)
        input_ids[r, :n], token_types[r, :n], attention[r, :n] = row, kind, 1
        candidates = np.flatnonzero((row != special.cls) & (row != special.sep))
        if not len(candidates):
            continue
        chosen = candidates[rng.random(len(candidates)) < mask_prob]
        if not len(chosen):                      # at least one prediction per sequence
            chosen = candidates[[rng.integers(len(candidates))]]
        labels[r, chosen] = row[chosen]
        action = rng.random(len(chosen))
        masked = chosen[action < 0.8]
        randomized = chosen[(action >= 0.8) & (action < 0.9)]
        input_ids[r, masked] = special.mask
        input_ids[r, randomized] = rng.integers(0, special.vocab_size, size=len(randomized))
    return Batch(torch.from_numpy(input_ids), torch.from_numpy(token_types), torch.from_numpy(attention),
                 torch.from_numpy(labels), torch.tensor(sop_labels, dtype=torch.int64))


def batch_plan(n_docs: int, steps: int, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """`steps` batches of text positions, passing over the corpus in seeded shuffled orders (a text
    recurs only after every other text has been seen in the current pass). Each batch is one int64
    array: the positions, then that batch's seed for masks, cuts and swaps."""
    order: list[int] = []
    while len(order) < steps * batch_size:
        order += rng.permutation(n_docs).tolist()
    seeds = rng.integers(0, 2**31 - 1, size=steps)
    return [np.asarray(order[s * batch_size:(s + 1) * batch_size] + [int(seeds[s])], dtype=np.int64) for s in range(steps)]


# --- the model ------------------------------------------------------------------------------------

class _ScaleGradient(torch.autograd.Function):
    """Identity forward; backward multiplies the gradient by `scale`."""

    @staticmethod
    def forward(ctx, x, scale: float):
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.scale, None


def scale_gradient(x: torch.Tensor, scale: float) -> torch.Tensor:
    return _ScaleGradient.apply(x, scale)


def equilibrium(h: torch.Tensor, layer: int, num_layers: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradient equilibrium at the output of 0-based `layer` of `num_layers`: (the state its exit
    reads, the state the next layer reads). The exit's gradient reaches h scaled by 1 / (L - i), the
    next layer's by (L - i - 1) / (L - i)."""
    shared = scale_gradient(h, 1.0 / (num_layers - layer))
    return shared, scale_gradient(shared, float(num_layers - layer - 1))


def _additive_mask(attention_mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    from earlyexit.models.multi_exit import additive_mask

    return additive_mask(attention_mask, dtype)


class MultiExitPretrainer(nn.Module):
    """A HF BertForPreTraining (`pretrained`: its encoder, its MLM head `cls.predictions`, whose decoder
    is tied to the word embeddings, and `cls.seq_relationship` as the SOP classifier) driven one layer
    at a time, with an exit after every layer: the shared MLM head and, through that layer's own
    pooler (a copy of the checkpoint's), the shared SOP classifier."""

    def __init__(self, pretrained: nn.Module, gradient_equilibrium: bool = True):
        super().__init__()
        self.pretrained = pretrained
        self.bert = pretrained.bert
        self.layers = self.bert.encoder.layer
        self.num_layers = len(self.layers)
        self.mlm = pretrained.cls.predictions
        self.sop = pretrained.cls.seq_relationship
        self.poolers = nn.ModuleList(copy.deepcopy(self.bert.pooler) for _ in range(self.num_layers))
        self.gradient_equilibrium = gradient_equilibrium

    def encoder_parameters(self):
        """The encoder's own parameters (embeddings and layers; the word embeddings are also the MLM
        decoder's weight): frozen in the head stage."""
        return [p for name, p in self.bert.named_parameters() if not name.startswith("pooler.")]

    def layer_states(self, batch: Batch) -> list[torch.Tensor]:
        """The state each exit reads after layers 1..L ([B, T, H] each), with gradient equilibrium in training."""
        h = self.bert.embeddings(input_ids=batch.input_ids, token_type_ids=batch.token_type_ids)
        mask = _additive_mask(batch.attention_mask, h.dtype)
        states = []
        for i, layer in enumerate(self.layers):
            h = layer(h, mask)
            h = h[0] if isinstance(h, tuple) else h
            if self.gradient_equilibrium and self.training:
                exit_state, h = equilibrium(h, i, self.num_layers)
            else:
                exit_state = h
            states.append(exit_state)
        return states

    def exit_losses(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor | None, dict]:
        """Per layer: the MLM loss (mean over the masked tokens) and the SOP loss (mean over the
        sequences with a SOP label; None when the batch has none), as [L] tensors, and the counts
        of correct predictions ({"mlm_correct", "sop_correct"}: [L] each)."""
        states = self.layer_states(batch)
        where = batch.mlm_labels != IGNORE
        targets = batch.mlm_labels[where]
        sop_rows = batch.sop_labels != IGNORE
        mlm, sop, mlm_correct, sop_correct = [], [], [], []
        for state, pooler in zip(states, self.poolers):
            logits = self.mlm(state[where]).float()                    # [M, V]: masked positions only
            mlm.append(F.cross_entropy(logits, targets))
            mlm_correct.append((logits.argmax(-1) == targets).sum())
            if sop_rows.any():
                sop_logits = self.sop(pooler(state[sop_rows])).float()  # pooler reads [CLS]
                sop.append(F.cross_entropy(sop_logits, batch.sop_labels[sop_rows]))
                sop_correct.append((sop_logits.argmax(-1) == batch.sop_labels[sop_rows]).sum())
        counts = {"mlm_correct": torch.stack(mlm_correct),
                  "sop_correct": torch.stack(sop_correct) if sop else None}
        return torch.stack(mlm), (torch.stack(sop) if sop else None), counts

    def loss(self, batch: Batch) -> torch.Tensor:
        """ElasticBERT's objective: the sum over layers of MLM (and SOP) losses."""
        mlm, sop, _ = self.exit_losses(batch)
        return mlm.sum() + (sop.sum() if sop is not None else 0.0)

    def export(self) -> tuple[nn.Module, list[dict]]:
        """(a BertModel whose pooler is the last layer's, the per-layer poolers' state dicts)."""
        bert = copy.deepcopy(self.bert)
        bert.pooler = copy.deepcopy(self.poolers[-1])
        return bert, [{k: v.detach().clone() for k, v in p.state_dict().items()} for p in self.poolers]


def load_pretraining_model(base: dict, seed: int) -> tuple[nn.Module, object, dict]:
    """(BertForPreTraining of the base backbone entry, its tokenizer, what was loaded and what is
    fresh). A checkpoint's missing MLM head is initialised from the tied word embeddings (decoder),
    a fresh seeded transform and a zero bias; a missing SOP classifier (NSP slot) fresh."""
    from transformers import BertConfig, BertForPreTraining

    from earlyexit.models.backbones import RANDOM_DEFAULT_LAYERS, BackboneSpec, load_tokenizer, minilm_path, random_init_std

    spec = BackboneSpec.from_config(base.get("name", "base"), base)
    tokenizer = load_tokenizer(spec)
    torch.manual_seed(seed)
    if spec.source == "random":
        config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=spec.hidden_size,
                            num_hidden_layers=spec.num_layers or RANDOM_DEFAULT_LAYERS,
                            num_attention_heads=spec.num_attention_heads, intermediate_size=spec.intermediate_size,
                            max_position_embeddings=512, initializer_range=random_init_std(spec.hidden_size))
        return BertForPreTraining(config), tokenizer, {"checkpoint": "random init", "fresh": ["everything"]}
    if spec.source == "minilm":
        path, revision = str(minilm_path()), None
    elif spec.source == "hub":
        path, revision = spec.hub_id, spec.revision
    else:
        raise ValueError(f"pretraining: base backbone source {spec.source!r} cannot be continued "
                         "(hub, minilm or random)")
    kwargs = {"revision": revision, "output_loading_info": True}
    if spec.num_layers:
        kwargs["num_hidden_layers"] = spec.num_layers
    model, info = BertForPreTraining.from_pretrained(path, **kwargs)
    missing = sorted(info["missing_keys"])
    fresh = sorted({"MLM head transform (dense + LayerNorm) and bias" if k.startswith("cls.predictions") else
                    "SOP classifier (the NSP slot)" if k.startswith("cls.seq_relationship") else k for k in missing})
    if any(k.startswith("cls.predictions") for k in missing):
        with torch.no_grad():
            model.cls.predictions.bias.zero_()
    tied = model.cls.predictions.decoder.weight.data_ptr() == model.bert.embeddings.word_embeddings.weight.data_ptr()
    if not tied:
        raise RuntimeError(f"{path}: the MLM decoder is not tied to the word embeddings")
    return model, tokenizer, {"checkpoint": path, "fresh": fresh, "decoder": "tied to the word embeddings"}


# --- the run --------------------------------------------------------------------------------------

def autocast(dtype: str):
    """bf16 autocast on CPU when asked (weights stay fp32); fp32 otherwise."""
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == "bf16")


@torch.no_grad()
def heldout_losses(model: MultiExitPretrainer, docs: Documents, special: Special, settings: PretrainSettings) -> dict:
    """Per layer on the held-back texts (fixed masks, cuts and swaps: the same at every evaluation):
    MLM loss and accuracy over every masked token, SOP loss and accuracy over every cut text."""
    was_training = model.training
    model.eval()
    L = model.num_layers
    mlm_sum, mlm_hits, sop_sum, sop_hits = torch.zeros(L), torch.zeros(L), torch.zeros(L), torch.zeros(L)
    masked = cut = 0
    for start in range(0, len(docs), settings.eval_batch_size):
        index = list(range(start, min(start + settings.eval_batch_size, len(docs))))
        batch = make_batch(docs, index, settings.seed + 1_000_003 + start, special, settings.mask_prob, settings.sop)
        with autocast(settings.dtype):
            mlm, sop, counts = model.exit_losses(batch)
        n_mask, n_cut = int((batch.mlm_labels != IGNORE).sum()), int((batch.sop_labels != IGNORE).sum())
        mlm_sum += mlm.float() * n_mask
        mlm_hits += counts["mlm_correct"].float()
        masked += n_mask
        if sop is not None:
            sop_sum += sop.float() * n_cut
            sop_hits += counts["sop_correct"].float()
            cut += n_cut
    model.train(was_training)
    out = {"mlm_loss": (mlm_sum / max(masked, 1)).tolist(), "mlm_accuracy": (100 * mlm_hits / max(masked, 1)).tolist(),
           "masked_tokens": masked}
    if settings.sop and cut:
        out.update(sop_loss=(sop_sum / cut).tolist(), sop_accuracy=(100 * sop_hits / cut).tolist(), sop_texts=cut)
    return out


def _stage(model: MultiExitPretrainer, stage: str, train: Documents, heldout: Documents, special: Special,
           settings: PretrainSettings, state: StateFile | None, progress: bool, before_step=None) -> dict:
    steps = settings.head_steps if stage == "head" else settings.steps
    frozen = stage == "head"
    for p in model.encoder_parameters():
        p.requires_grad_(not frozen)

    def loss(plan):
        batch = make_batch(train, plan[:-1], int(plan[-1]), special, settings.mask_prob, settings.sop)
        with autocast(settings.dtype):
            return model.loss(batch)

    def evaluate():
        point = heldout_losses(model, heldout, special, settings)
        return {**point, "select": -float(np.sum(point["mlm_loss"]))}

    plan_rng_seed = settings.seed + STAGES.index(stage)
    hooks = TrainHooks(epoch_batches=lambda rng: batch_plan(len(train), steps, settings.batch_size,
                                                            np.random.default_rng(plan_rng_seed)),
                       loss=loss, evaluate=evaluate, before_step=before_step)
    cpu_started = time.process_time()
    result = train_loop(model, hooks, settings.loop_config(stage), settings.seed, progress=progress,
                        desc=f"pretrain:{stage}", state=state.stage(stage) if state else None)
    plans = batch_plan(len(train), steps, settings.batch_size, np.random.default_rng(plan_rng_seed))
    return {"steps": result["steps"], "texts_seen": steps * settings.batch_size,
            "tokens_seen": sum(train.tokens(p[:-1], settings.sop) for p in plans),
            "lr": settings.head_lr if frozen else settings.lr, "trained": "heads only (encoder frozen)" if frozen else
            "encoder and heads", "selected": {k: v for k, v in result["selected"].items() if k != "select"},
            "history": [{k: v for k, v in p.items() if k != "select"} for p in result["history"]],
            "wall_seconds": result["train_seconds"], "cpu_seconds_this_process": time.process_time() - cpu_started}


def pretrain(base: dict, texts: list[str], settings: PretrainSettings, *, out_dir: str | os.PathLike,
             state: StateFile | None = None, progress: bool = True, before_step=None) -> dict:
    """Continue pre-training the `base` backbone entry (resolved config entry) on `texts` with the
    multi-exit objective; write the result as a HF folder `out_dir` (config, weights, tokenizer, the
    per-layer poolers and the shared heads; written beside, then renamed) and return the record."""
    started, cpu_started = time.perf_counter(), time.process_time()
    torch.manual_seed(settings.seed)
    pretrained, tokenizer, loaded = load_pretraining_model(base, settings.seed)
    model = MultiExitPretrainer(pretrained, settings.gradient_equilibrium)
    special = Special.of(tokenizer)
    docs = tokenize_documents(texts, tokenizer, settings.max_seq_len)
    order = np.random.default_rng(settings.seed).permutation(len(docs))
    held = min(settings.heldout, max(len(docs) // 10, 1))
    heldout, train = docs.subset(np.sort(order[:held])), docs.subset(np.sort(order[held:]))
    if len(train) < settings.batch_size:
        raise ValueError(f"pretraining: {len(train)} training texts, fewer than a batch of {settings.batch_size}")
    initial = heldout_losses(model, heldout, special, settings)
    stages = {}
    for stage in STAGES:
        if stage == "head" and settings.head_steps == 0:
            continue
        stages[stage] = _stage(model, stage, train, heldout, special, settings, state, progress, before_step)
        log.info("stage %s: %d steps, held-back MLM loss per layer %s", stage, stages[stage]["steps"],
                 ", ".join(f"{x:.3f}" for x in stages[stage]["selected"]["mlm_loss"]))
    before = stages["head"]["selected"] if "head" in stages else initial
    after = stages["exits"]["selected"]
    _write_model(model, tokenizer, out_dir)
    if state:
        state.remove()
    L = model.num_layers
    record = {
        "base": {k: v for k, v in base.items() if k != "name"}, "base_name": base.get("name"),
        "loaded": loaded, "num_layers": L,
        "objective": "sum over layers of MLM" + (" + SOP" if settings.sop else "") + " losses, shared MLM head"
                     + (" and SOP classifier, one pooler per layer" if settings.sop else ""),
        "gradient_equilibrium": settings.gradient_equilibrium,
        "settings": asdict(settings),
        "dtype": "bf16 autocast, fp32 weights" if settings.dtype == "bf16" else "fp32",
        "threads": torch.get_num_threads(), "torch": torch.__version__,
        "corpus_texts": len(docs), "corpus_word_pieces": int(sum(len(i) for i in docs.ids)),
        "train_texts": len(train), "heldout_texts": len(heldout),
        "steps": sum(s["steps"] for s in stages.values()),
        "tokens_seen": sum(s["tokens_seen"] for s in stages.values()),
        "stages": stages,
        "heldout_initial": initial,                 # the checkpoint as loaded (a fresh head where it had none)
        "heldout_before": before, "heldout_after": after,
        "mlm_loss_change_per_layer": [a - b for a, b in zip(after["mlm_loss"], before["mlm_loss"])],
        "wall_seconds": time.perf_counter() - started,
        "cpu_seconds": time.process_time() - cpu_started,
    }
    return record


def _write_model(model: MultiExitPretrainer, tokenizer, out_dir) -> None:
    """The encoder as a HF folder (its pooler the last layer's), its tokenizer, the per-layer poolers
    and the shared heads: written to `<out_dir>.tmp`, then renamed (a kill leaves no half folder)."""
    from safetensors.torch import save_file

    out = Path(out_dir)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    bert, poolers = model.export()
    bert.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    save_file({f"{i}.{k}": v.contiguous() for i, p in enumerate(poolers) for k, v in p.items()}, str(tmp / POOLERS_FILE))
    heads = {f"mlm.{k}": v.detach().clone().contiguous() for k, v in model.mlm.state_dict().items() if not k.startswith("decoder.weight")}
    heads.update({f"sop.{k}": v.detach().clone().contiguous() for k, v in model.sop.state_dict().items()})
    save_file(heads, str(tmp / HEADS_FILE))
    (tmp / "multi_exit_pretraining.json").write_text(json.dumps({"layers": model.num_layers, "poolers": POOLERS_FILE,
                                                                 "heads": HEADS_FILE}) + "\n")
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)


def read_layer_poolers(folder: str | os.PathLike, num_layers: int) -> list[dict]:
    """The per-layer poolers of layers 1..num_layers of a folder written by `pretrain` (BERT pooler
    state dicts: dense.weight, dense.bias)."""
    from safetensors.torch import load_file

    state = load_file(str(Path(folder) / POOLERS_FILE))
    poolers = [{} for _ in range(num_layers)]
    for key, value in state.items():
        layer, rest = key.split(".", 1)
        if int(layer) < num_layers:
            poolers[int(layer)][rest] = value
    missing = [i + 1 for i, p in enumerate(poolers) if not p]
    if missing:
        raise RuntimeError(f"{folder}: no pooler for layer(s) {missing}")
    return poolers
