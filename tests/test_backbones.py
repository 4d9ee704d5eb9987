"""Backbone loading: ElasticBERT renaming, offline MiniLM, the random demo BERT."""

import torch

from earlyexit.models.backbones import (BackboneSpec, elasticbert_to_bert_config, load_classifier, load_tokenizer,
                                 rename_elasticbert_state_dict)
from earlyexit.models.hashee import HashEEForSequenceClassification
from earlyexit.models.schedule import build_exit_schedule


def test_elasticbert_checkpoint_loads_into_bert_layout():
    from transformers import BertForSequenceClassification

    raw = {"model_type": "elasticbert", "vocab_size": 50, "hidden_size": 16, "num_attention_heads": 2,
           "intermediate_size": 32, "num_hidden_layers": 4, "max_position_embeddings": 32, "type_vocab_size": 2,
           "num_output_layers": 4, "max_output_layers": 4}
    # A fake ElasticBERT checkpoint: BERT's weights under `elasticbert.`, one pooler per layer, an MLM head.
    donor = BertForSequenceClassification(elasticbert_to_bert_config(raw, 4, 2)).state_dict()
    state = {k.replace("bert.", "elasticbert.", 1): v for k, v in donor.items()
             if k.startswith("bert.") and ".pooler." not in k}
    for i in range(4):
        state[f"elasticbert.encoder.pooler.{i}.dense.weight"] = torch.full((16, 16), float(i))
        state[f"elasticbert.encoder.pooler.{i}.dense.bias"] = torch.zeros(16)
    state["cls.predictions.bias"] = torch.zeros(50)

    renamed = rename_elasticbert_state_dict(state, num_layers=2)
    model = BertForSequenceClassification(elasticbert_to_bert_config(raw, 2, 2))
    missing, unexpected = model.load_state_dict(renamed, strict=False)
    assert sorted(missing) == ["classifier.bias", "classifier.weight"] and unexpected == []
    assert model.config.num_hidden_layers == 2
    assert torch.equal(model.bert.pooler.dense.weight, torch.full((16, 16), 1.0))  # pooler of layer 2
    assert torch.equal(model.bert.encoder.layer[1].output.dense.weight,
                       state["elasticbert.encoder.layer.1.output.dense.weight"])


def test_minilm_real_weights_through_hashee_equal_plain_model():
    spec = BackboneSpec(name="minilm", source="minilm")
    tokenizer = load_tokenizer(spec)
    hf = load_classifier(spec, num_labels=2, seed=0).eval()
    assert hf.config.num_hidden_layers == 6 and hf.config.hidden_size == 384
    enc = tokenizer(["a gripping, funny film", "dull"], ["yes", "no it is not"], padding=True, return_tensors="pt")
    reference = hf(**enc).logits
    exits = torch.where(enc["attention_mask"].bool(), 6, 0)
    model = HashEEForSequenceClassification(hf).eval()
    logits = model(enc["input_ids"], enc["token_type_ids"], build_exit_schedule(exits, 6))
    torch.testing.assert_close(logits, reference, atol=1e-5, rtol=0)


def test_minilm_truncated_to_first_layers():
    hf = load_classifier(BackboneSpec(name="m3", source="minilm", num_layers=3), num_labels=3, seed=0)
    assert len(hf.bert.encoder.layer) == 3 and hf.config.num_labels == 3


def test_random_backbone_is_seeded():
    spec = BackboneSpec(name="tiny", source="random", num_layers=2, hidden_size=16, num_attention_heads=2,
                        intermediate_size=32)
    a, b, c = (load_classifier(spec, 2, s).state_dict() for s in (1, 1, 2))
    key = "bert.encoder.layer.0.attention.self.query.weight"
    assert torch.equal(a[key], b[key]) and not torch.equal(a[key], c[key])
    assert a["bert.embeddings.word_embeddings.weight"].shape[0] == load_tokenizer(spec).vocab_size


def test_random_backbone_init_keeps_bert_base_layer_gain():
    # std x sqrt(hidden) is BERT-base's 0.02 x sqrt(768) at any width, so tiny models are not near-identity.
    for hidden in (16, 64):
        spec = BackboneSpec(name="tiny", source="random", num_layers=1, hidden_size=hidden, num_attention_heads=2,
                            intermediate_size=2 * hidden)
        weight = load_classifier(spec, 2, 0).bert.encoder.layer[0].attention.self.query.weight
        assert abs(weight.std().item() * hidden ** 0.5 - 0.02 * 768 ** 0.5) < 0.1
