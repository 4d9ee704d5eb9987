"""The backbone-effect figure's points: each HashEE backbone's full model and truncations as its line
(by depth), HashEE's hashes as points; backbones without HashEE are left out."""

import pandas as pd

from analysis.backbone_effect import backbone_effect_points, plot_backbone_effect
from tests.test_elue_main import runs_frame


def test_lines_and_points_per_backbone(tmp_path):
    runs = runs_frame()
    points = backbone_effect_points(runs)
    # HashEE ran only on ElasticBERT-6L, which has no truncations here: its line is empty
    assert set(points["paper_backbone"]) == {"ElasticBERT-6L"} and set(points["kind"]) == {"token-level"}
    # the 12-layer ElasticBERT with HashEE too: its line is 1L, 2L, 3L and the full 12 layers
    extra = runs[(runs["method"] == "hashee")].assign(backbone="eb-12L", paper_backbone="ElasticBERT-12L")
    points = backbone_effect_points(pd.concat([runs, extra], ignore_index=True))
    line = points[(points["paper_backbone"] == "ElasticBERT-12L") & (points["kind"] == "line") & (points["task"] == "SST-2")]
    assert list(line["num_layers"]) == [1, 2, 3, 12] and list(line["test_score"]) == [70.0, 76.0, 80.0, 85.0]
    assert list(line["n_seeds"]) == [2, 2, 2, 1]
    plot_backbone_effect(pd.concat([runs, extra], ignore_index=True), tmp_path / "f.png", tmp_path / "f.pdf", "t")
    assert (tmp_path / "f.png").stat().st_size > 1000 and (tmp_path / "f.pdf").stat().st_size > 1000


def test_a_backbone_and_its_multi_exit_version_each_get_their_line_and_points(tmp_path):
    """Issue 20: MiniLM and its multi-exit pre-trained version (no paper backbone: its own name) side by
    side; the legend names what ran and the paper backbone it stands in for."""
    runs = runs_frame()
    six = runs[runs["paper_backbone"] == "ElasticBERT-6L"]
    full = runs[runs["method"] == "full"].assign(backbone="eb-6L", paper_backbone="ElasticBERT-6L", num_layers=6)
    mine = pd.concat([six, full]).assign(backbone="minilm-elastic-6L", paper_backbone="minilm-elastic-6L")
    both = pd.concat([runs, full, mine], ignore_index=True)
    points = backbone_effect_points(both)
    assert {"minilm-elastic-6L", "ElasticBERT-6L"} <= set(points["paper_backbone"])
    elastic = points[points["backbone"] == "minilm-elastic-6L"]
    assert set(elastic["kind"]) == {"token-level", "line"} and (elastic["paper_backbone"] == "minilm-elastic-6L").all()
    plot_backbone_effect(both, tmp_path / "f.png", tmp_path / "f.pdf", "t")
    assert (tmp_path / "f.png").stat().st_size > 1000
