"""ELUE TSV readers on tiny hand-written files: layouts, BOM, CRLF, quoting, and exact error locations."""

import pytest

from earlyexit.data.elue import MissingSplitError, load_elue_task, read_elue_split
from earlyexit.data.examples import DataFormatError, Example
from earlyexit.data.tasks import get_task

SST2, SNLI, MRPC, STSB = (get_task(n) for n in ("SST-2", "SNLI", "MRPC", "STS-B"))
BOM = "\ufeff"


def write(tmp_path, name, text, newline="\n"):
    path = tmp_path / name
    path.write_bytes(text.replace("\n", newline).encode("utf-8"))
    return path


def test_single_sentence_layout(tmp_path):
    path = write(tmp_path, "train.tsv", "sentence\tlabel\nA fine film .\t1\nDull .\t0\n")
    assert read_elue_split(path, SST2) == [Example("A fine film .", None, 1), Example("Dull .", None, 0)]


def test_bom_and_crlf_are_removed(tmp_path):
    path = write(tmp_path, "dev.tsv", BOM + "premise\thypothesis\tlabel\nA man sleeps .\tA man rests .\t0\n"
                 "Two dogs run .\tCats sit .\t2\n", newline="\r\n")
    examples = read_elue_split(path, SNLI)
    assert examples == [Example("A man sleeps .", "A man rests .", 0), Example("Two dogs run .", "Cats sit .", 2)]
    assert not any("\r" in e.text_b or "\ufeff" in e.text_a for e in examples)


def test_file_without_final_newline_and_blank_lines(tmp_path):
    path = write(tmp_path, "dev.tsv", "sentence\tlabel\nGood .\t1\n\nBad .\t0")
    assert read_elue_split(path, SST2) == [Example("Good .", None, 1), Example("Bad .", None, 0)]


def test_mrpc_glue_layout(tmp_path):
    text = (BOM + "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
            "1\t702876\t702977\tAmrozi accused his brother .\tReferring to him , Amrozi accused his brother .\n"
            "0\t2108705\t2108831\tYucaipa owned Dominick 's .\tYucaipa bought Dominick 's in 1995 .\n")
    examples = read_elue_split(write(tmp_path, "train.tsv", text), MRPC)
    assert examples == [
        Example("Amrozi accused his brother .", "Referring to him , Amrozi accused his brother .", 1),
        Example("Yucaipa owned Dominick 's .", "Yucaipa bought Dominick 's in 1995 .", 0),
    ]


def test_mrpc_test_full_unquotes_csv_fields(tmp_path):
    text = ("label\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
            '1\t-\t-\t"He said ""no"" twice ."\tHe refused .\n'
            '0\t-\t-\tPlain text .\t"""Quoted whole sentence ."""\n')
    examples = read_elue_split(write(tmp_path, "test_full.tsv", text), MRPC)
    assert examples == [Example('He said "no" twice .', "He refused .", 1),
                        Example("Plain text .", '"Quoted whole sentence ."', 0)]


def test_quotes_kept_outside_full_files_and_when_not_csv_quoting(tmp_path):
    row = '"Yes" and "no"\t1\n"Wrapped ."\t0\n"Say ""hi"" ."\t1\n'
    plain = read_elue_split(write(tmp_path, "train.tsv", "sentence\tlabel\n" + row), SST2)
    assert [e.text_a for e in plain] == ['"Yes" and "no"', '"Wrapped ."', '"Say ""hi"" ."']
    full = read_elue_split(write(tmp_path, "test_full.tsv", "sentence\tlabel\n" + row), SST2)
    # `"Yes" and "no"` has undoubled inner quotes, and a minimal-quoting CSV writer never wraps a
    # text without a quote such as `Wrapped .`: both are real text.
    assert [e.text_a for e in full] == ['"Yes" and "no"', '"Wrapped ."', 'Say "hi" .']


STSB_HEADER = "sentence1\tsentence2\tlabel\n"


