"""HashEE on a BART encoder: equivalence with the plain HF model, frozen exit states in the decoder's
memory, FLOPs against torch's counter, CPT renaming, the synthetic task, data converters, ROUGE."""

import dataclasses
import json

import numpy as np
import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from earlyexit.cost.flops import Seq2SeqDims, decoder_flops, encoder_flops, seq2seq_speedup_record
from earlyexit.models.hashee_seq2seq import HashEEForConditionalGeneration
from earlyexit.models.schedule import build_exit_schedule


def tiny_bart(encoder_layers=3, decoder_layers=2, seed=0):
    from transformers import BartConfig, BartForConditionalGeneration

    torch.manual_seed(seed)
    config = BartConfig(vocab_size=60, d_model=32, encoder_layers=encoder_layers, decoder_layers=decoder_layers,
                        encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=64, decoder_ffn_dim=48,
                        max_position_embeddings=64, pad_token_id=0, bos_token_id=1, eos_token_id=2,
                        decoder_start_token_id=2, forced_eos_token_id=None)
    return BartForConditionalGeneration(config).eval()


def padded_sources(seed=0):
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, 60, (3, 10), generator=generator)
    mask = torch.ones_like(ids)
    ids[1, 7:], mask[1, 7:] = 0, 0
    ids[2, 4:], mask[2, 4:] = 0, 0
    return ids, mask


@pytest.mark.parametrize("num_beams", [1, 3])
def test_every_token_at_the_last_layer_generates_what_the_plain_model_generates(num_beams):
    hf = tiny_bart()
    ids, mask = padded_sources()
    model = HashEEForConditionalGeneration(hf).eval()
    schedule = build_exit_schedule(mask * model.num_layers, model.num_layers)
    settings = dict(num_beams=num_beams, do_sample=False, max_new_tokens=8, min_new_tokens=8)
    expected = hf.generate(input_ids=ids, attention_mask=mask, **settings)
    assert torch.equal(model.generate(ids, mask, schedule, **settings), expected)
    labels = torch.randint(3, 60, (3, 5))
    assert torch.allclose(model(ids, mask, schedule, labels), hf(input_ids=ids, attention_mask=mask, labels=labels).loss)


