"""The difficulty study's tables through the one table writer: the same numbers and cells as before
the writer was shared (the expected text below is what the study's own renderer wrote), the same
cells in Markdown and LaTeX, and the published numbers read by the one loader."""

import pytest

from difficulty import steps
from tests.table_cells import md_table, tex_table

RECORDS = [
    {"level": "sentence", "predictor": "majority", "seed": 1, "test": {"precision": 0.5, "recall": 0.25, "f1": 0.3333333}},
    {"level": "sentence", "predictor": "majority", "seed": 2, "test": {"precision": 0.6, "recall": 0.35, "f1": 0.4421}},
    {"level": "sentence", "predictor": "bert", "seed": 1, "test": {"precision": 0.71234, "recall": 0.6, "f1": 0.65}},
    {"level": "token", "predictor": "linear-b", "seed": 1, "test": {"precision": 0.4, "recall": 0.8, "f1": 0.5333}},
]
PUBLISHED = ("table,row,backbone,task,metric,value,std,speedup,note\n"
             "difficulty,Majority,sentence,SNLI,precision,60.5,,,x\n"
             "difficulty,Majority,sentence,SNLI,f1,45.7,,,x\n"
             "difficulty,BERT,token,OntoNotes,f1,53.1,,,x\n"
             "hash_functions,mi,ElasticBERT-6L,SST-2,score,85.5,0.49,3.3,x\n")
DIFFICULTY_CSV = """\
level,predictor,seeds,precision_mean,precision_std,published_precision,recall_mean,recall_std,published_recall,f1_mean,f1_std,published_f1
sentence,Majority,2,55.0,7.071,60.5,30.0,7.071,,38.772,7.691,45.7
sentence,BERT,1,71.234,,,60.0,,,65.0,,
token,Linear-B,1,40.0,,,80.0,,,53.33,,
token,BERT,0,,,,,,,,,53.1
"""
DIFFICULTY_ROWS = [
    ["*Sentence-level*"],
    ["Majority", "55.0 ± 7.1", "30.0 ± 7.1", "38.8 ± 7.7", "60.5", "–", "45.7", "2"],
    ["BERT", "71.2", "60.0", "65.0", "–", "–", "–", "1"],
    ["*Token-level*"],
    ["Linear-B", "40.0", "80.0", "53.3", "–", "–", "–", "1"],
    ["BERT", "–", "–", "–", "–", "–", "53.1", "0"],
]
HUMAN_RECORDS = [
    {"predictor": "majority", "seed": 1, "test": {"accuracy": 0.5}, "train": {"accuracy": 0.52},
     "chance_test": {"chance": 0.5, "p_value": 0.56}, "rows": {"test": 20}},
    {"predictor": "bert", "seed": 1, "test": {"accuracy": 0.55}, "train": {"accuracy": 0.9},
     "chance_test": {"chance": 0.5, "p_value": 0.3123}, "rows": {"test": 20}},
    {"predictor": "bert", "seed": 2, "test": {"accuracy": 0.6}, "train": {"accuracy": 0.95},
     "chance_test": {"chance": 0.5, "p_value": 0.0412}, "rows": {"test": 20}},
]
HUMAN_CSV = """\
predictor,seeds,train_accuracy_mean,test_accuracy_mean,test_accuracy_std,chance,test_rows,p_values,max_p_value
Majority,1,52.0,50.0,,50.0,20,0.56,0.56
BERT,2,92.5,57.5,3.5355,50.0,20,0.312;0.0412,0.3123
"""
HUMAN_ROWS = [["Majority", "52.0", "50.0", "50.0", "0.56", "1"],
              ["BERT", "92.5", "57.5 ± 3.5", "50.0", "0.312, 0.0412", "2"]]


def _write_records(folder, records):
    import json

    folder.mkdir()
    paths = []
    for i, record in enumerate(records):
        paths.append(folder / f"{i}.json")
        paths[-1].write_text(json.dumps(record))
    return paths


def _counts(tmp_path, name, source):
    import json

    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps({"source": source, "train": {"rows": 10}}))
    return path


RELEASED = {"source": "released", "path": "x", "sha256": {"train": "0", "test": "1"}}
ANNOTATED_SYNTHETIC = {"source": "annotate", "train_data": {"source": "synthetic", "size": 60},
                       "label_data": {"source": "synthetic", "size": 40}}
ANNOTATED_REAL = {"train_data": {"source": "conll", "path": "a"}, "label_data": {"source": "conll", "path": "b"}}


