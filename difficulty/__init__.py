"""Part A of HashEE (Sun et al., 2022): can instance difficulty be learned?

Modules, one job each:
- formats:    the TSV formats of the difficulty datasets (read with file:line errors, write, summarise)
- sources:    raw NLI / NER sources (SNLI release, HF hub, ELUE TSV, CoNLL, synthetic stand-ins)
- datasets:   builders of the human-defined and the model-defined datasets
- encoding:   tokenisation and padding of pairs / word pieces into tensors
- annotate:   multi-exit classifier / tagger that labels instances layer by layer
- targets:    per-layer 0/1 labels <-> exit layer
- metrics:    micro P/R/F1 with "the layer is wrong" (label 0) as the positive class
- predictors: Majority, Linear-M, Linear-B, BiLSTM, BERT and their fit/evaluate (on the suite's one
              loop, earlyexit.training.loop.train_loop)
- human:      simple-vs-difficult classification on the human-defined dataset
- settings:   reads the validated `difficulty:` section (its defaults live in the config schema)
- tables:     the difficulty table, the human-difficulty table and the figures
- steps:      the functions the workflow scripts call
"""
