"""Multi-exit pre-training (issue 20, earlyexit/training/pretraining.py): ElasticBERT's summed per-layer loss,
its gradient equilibrium, resumability, the corpus rule and the backbone it produces."""

import copy
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from earlyexit.models.backbones import (BackboneSpec, backbone_depth, elasticbert_layer_poolers, load_classifier,
                                 load_tokenizer, resolve_entry)
from earlyexit.training.pretraining import (IGNORE, MultiExitPretrainer, PretrainSettings, Special, build_corpus,
                                   load_pretraining_model, make_batch, pretrain, tokenize_documents)

TINY = {"source": "random", "num_layers": 3, "hidden_size": 32, "num_attention_heads": 4, "intermediate_size": 64}
TEXTS = [f"the {a} film was {b} and the {c} cast seemed {d} ." for a in ("long", "short", "odd", "new")
         for b in ("good", "bad", "dull") for c in ("young", "old") for d in ("tired", "keen", "lost")]


def settings(**changes) -> PretrainSettings:
    base = dict(steps=4, head_steps=2, batch_size=8, lr=1e-3, head_lr=1e-3, warmup_ratio=0.0, weight_decay=0.0,
                grad_clip=1.0, max_seq_len=32, mask_prob=0.15, sop=True, gradient_equilibrium=True, dtype="fp32",
                heldout=8, evaluations=2, eval_batch_size=16, seed=3, checkpoint_every_steps=0)
    return PretrainSettings(**{**base, **changes})


def tiny_model(gradient_equilibrium=True):
    pretrained, tokenizer, _ = load_pretraining_model(TINY, seed=0)
    model = MultiExitPretrainer(pretrained, gradient_equilibrium)
    for module in model.modules():            # deterministic forwards in train mode
        if isinstance(module, nn.Dropout):
            module.p = 0.0
    return model, tokenizer


def a_batch(tokenizer, seed=5):
    docs = tokenize_documents(TEXTS, tokenizer, 32)
    batch = make_batch(docs, list(range(10)), seed, Special.of(tokenizer), mask_prob=0.3, sop=True)
    assert (batch.mlm_labels != IGNORE).any() and (batch.sop_labels != IGNORE).all()
    return batch


def test_loss_is_the_sum_of_every_layers_mlm_and_sop_losses_computed_by_hand():
    model, tokenizer = tiny_model()
    model.eval()
    batch = a_batch(tokenizer)
    ours = model.loss(batch)
    # by hand: HF's own encoder forward, every layer's state through the shared MLM head (log-softmax
    # at the masked positions) and through that layer's pooler and the shared SOP classifier
    out = model.bert(input_ids=batch.input_ids, token_type_ids=batch.token_type_ids,
                     attention_mask=batch.attention_mask, output_hidden_states=True)
    where = batch.mlm_labels != IGNORE
    total, per_layer = 0.0, []
    for layer, state in enumerate(out.hidden_states[1:]):
        log_probs = torch.log_softmax(model.mlm(state), dim=-1)[where]
        mlm = -log_probs.gather(1, batch.mlm_labels[where][:, None]).mean()
        sop_log = torch.log_softmax(model.sop(model.poolers[layer](state)), dim=-1)
        sop = -sop_log.gather(1, batch.sop_labels[:, None]).mean()
        per_layer.append(float(mlm.detach()))
        total = total + mlm + sop
    assert len(per_layer) == model.num_layers == 3
    assert torch.allclose(ours, total, atol=1e-4), (float(ours), float(total))
    mlm, _, _ = model.exit_losses(batch)
    assert np.allclose(mlm.detach().numpy(), per_layer, atol=1e-5)
    # the shared head really is shared: one MLM head, its decoder the word embeddings
    assert model.mlm.decoder.weight.data_ptr() == model.bert.embeddings.word_embeddings.weight.data_ptr()


def test_gradient_equilibrium_divides_layer_l_gradient_by_the_exits_above_it():
    """GE: layer l's parameters get the plain summed-loss gradient / (L - l + 1) (the mean over the
    exits l..L that depend on it); the shared heads' and poolers' gradients are unchanged."""
    plain, tokenizer = tiny_model(gradient_equilibrium=False)
    balanced = copy.deepcopy(plain)
    balanced.gradient_equilibrium = True
    batch = a_batch(tokenizer)
    for model in (plain, balanced):
        model.train()
        model.zero_grad()
        model.loss(batch).backward()
    L = plain.num_layers
    layer_params = 0
    for (name, p), (_, q) in zip(plain.named_parameters(), balanced.named_parameters()):
        if p.grad is None:
            assert q.grad is None, name
            continue
        if ".encoder.layer." in name:
            layer = int(name.split(".encoder.layer.")[1].split(".")[0]) + 1     # 1-based
            assert torch.allclose(q.grad, p.grad / (L - layer + 1), rtol=1e-4, atol=1e-7), name
            layer_params += 1
        elif name.startswith(("pretrained.cls.predictions.transform", "pretrained.cls.seq_relationship", "poolers.")):
            assert torch.allclose(q.grad, p.grad, rtol=1e-4, atol=1e-7), name
    assert layer_params == L * 16                 # every tensor of every layer was checked
    # and it is not the identity: layer 1's gradient is a third of the plain one
    assert not torch.allclose(balanced.layers[0].output.dense.weight.grad, plain.layers[0].output.dense.weight.grad)