def test_difficulty_model_table_keeps_its_numbers_and_cells(tmp_path):
    published = tmp_path / "published.csv"
    published.write_text(PUBLISHED)
    outs = [tmp_path / "tables" / f"difficulty_model.{ext}" for ext in ("csv", "md", "tex")]
    counts = {"sentence": _counts(tmp_path, "s", RELEASED), "token": _counts(tmp_path, "t", ANNOTATED_REAL)}
    steps.write_difficulty_model(_write_records(tmp_path / "runs", RECORDS), published, "unit", *outs,
                                 counts_paths=counts)
    assert outs[0].read_text() == DIFFICULTY_CSV
    md = outs[1].read_text()
    assert md.splitlines()[0] == "Model-defined difficulty, preset `unit` (%, test split; positive class = layer wrong)"
    header, rows = md_table(md)
    assert header == ["Model", "P (ours)", "R (ours)", "F1 (ours)", "P (published)", "R (published)",
                      "F1 (published)", "seeds"]
    assert rows == DIFFICULTY_ROWS
    tex_header, tex_rows = tex_table(outs[2].read_text())
    assert tex_header == ["Model", "P", "R", "F1", "P", "R", "F1", "seeds"] and tex_rows == DIFFICULTY_ROWS
    assert r"\multicolumn{3}{c}{ours} & \multicolumn{3}{c}{published}" in outs[2].read_text()


def test_difficulty_human_table_keeps_its_numbers_and_cells(tmp_path):
    outs = [tmp_path / f"difficulty_human.{ext}" for ext in ("csv", "md", "tex")]
    steps.write_difficulty_human(_write_records(tmp_path / "runs", HUMAN_RECORDS), "unit", *outs,
                                 counts_path=_counts(tmp_path, "h", RELEASED))
    assert outs[0].read_text() == HUMAN_CSV
    md = outs[1].read_text()
    assert "Published: the paper reports that BERT barely beats chance on the test split (figure only)." in md
    header, rows = md_table(md)
    assert header == ["Model", "train acc", "test acc", "chance", "binomial p (per seed, one-sided)", "seeds"]
    assert rows == HUMAN_ROWS and tex_table(outs[2].read_text())[1] == HUMAN_ROWS


def test_difficulty_table_reads_published_numbers_through_the_one_loader(tmp_path):
    bad = tmp_path / "published.csv"
    bad.write_text("table,row,metric\n")
    with pytest.raises(ValueError, match=rf"^{bad}: line 1: expected columns"):
        steps.write_difficulty_model([], bad, "unit", *(tmp_path / f"d.{e}" for e in ("csv", "md", "tex")))
    assert not list(tmp_path.glob("d.*"))


def test_synthetic_levels_get_no_published_numbers(tmp_path):
    published = tmp_path / "published.csv"
    published.write_text(PUBLISHED)
    runs = _write_records(tmp_path / "runs", RECORDS)
    outs = [tmp_path / f"d.{ext}" for ext in ("csv", "md", "tex")]
    both = {"sentence": _counts(tmp_path, "s", ANNOTATED_SYNTHETIC), "token": _counts(tmp_path, "t", ANNOTATED_SYNTHETIC)}
    steps.write_difficulty_model(runs, published, "demo", *outs, counts_paths=both)
    header, rows = md_table(outs[1].read_text())
    assert header == ["Model", "P (ours)", "R (ours)", "F1 (ours)", "seeds"]
    assert rows == [["*Sentence-level (synthetic stand-in data)*"], DIFFICULTY_ROWS[1][:4] + ["2"],
                    DIFFICULTY_ROWS[2][:4] + ["1"], ["*Token-level (synthetic stand-in data)*"],
                    DIFFICULTY_ROWS[4][:4] + ["1"]]                      # no published-only BERT row
    assert not any(w in outs[1].read_text() for w in ("45.7", "60.5", "53.1"))
    csv = outs[0].read_text().splitlines()
    assert all(line.split(",")[5] == "" for line in csv[1:])            # published_precision empty
    # one real level keeps its published columns; the synthetic one has none beside it
    mixed = {"sentence": _counts(tmp_path, "s2", RELEASED), "token": both["token"]}
    steps.write_difficulty_model(runs, published, "demo", *outs, counts_paths=mixed)
    _, rows = md_table(outs[1].read_text())
    assert rows[1] == DIFFICULTY_ROWS[1] and rows[-1] == ["Linear-B", "40.0", "80.0", "53.3", "–", "–", "–", "1"]
    assert len(rows) == 5                                                 # token BERT (published only) left out


def test_synthetic_human_data_is_named_as_such(tmp_path):
    outs = [tmp_path / f"h.{ext}" for ext in ("csv", "md", "tex")]
    synthetic = {"source": "synthetic", "size": 300, "seed": 0}
    steps.write_difficulty_human(_write_records(tmp_path / "runs", HUMAN_RECORDS), "demo", *outs,
                                 counts_path=_counts(tmp_path, "h", synthetic))
    assert "synthetic stand-in for simple vs difficult SNLI pairs" in outs[1].read_text().splitlines()[0]
