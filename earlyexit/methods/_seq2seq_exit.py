"""The run shared by the full model and HashEE on a summarization task: a BART-family seq2seq model
whose encoder runs token-level exiting (`HashEEForConditionalGeneration`; every source token at the
last layer = the full model), fine-tuned with teacher forcing on the one loop and scored by ROUGE
of generated summaries. A -6L row is the full method on a backbone entry with halved stacks."""

from __future__ import annotations

import numpy as np

from earlyexit.methods.base import RunContext, RunOutcome


def run_seq2seq_exit(ctx: RunContext, token_hash) -> RunOutcome:
    import torch

    from earlyexit.data.batching import attach_exit_layers
    from earlyexit.cost.flops import Seq2SeqDims, seq2seq_speedup_record
    from earlyexit.models.hashee_seq2seq import HashEEForConditionalGeneration
    from earlyexit.plumbing.files import atomic_path
    from earlyexit.generation.rouge import rouge, rouge_with_instances
    from earlyexit.generation.seq2seq import fine_tune_seq2seq, load_seq2seq_splits
    from earlyexit.generation.seq2seq_backbones import load_seq2seq, load_seq2seq_tokenizer

    if ctx.generation is None:
        raise ValueError(f"task {ctx.task.name}: a summarization run needs the summarization.generation settings")
    if ctx.backbone.language != ctx.task.language:
        raise ValueError(f"backbone {ctx.backbone.name} ({ctx.backbone.language}) does not fit task "
                         f"{ctx.task.name} ({ctx.task.language})")
    model = HashEEForConditionalGeneration(load_seq2seq(ctx.backbone, ctx.seed))
    splits = load_seq2seq_splits(ctx.tokenized)
    for index, name in enumerate(("train", "dev", "test")):
        attach_exit_layers(splits[name].sources, token_hash, model.num_layers, np.random.default_rng([ctx.seed, index]))
    result = fine_tune_seq2seq(model, splits, tokenizer=load_seq2seq_tokenizer(ctx.backbone),
                               language=ctx.task.language, cfg=ctx.train_config, generation=ctx.generation,
                               seed=ctx.seed, pad_id=ctx.meta["pad_id"], device=ctx.device,
                               progress=ctx.progress, state=ctx.train_state)
    if ctx.checkpoint:
        with atomic_path(ctx.checkpoint) as tmp:
            torch.save(model.hf.state_dict(), tmp)
    dims = Seq2SeqDims.from_hf_config(model.hf.config)
    reference = dims.with_depth(ctx.reference_layers or dims.encoder_layers,
                                ctx.reference_decoder_layers or dims.decoder_layers)
    exits = splits["test"].sources.exit_layers
    cost = seq2seq_speedup_record(exits, result["generated_tokens"], dims, reference, ctx.generation["num_beams"])
    lead = rouge(splits["test"].leads, splits["test"].references, ctx.task.language)
    # each test summary's ROUGE (the record's test score is their mean): the claims ledger resamples them
    instance_rouge = rouge_with_instances(result["predictions"], splits["test"].references, ctx.task.language)[1]
    return RunOutcome.from_fine_tune(
        result, method_flops=np.zeros(0), elue_depth=np.zeros(0), tokens=np.array([len(e) for e in exits]), dims=dims,
        cost=cost, test_predictions=instance_rouge,
        extra={"mean_exit_layer": float(np.mean(np.concatenate(exits))), "decoder_layers": dims.decoder_layers,
               "lead_baseline": lead, "generation": dict(ctx.generation),
               "examples": [{"prediction": p, "reference": r}
                            for p, r in zip(result["predictions"][:5], splits["test"].references[:5])]},
    )