@pytest.mark.parametrize("name", ["train.tsv", "dev.tsv"])
def test_stsb_unquotes_every_split(tmp_path, name):
    text = (STSB_HEADER + '"A dog in a ""superman"" shirt ."\tA dog sleeps .\t4.0\n'
            '"""Quoted whole sentence ."""\tPlain .\t1.0\n')
    examples = read_elue_split(write(tmp_path, name, text), STSB)
    assert [e[:2] for e in examples] == [('A dog in a "superman" shirt .', "A dog sleeps ."),
                                         ('"Quoted whole sentence ."', "Plain .")]


def test_stsb_test_full_two_levels_match_test(tmp_path):
    """test_full.tsv was CSV-written twice; decoded, its texts equal test.tsv's decoded once."""
    once = ['"A boy in a pool that says ""no diving""."', '"""Saddam is gone."""', "Bare ."]
    twice = ['"""A boy in a pool that says """"no diving""""."""', '"""""""Saddam is gone."""""""', "Bare ."]
    test = write(tmp_path, "test.tsv", "index\tsentence1\tsentence2\n"
                 + "".join(f"{i}\t{t}\tX .\n" for i, t in enumerate(once)))
    full = write(tmp_path, "test_full.tsv", STSB_HEADER + "".join(f"{t}\tX .\t2.5\n" for t in twice))
    expected = ['A boy in a pool that says "no diving".', '"Saddam is gone."', "Bare ."]
    assert [e.text_a for e in read_elue_split(test, STSB, labelled=False)] == expected
    assert [e.text_a for e in read_elue_split(full, STSB)] == expected


def test_mrpc_real_quotes_kept_and_test_full_decoded_once(tmp_path):
    """MRPC's `"` is often real, space-separated text: only test_full is CSV-written, and there a
    wrapped text keeps its own quotes."""
    real = '" I am delighted , " he said .'
    whole = '" It was one of the few times . "'
    header = "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
    train = write(tmp_path, "train.tsv", header + f"1\t1\t2\t{real}\t{whole}\n")
    assert read_elue_split(train, MRPC)[0][:2] == (real, whole)
    full = write(tmp_path, "test_full.tsv", "label\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
                 '1\t-\t-\t""" I am delighted , "" he said ."\t""" It was one of the few times . """\n')
    assert read_elue_split(full, MRPC)[0][:2] == (real, whole)


def test_unlabelled_test_file(tmp_path):
    path = write(tmp_path, "test.tsv", "index\tpremise\thypothesis\n0\tA cat .\tAn animal .\n1\tA car .\tA bus .\n")
    assert read_elue_split(path, SNLI, labelled=False) == [Example("A cat .", "An animal .", None),
                                                          Example("A car .", "A bus .", None)]
    with pytest.raises(DataFormatError) as error:
        read_elue_split(path, SNLI)
    assert str(error.value).startswith(f"{path}:1: no label column")


def test_unlabelled_mrpc_test_file(tmp_path):
    path = write(tmp_path, "test.tsv", "index\t#1 ID\t#2 ID\t#1 String\t#2 String\n0\t-\t-\tOne .\tTwo .\n")
    assert read_elue_split(path, MRPC, labelled=False) == [Example("One .", "Two .", None)]


def test_stsb_float_labels(tmp_path):
    path = write(tmp_path, "dev.tsv", "sentence1\tsentence2\tlabel\nA plane .\tAn air plane .\t5.000\n"
                 "A man .\tA cat .\t0.0\nA girl sings .\tA girl dances .\t2.4\n")
    assert [e.label for e in read_elue_split(path, STSB)] == [5.0, 0.0, 2.4]