def test_a_token_exiting_at_layer_k_has_its_layer_k_state_as_memory():
    """Reference: HF's own layers over ALL tokens, each token's state kept once its exit layer is passed;
    the decoder's memory must hold exactly that state (and nothing of later layers)."""
    hf = tiny_bart(encoder_layers=4)
    ids, mask = padded_sources(1)
    exits = torch.tensor([[4, 1, 2, 3, 1, 4, 2, 2, 3, 1], [4, 3, 1, 1, 2, 2, 4, 0, 0, 0], [4, 2, 1, 3, 0, 0, 0, 0, 0, 0]])
    model = HashEEForConditionalGeneration(hf).eval()
    with torch.no_grad():
        memory = model.encode(ids, build_exit_schedule(exits, 4))
        encoder = hf.get_encoder()
        h = encoder.layernorm_embedding(encoder.embed_tokens(ids) + encoder.embed_positions(ids))
        additive = (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
        states = [h]
        for number, layer in enumerate(encoder.layers, start=1):
            updated = layer(h, additive)
            h = torch.where((exits >= number)[..., None], updated, h)
            states.append(h)
    real = mask.bool()
    assert torch.allclose(memory[real], h[real], atol=1e-5)
    for k in range(1, 5):   # the layer-k state itself, not a later one
        chosen = exits == k
        assert torch.allclose(memory[chosen], states[k][chosen], atol=1e-5)
        if k < 4:
            later = states[k + 1][chosen]
            assert not torch.allclose(memory[chosen], encoder.layers[k](states[k], additive)[chosen], atol=1e-3)
            assert torch.allclose(later, states[k][chosen])


def test_flops_match_torch_flop_counter():
    hf = tiny_bart()
    model = HashEEForConditionalGeneration(hf).eval()
    dims = Seq2SeqDims.from_hf_config(hf.config)
    ids = torch.randint(3, 60, (1, 9))
    exits = torch.tensor([[3, 1, 2, 3, 1, 1, 2, 3, 3]])
    # the math backend runs attention as matmuls, which the counter sees (the fused CPU kernel it does not)
    with sdpa_kernel(SDPBackend.MATH), torch.no_grad(), FlopCounterMode(display=False) as counter:
        memory = model.encode(ids, build_exit_schedule(exits, 3))
    assert counter.get_total_flops() == encoder_flops(exits[0].numpy(), dims)
    from transformers.modeling_outputs import BaseModelOutput

    for steps in (1, 6):
        with sdpa_kernel(SDPBackend.MATH), torch.no_grad(), FlopCounterMode(display=False) as counter:
            out = hf.generate(encoder_outputs=BaseModelOutput(last_hidden_state=memory), attention_mask=torch.ones_like(ids),
                              num_beams=1, do_sample=False, max_new_tokens=steps, min_new_tokens=steps)
        assert out.shape[1] - 1 == steps
        assert counter.get_total_flops() == decoder_flops(9, steps, dims)


def test_speedup_columns():
    dims = Seq2SeqDims(hidden=32, heads=4, encoder_ffn=64, decoder_ffn=64, encoder_layers=4, decoder_layers=4, vocab=100)
    full = [np.full(10, 4), np.full(7, 4)]
    same = seq2seq_speedup_record(full, np.array([5, 3]), dims, dims, num_beams=4)["speedup"]
    assert same["enc"] == same["dec"] == same["total"] == same["total_beam"] == 1.0
    hashed = seq2seq_speedup_record([np.full(10, 1), np.full(7, 1)], np.array([5, 3]), dims, dims, 4)["speedup"]
    # exited tokens are still keys and values of every layer, so one layer of four is not 4x
    assert 2.0 < hashed["enc"] < 4.0 and hashed["dec"] == 1.0 and 1.0 < hashed["total_beam"] < hashed["total"] < hashed["enc"]
    half = seq2seq_speedup_record(full, np.array([5, 3]), dims.with_depth(2, 2), dims, 1)["speedup"]
    assert half["enc"] == pytest.approx(2.0) and 1.0 < half["dec"] < 2.0   # the LM head is not halved


def test_cpt_checkpoint_renamed_into_bart_runs_cpts_generation_path(tmp_path):
    """A CPT checkpoint (BERT encoder with U-Dec layers on top, BART decoder) loads as a BART whose
    encoder output is CPT's: the BERT state below the U-Dec layers, token type 1 everywhere."""
    from safetensors.torch import save_file
    from transformers import BertConfig, BertModel

    from earlyexit.models.backbones import BackboneSpec
    from earlyexit.generation.seq2seq_backbones import load_seq2seq

    torch.manual_seed(0)
    raw = {"architectures": ["CPTForConditionalGeneration"], "model_type": "bart", "vocab_size": 60, "d_model": 32,
           "encoder_layers": 3, "decoder_layers": 1, "encoder_attention_heads": 4, "decoder_attention_heads": 4,
           "encoder_ffn_dim": 64, "decoder_ffn_dim": 48, "max_position_embeddings": 64, "pad_token_id": 0,
           "bos_token_id": 1, "eos_token_id": 2, "decoder_start_token_id": 2, "activation_function": "gelu"}
    bert = BertModel(BertConfig(vocab_size=60, hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
                                intermediate_size=64, max_position_embeddings=64), add_pooling_layer=False).eval()
    for p in bert.embeddings.token_type_embeddings.parameters():
        torch.nn.init.normal_(p, std=0.5)     # make the folded type-1 vector matter
    bart = tiny_bart(encoder_layers=2, decoder_layers=1)
    state = {f"model.encoder.{k}": v for k, v in bert.state_dict().items() if "position_ids" not in k}
    state.update({k: v for k, v in bart.state_dict().items() if k.startswith("model.decoder.") and "embed_tokens" not in k})
    state.update({"final_logits_bias": bart.final_logits_bias})
    save_file({k: v.contiguous() for k, v in state.items()}, tmp_path / "model.safetensors")
    (tmp_path / "config.json").write_text(json.dumps(raw))
    loaded = load_seq2seq(BackboneSpec(name="cpt", source="hub", hub_id=str(tmp_path)), seed=0).eval()
    assert loaded.config.encoder_layers == 2 and loaded.config.decoder_layers == 1
    ids, mask = padded_sources()
    ids = ids.clamp(max=59)
    with torch.no_grad():
        ours = loaded.get_encoder()(input_ids=ids, attention_mask=mask).last_hidden_state
        cpt = bert(input_ids=ids, attention_mask=mask, token_type_ids=torch.ones_like(ids),
                   output_hidden_states=True).hidden_states[-raw["decoder_layers"] - 1]
    assert torch.allclose(ours[mask.bool()], cpt[mask.bool()], atol=1e-5)
    assert torch.equal(loaded.model.decoder.layers[0].fc1.weight, bart.model.decoder.layers[0].fc1.weight)


def test_synthetic_summaries_are_learnt_well_above_lead_1(tmp_path):
    """The demo's task (copy the marked sentence) is learnt by a tiny random BART in ~200 steps."""
    from earlyexit.models.backbones import BackboneSpec
    from earlyexit.data.batching import attach_exit_layers
    from earlyexit.data.prepare import prepare_task
    from earlyexit.runs.experiment import tokenize_task
    from earlyexit.generation.rouge import rouge
    from earlyexit.generation.seq2seq import fine_tune_seq2seq, load_seq2seq_splits
    from earlyexit.generation.seq2seq_backbones import load_seq2seq, load_seq2seq_tokenizer
    from earlyexit.training.loop import TrainConfig

    prepare_task("synth-summary", "synthetic", tmp_path / "data", synthetic_sizes={"train": 800, "dev": 30, "test": 60})
    spec = BackboneSpec(name="tiny-bart", source="random", num_layers=2, decoder_layers=2)
    tokenize_task(task_name="synth-summary", split_dir=tmp_path / "data", backbone=spec, max_seq_len=96,
                  max_target_len=32, out_npz=tmp_path / "t.npz", out_meta=tmp_path / "t.json")
    splits = load_seq2seq_splits(tmp_path / "t.npz")
    model = HashEEForConditionalGeneration(load_seq2seq(spec, seed=1))
    for split in splits.values():
        attach_exit_layers(split.sources, None, model.num_layers, np.random.default_rng(0))
    cfg = TrainConfig(lr=3e-3, batch_size=16, epochs=4, eval_batch_size=60, warmup_ratio=0.1, weight_decay=0.0,
                      grad_clip=1.0, max_seq_len=96, optimizer="adamw", evals_per_epoch=1, bf16=False, cpu_bf16=False,
                      track_best_on_test=False)
    generation = {"num_beams": 1, "max_new_tokens": 24, "min_new_tokens": 0, "length_penalty": 1.0, "no_repeat_ngram_size": 0}
    result = fine_tune_seq2seq(model, splits, tokenizer=load_seq2seq_tokenizer(spec), language="en", cfg=cfg,
                               generation=generation, seed=1, pad_id=0, device=torch.device("cpu"), progress=False)
    lead = rouge(splits["test"].leads, splits["test"].references, "en")
    assert lead["rougeL"] < 60 and result["test"]["rougeL"] > lead["rougeL"] + 25


@pytest.mark.slow
def test_demo_summarization_table_end_to_end(tmp_path):
    """The demo's summarization part through the shared rules and rule table_summarization: the
    models learn the synthetic task well above Lead-1, HashEE's encoder is faster, no published row."""
    import pandas as pd
    import yaml

    from tests.conftest import REPO
    from tests.test_workflow import snakemake

    config = yaml.safe_load((REPO / "config" / "presets" / "demo.yaml").read_text())
    config["preset"] = "e2e-summary"
    path = tmp_path / "e2e.yaml"
    path.write_text(yaml.safe_dump(config))
    result = snakemake("results/e2e-summary/tables/summarization.md", "--cores", "2", "--configfile", str(path),
                       "--directory", str(tmp_path))
    assert result.returncode == 0, result.stderr[-4000:]
    tidy = pd.read_csv(tmp_path / "results/e2e-summary/tables/summarization.csv")
    assert set(tidy.source) == {"ours"}
    rows = tidy.set_index("row")
    lead = rows.loc["Lead-1 (first source sentence)", "rougeL"]
    for name in ("BART", "HashEE w/ BART", "BART-6L"):
        assert rows.loc[name, "rougeL"] > lead + 20
    assert rows.loc["HashEE w/ BART", "enc_speedup"] > 1.2 and rows.loc["HashEE w/ BART", "dec_speedup"] == 1.0
    assert rows.loc["BART-6L", "enc_speedup"] == pytest.approx(2.0)


class Killed(Exception):
    pass


def test_a_killed_summarization_run_resumes_and_writes_the_uninterrupted_record(tmp_path, monkeypatch):
    """ctx.train_state reaches the one loop: a run killed at step 4 of 8 resumes from its step-3 state
    and its record equals the uninterrupted run's."""
    from earlyexit.models.backbones import BackboneSpec
    from earlyexit.data.prepare import prepare_task
    from earlyexit.runs.experiment import run_experiment, tokenize_task, train_state_path
    from earlyexit.plumbing.files import read_json
    from earlyexit.training.loop import TrainConfig

    prepare_task("synth-summary", "synthetic", tmp_path / "data", synthetic_sizes={"train": 64, "dev": 10, "test": 10})
    spec = BackboneSpec(name="tiny-bart", source="random", num_layers=2, decoder_layers=1, hidden_size=32,
                        intermediate_size=64)
    tokenize_task(task_name="synth-summary", split_dir=tmp_path / "data", backbone=spec, max_seq_len=96,
                  max_target_len=32, out_npz=tmp_path / "t.npz", out_meta=tmp_path / "t.json")
    cfg = TrainConfig(lr=1e-3, batch_size=16, epochs=2, eval_batch_size=16, warmup_ratio=0.25, weight_decay=0.0,
                      grad_clip=1.0, max_seq_len=96, optimizer="adamw", evals_per_epoch=2, bf16=False, cpu_bf16=False,
                      track_best_on_test=True, checkpoint_every_steps=3)
    generation = {"num_beams": 2, "max_new_tokens": 8, "min_new_tokens": 0, "length_penalty": 1.0, "no_repeat_ngram_size": 0}

    def run(out):
        return run_experiment(preset="r", task_name="synth-summary", tokenized=tmp_path / "t.npz",
                              tokenized_meta=tmp_path / "t.json", backbone=spec, method="full", variant="default",
                              artifacts={}, train_config=cfg, seed=1, reference_layers=None, out_json=out,
                              device="cpu", progress=False, generation=generation)

    whole = run(tmp_path / "whole.json")
    # each test summary's ROUGE is kept: their mean is the record's test score (the claims ledger resamples them)
    instances = whole["test_instances"]
    assert instances["kind"] == "rouge" and len(instances["scores"]) == 10
    assert np.mean(instances["scores"]) == pytest.approx(whole["test"]["score"], abs=1e-4)
    forward, calls = HashEEForConditionalGeneration.forward, []

    def counting(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 4:
            raise Killed
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(HashEEForConditionalGeneration, "forward", counting)
    out = tmp_path / "killed.json"
    with pytest.raises(Killed):
        run(out)
    assert train_state_path(out).exists()
    resumed = run(out)
    assert len(calls) == 4 + 5                            # resumed at step 3 of 8
    timings = ("train_seconds", "eval_seconds", "total_seconds")
    assert {k: v for k, v in resumed.items() if k not in timings} == {k: v for k, v in whole.items() if k not in timings}
    assert resumed["speedup"]["num_beams"] == 2 and len(resumed["history"]) == 4
    assert not train_state_path(out).exists() and read_json(out)["test"] == whole["test"]
