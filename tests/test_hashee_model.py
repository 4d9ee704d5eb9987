"""HashEE forward: equivalence with the plain backbone, freezing, padding and batching invariants."""

import pytest
import torch

from earlyexit.models.hashee import HashEEForSequenceClassification
from earlyexit.models.schedule import build_exit_schedule
from tests.conftest import tiny_classifier

LAYERS = 4


def _pad(ids, real, pad_id):
    return torch.where(real, ids, torch.full_like(ids, pad_id))


@pytest.mark.parametrize("kind,pad_id", [("bert", 0), ("roberta", 1)])
def test_all_tokens_at_last_layer_equals_plain_backbone(kind, pad_id, padded_batch):
    ids, real, _ = padded_batch
    ids = _pad(ids, real, pad_id)
    hf = tiny_classifier(kind, LAYERS)
    reference = hf(input_ids=ids, attention_mask=real.long()).logits
    model = HashEEForSequenceClassification(hf).eval()
    exits = torch.where(real, LAYERS, 0)
    logits = model(ids, None, build_exit_schedule(exits, LAYERS))
    torch.testing.assert_close(logits, reference, atol=1e-5, rtol=0)


def test_every_token_exiting_at_k_equals_the_first_k_layers(padded_batch):
    ids, real, _ = padded_batch
    hf = tiny_classifier("bert", LAYERS)
    reference = hf.bert(input_ids=ids, output_hidden_states=True).hidden_states  # no padding: all real
    model = HashEEForSequenceClassification(hf).eval()
    _, states = model(ids, None, build_exit_schedule(torch.full_like(ids, 2), LAYERS), output_hidden_states=True)
    torch.testing.assert_close(states[-1], reference[2], atol=1e-5, rtol=0)


def test_token_exiting_at_layer_k_keeps_its_layer_k_state(padded_batch):
    ids, real, _ = padded_batch
    exits = torch.randint(1, LAYERS + 1, ids.shape)
    exits[:, 0] = LAYERS
    exits = torch.where(real, exits, 0)
    model = HashEEForSequenceClassification(tiny_classifier("bert", LAYERS)).eval()
    _, states = model(ids, None, build_exit_schedule(exits, LAYERS), output_hidden_states=True)
    for b, t in real.nonzero().tolist():
        k = int(exits[b, t])
        # frozen after layer k: every later state is exactly the layer-k state ...
        for later in range(k + 1, LAYERS + 1):
            assert torch.equal(states[later][b, t], states[k][b, t])
        # ... and layer k really updated it
        assert not torch.allclose(states[k][b, t], states[k - 1][b, t])


def test_batch_equals_one_by_one_and_padding_is_inert(padded_batch):
    ids, real, lengths = padded_batch
    exits = torch.where(real, torch.randint(1, LAYERS + 1, ids.shape), 0)
    exits[:, 0] = LAYERS
    model = HashEEForSequenceClassification(tiny_classifier("bert", LAYERS)).eval()
    batched = model(ids, None, build_exit_schedule(exits, LAYERS))
    for row, n in enumerate(lengths.tolist()):
        single = model(ids[row:row + 1, :n], None, build_exit_schedule(exits[row:row + 1, :n], LAYERS))
        torch.testing.assert_close(single[0], batched[row], atol=1e-5, rtol=0)
    # whatever sits at padding positions changes nothing
    scrambled = torch.where(real, ids, torch.randint(5, 120, ids.shape))
    torch.testing.assert_close(model(scrambled, None, build_exit_schedule(exits, LAYERS)), batched, atol=1e-6, rtol=0)


def test_gradients_reach_every_layer_and_exited_tokens_embeddings(padded_batch):
    ids, real, _ = padded_batch
    exits = torch.where(real, 1, 0)
    exits[:, 0] = LAYERS
    hf = tiny_classifier("bert", LAYERS)
    model = HashEEForSequenceClassification(hf).train()
    model(ids, None, build_exit_schedule(exits, LAYERS)).sum().backward()
    for layer in hf.bert.encoder.layer:
        assert layer.attention.self.query.weight.grad.abs().sum() > 0
    # tokens that exit at layer 1 still feed [CLS] as keys/values, so their embeddings get gradient
    exited_ids = ids[0, 1:].unique()
    assert hf.bert.embeddings.word_embeddings.weight.grad[exited_ids].abs().sum() > 0


def test_early_exit_changes_the_output():
    ids = torch.randint(5, 120, (2, 9))
    ids[:, 0] = 2
    model = HashEEForSequenceClassification(tiny_classifier("bert", LAYERS)).eval()
    full = model(ids, None, build_exit_schedule(torch.full_like(ids, LAYERS), LAYERS))
    exits = torch.ones_like(ids)
    exits[:, 0] = LAYERS
    early = model(ids, None, build_exit_schedule(exits, LAYERS))
    assert not torch.allclose(full, early)