@pytest.mark.parametrize("task, text, line, what", [
    (SST2, "sentence\tlabel\nGood .\t1\nBad .\t0\textra\n", 3, "expected 2 tab-separated columns, found 3"),
    (SST2, "sentence\tlabel\nGood .\t1\nno label here\n", 3, "expected 2 tab-separated columns, found 1"),
    (SST2, "sentence\tlabel\nGood .\tpositive\n", 2, "label 'positive' is not an integer class index"),
    (SST2, "sentence\tlabel\nGood .\t1\nBad .\t2\n", 3, "label 2 is outside 0..1 for SST-2"),
    (SNLI, "premise\thypothesis\tlabel\nA .\tB .\t-1\n", 2, "label -1 is outside 0..2 for SNLI"),
    (STSB, "sentence1\tsentence2\tlabel\nA .\tB .\t1.5\nA .\tC .\t5.2\n", 3, "label 5.2 is outside [0, 5] for STS-B"),
    (STSB, "sentence1\tsentence2\tlabel\nA .\tB .\tn/a\n", 2, "label 'n/a' is not a number (STS-B is a regression task)"),
    (SST2, "sentence\tscore\nGood .\t1\n", 1, "header 'sentence | score' has no 'label' column (nor a leading 'index' column)"),
    (SST2, "premise\thypothesis\tlabel\nA .\tB .\t1\n", 1,
     "header 'premise | hypothesis | label' does not fit single-sentence task SST-2 (text columns: sentence or text)"),
    (MRPC, "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n1\t1\t2\tOnly one string\n", 2,
     "expected 5 tab-separated columns, found 4"),
])
def test_bad_input_names_file_and_line(tmp_path, task, text, line, what):
    path = write(tmp_path, "dev.tsv", text, newline="\r\n")
    with pytest.raises(DataFormatError) as error:
        read_elue_split(path, task)
    assert str(error.value) == f"{path}:{line}: {what}"
    assert (error.value.line, error.value.what) == (line, what)


def test_line_numbers_count_blank_lines_and_bom_header(tmp_path):
    path = write(tmp_path, "dev.tsv", BOM + "sentence\tlabel\nGood .\t1\n\nBad .\tx\n")
    with pytest.raises(DataFormatError, match=r"dev\.tsv:4: label 'x'"):
        read_elue_split(path, SST2)


@pytest.mark.parametrize("content, what", [("", "empty file"), (BOM + "\r\n", "empty file"),
                                           ("sentence\tlabel\n", "header but no data rows")])
def test_whole_file_problems(tmp_path, content, what):
    path = write(tmp_path, "train.tsv", content)
    with pytest.raises(DataFormatError) as error:
        read_elue_split(path, SST2)
    assert str(error.value) == f"{path}: {what}"


def test_invalid_utf8_names_the_line(tmp_path):
    path = tmp_path / "train.tsv"
    path.write_bytes(b"sentence\tlabel\nok .\t1\nbad \xff byte\t0\n")
    with pytest.raises(DataFormatError, match=r"train\.tsv:3: not valid UTF-8"):
        read_elue_split(path, SST2)


def test_load_elue_task_reads_test_full_and_reports_missing_split(tmp_path):
    folder = tmp_path / "SST-2"
    folder.mkdir()
    write(folder, "train.tsv", "sentence\tlabel\nA .\t1\n")
    write(folder, "dev.tsv", "sentence\tlabel\nB .\t0\n")
    write(folder, "test.tsv", "index\tsentence\n0\tC .\n")
    with pytest.raises(MissingSplitError) as error:
        load_elue_task(tmp_path, SST2)
    message = str(error.value)
    assert message.startswith(f"{folder / 'test_full.tsv'}: no such file; the test split of SST-2 is absent")
    assert "\n" not in message and isinstance(error.value, FileNotFoundError)
    write(folder, "test_full.tsv", "sentence\tlabel\nC .\t1\n")
    assert load_elue_task(tmp_path, SST2) == {"train": [Example("A .", None, 1)], "dev": [Example("B .", None, 0)],
                                              "test": [Example("C .", None, 1)]}


def test_load_elue_task_missing_task_folder(tmp_path):
    with pytest.raises(MissingSplitError, match=r"MRPC/train\.tsv: no such file; the folder .*MRPC does not exist"):
        load_elue_task(tmp_path, MRPC)