def test_masking_is_berts_and_a_batch_is_a_function_of_its_seed():
    _, tokenizer = tiny_model()
    docs = tokenize_documents(TEXTS * 20, tokenizer, 32)
    special = Special.of(tokenizer)
    batch = make_batch(docs, list(range(400)), 11, special, mask_prob=0.15, sop=True)
    again = make_batch(docs, list(range(400)), 11, special, mask_prob=0.15, sop=True)
    assert torch.equal(batch.input_ids, again.input_ids) and torch.equal(batch.mlm_labels, again.mlm_labels)
    where = batch.mlm_labels != IGNORE
    real = (batch.attention_mask == 1) & (batch.input_ids != special.cls) & (batch.input_ids != special.sep)
    share = where.sum() / (real | where).sum()
    assert 0.12 < float(share) < 0.18
    replaced = batch.input_ids[where] == special.mask
    assert 0.75 < float(replaced.float().mean()) < 0.85
    # SOP: about half the texts swapped; the segments are the two token types
    assert 0.4 < float(batch.sop_labels.float().mean()) < 0.6
    assert (batch.token_type_ids[batch.attention_mask == 1] == 1).any()


def test_corpus_drops_every_dev_and_test_text_and_duplicates():
    texts, summary = build_corpus({"SST-2 train": ["A good film .", "a  GOOD film .", "Dull .", "Seen in dev ."],
                                   "difficulty human/train": ["Seen in  TEST .", "New pair ."]},
                                  {"SST-2 dev": ["seen in dev ."], "SNLI test": ["seen in test ."]})
    assert texts == ["A good film .", "Dull .", "New pair ."]
    assert summary["sources"]["SST-2 train"] == {"texts_read": 4, "kept": 2, "excluded_dev_or_test": 1, "duplicates": 1}
    assert summary["sources"]["difficulty human/train"]["excluded_dev_or_test"] == 1


def _run(tmp_path, name, before_step=None, **changes):
    from earlyexit.training.state import StateFile

    out = tmp_path / name / "model"
    state = StateFile(str(tmp_path / name / "state.pt"), {"backbone": "tiny"})
    record = pretrain({**TINY, "name": "tiny"}, TEXTS, settings(**changes), out_dir=out, state=state, progress=False,
                      before_step=before_step)
    return record, out


def test_resume_after_a_kill_equals_the_uninterrupted_run(tmp_path):
    from safetensors.torch import load_file

    whole, whole_out = _run(tmp_path, "whole", checkpoint_every_steps=2)
    calls = []

    def killed(step):
        calls.append(step)
        if len(calls) == 6:              # head: 2 steps; exits: killed before its 4th step (state at step 2)
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path, "resumed", before_step=killed, checkpoint_every_steps=2)
    assert list((tmp_path / "resumed").glob("state.exits.pt")) and not (tmp_path / "resumed" / "model").exists()
    resumed, resumed_out = _run(tmp_path, "resumed", checkpoint_every_steps=2)
    for key in ("heldout_before", "heldout_after", "steps", "tokens_seen"):
        assert resumed[key] == whole[key], key
    a, b = load_file(str(whole_out / "model.safetensors")), load_file(str(resumed_out / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert not list((tmp_path / "resumed").glob("state*.pt"))     # removed once the weights are written


def test_the_result_is_a_backbone_every_method_can_load(tmp_path):
    record, out = _run(tmp_path, "run")
    assert record["steps"] == 2 + 4 and record["tokens_seen"] > 0 and record["dtype"] == "fp32"
    assert len(record["heldout_before"]["mlm_loss"]) == 3 == len(record["mlm_loss_change_per_layer"])
    assert record["stages"]["head"]["trained"].startswith("heads only")
    json.dumps(record)                                            # a JSON record
    backbones = {"tiny": TINY, "tiny-elastic": {"source": "pretrained-here", "pretrained_from": "tiny"}}
    entry = resolve_entry(backbones, "tiny-elastic", weights=str(out))
    assert backbone_depth(entry) == 3
    spec = BackboneSpec.from_config("tiny-elastic", entry)
    model = load_classifier(spec, num_labels=2, seed=0)
    assert model.config.num_hidden_layers == 3
    assert load_tokenizer(spec).vocab_size == load_tokenizer(BackboneSpec.from_config("tiny", TINY)).vocab_size
    poolers = elasticbert_layer_poolers(spec)
    assert len(poolers) == 3 and torch.equal(poolers[-1]["dense.weight"], model.bert.pooler.dense.weight)
    with pytest.raises(ValueError, match="pretrained_from"):
        resolve_entry({"x": {"source": "pretrained-here", "pretrained_from": "nope"}}, "x")


def test_bf16_autocast_runs_on_cpu_and_is_recorded(tmp_path):
    record, _ = _run(tmp_path, "bf16", dtype="bf16", steps=2, head_steps=0, evaluations=1)
    assert record["dtype"].startswith("bf16") and "head" not in record["stages"]
    assert all(np.isfinite(record["heldout_after"]["mlm_loss"]))
