"""The elue-minilm-elastic preset (issue 20, docs/backbone-effect-realtext.md) plans the multi-exit
pre-training of MiniLM once, on a corpus of train splits and the released difficulty texts, then the
same grid on both backbones: every configured (method, variant) x seed on SST-2 and MRPC, the dynamic
ones swept, the backbone figure and the claims ledger. Skipped without ../shared/data."""

from earlyexit.methods import backbone_runs, get_method, with_training_runs
from tests.conftest import REPO, planned_outputs, real_data_preset

CONFIG, ELUE, pytestmark = real_data_preset("elue-minilm-elastic")


def absolute(config):
    corpus = config["pretraining"]["corpus"]
    return {**config, "pretraining": {**config["pretraining"], "corpus": {
        **corpus, **{k: str((REPO / corpus[k]).resolve()) for k in ("difficulty_dir", "exclude_dir")}}}}


def test_dry_run_plans_one_pretraining_and_the_same_grid_on_both_backbones(tmp_path):
    outputs = planned_outputs(absolute(CONFIG), ELUE, tmp_path)
    root = f"results/{CONFIG['preset']}"
    assert [o for o, rule in outputs.items() if rule == "pretrain_backbone"] == [
        f"{root}/pretrained/minilm-elastic-6L/model", f"{root}/pretrained/minilm-elastic-6L/record.json"]
    # the corpus: STS-B is prepared for its train split only, never run
    assert f"resources/{CONFIG['preset']}/data/STS-B/train.tsv" in outputs
    assert not [o for o in outputs if "/runs/STS-B/" in o]
    grids = {b: with_training_runs(CONFIG, backbone_runs(CONFIG, b)) for b in CONFIG["backbones"]}
    assert grids["minilm-6L"] == grids["minilm-elastic-6L"] and len(CONFIG["seeds"]) == 2
    for backbone, runs in grids.items():
        for task in CONFIG["tasks"]:
            for method, variant in runs:
                for seed in CONFIG["seeds"]:
                    assert f"{root}/runs/{task}/{backbone}/{method}/{variant}/seed{seed}.json" in outputs
                    swept = f"{root}/sweeps/{task}/{backbone}/{method}/{variant}/seed{seed}.json" in outputs
                    assert swept == (get_method(method).family == "dynamic")
    assert f"figures/{CONFIG['preset']}/backbone_effect.png" in outputs and f"{root}/tables/claims.md" in outputs
