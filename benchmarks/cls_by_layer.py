"""How much a backbone's [CLS] vector at each layer depends on the input, before any fine-tuning:
the diagnostic behind docs/claims-real-text.md's finding that MiniLM's shallow [CLS] exits do not
learn. Every multi-exit method reads [CLS] at each layer (through a pooler); a [CLS] that is the
same vector for every sentence gives its exit nothing to classify until fine-tuning changes the
layers below it.

    python benchmarks/cls_by_layer.py --data-dir ../shared/data/elue --task SST-2 --out FILE.json

For each layer (0: the embeddings) it reports, over `--instances` dev sentences: the mean [CLS]
norm, the mean over hidden units of the standard deviation across sentences, the same for the
mean of the other tokens (what mean pooling reads), and the ratio of the two.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from earlyexit.models.backbones import load_classifier, load_tokenizer
from earlyexit.plumbing.cpu_info import cpu_label
from earlyexit.plumbing.files import atomic_write_json

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import backbone_spec, load_texts  # noqa: E402


def layer_statistics(hidden_states, attention_mask) -> list[dict]:
    mask = attention_mask.unsqueeze(-1).float()
    mask[:, 0] = 0.0                                   # the mean of the tokens other than [CLS]
    rows = []
    for layer, h in enumerate(hidden_states):
        cls = h[:, 0].float()
        mean_tokens = (h.float() * mask).sum(1) / mask.sum(1)
        cls_spread = cls.std(0).mean().item()
        token_spread = mean_tokens.std(0).mean().item()
        rows.append({"layer": layer, "cls_norm": cls.norm(dim=-1).mean().item(),
                     "cls_spread": cls_spread, "mean_token_spread": token_spread,
                     "cls_over_mean_tokens": cls_spread / token_spread})
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backbone", default="minilm", help="minilm | tiny | a HF hub id or local folder")
    p.add_argument("--num-layers", type=int, default=None)
    p.add_argument("--task", default="SST-2")
    p.add_argument("--data-dir", default=None, help="ELUE-format folder (default: synth-sentiment)")
    p.add_argument("--instances", type=int, default=256)
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    torch.manual_seed(0)
    spec = backbone_spec(args)
    task, _, dev = load_texts(args, args.instances)
    dev = dev[: args.instances]
    tokenizer = load_tokenizer(spec)
    model = load_classifier(spec, task.num_labels, seed=0, fast_linears=False).base_model.eval()
    second = [e.text_b for e in dev] if dev[0].text_b is not None else None
    enc = tokenizer([e.text_a for e in dev], second, padding=True, truncation=True, max_length=128,
                    return_tensors="pt")
    with torch.no_grad():
        out = model(**enc, output_hidden_states=True)
    rows = layer_statistics(out.hidden_states, enc["attention_mask"])
    record = {"backbone": args.backbone, "task": task.name, "instances": len(dev), "cpu": cpu_label(),
              "command": "python " + " ".join(sys.argv), "layers": rows}
    atomic_write_json(args.out, record)
    for r in rows:
        print(f"layer {r['layer']}: [CLS] norm {r['cls_norm']:.1f}, spread across sentences {r['cls_spread']:.4f}"
              f" (mean of the other tokens {r['mean_token_spread']:.4f}; ratio {r['cls_over_mean_tokens']:.3f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
