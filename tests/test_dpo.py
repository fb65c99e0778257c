"""Audio-token-masked DPO: hand computation, inverted-mask detection, zero audio gradient."""
import math

import pytest
import torch

from aqaa_ref.backbone.model import Step1Config, Step1ForCausalLM
from aqaa_ref.formats.id_layout import IGNORE_INDEX, AudioVocab
from aqaa_ref.training.dpo import (kept_positions, make_dpo_loss_fn, masked_dpo_loss, pair_count, reference_logps,
                                   sequence_logps)
from aqaa_ref.training.loop import TrainConfig, train
from aqaa_ref.training.sequences import pad_collate

VOCAB = AudioVocab(text_vocab_size=10, n_linguistic=4, n_semantic=6)  # text 0..9, L 10..13, S 14..19
# a prompt of 2 tokens, then text 3, audio 11 15 16, text 5, audio 12
LABELS = torch.tensor([[IGNORE_INDEX, IGNORE_INDEX, 3, 11, 15, 16, 5, 12]])


def test_kept_positions_keep_text_and_drop_audio_and_prompt():
    assert kept_positions(LABELS, VOCAB, masked=True).int().tolist() == [[0, 0, 1, 0, 0, 0, 1, 0]]
    assert kept_positions(LABELS, VOCAB, masked=False).int().tolist() == [[0, 0, 1, 1, 1, 1, 1, 1]]


def hand_sequence_logp(logits, labels, keep):
    """Straight loops: sum over t of keep[t+1] * log softmax(logits[t])[labels[t+1]]."""
    total = 0.0
    for t in range(labels.shape[1] - 1):
        if keep[0, t + 1]:
            row = logits[0, t]
            total += (row[labels[0, t + 1]] - torch.logsumexp(row, 0)).item()
    return total


def test_dpo_loss_equals_a_hand_computation():
    torch.manual_seed(0)
    lw, ll, rw, rl = (torch.randn(1, 8, VOCAB.size) for _ in range(4))
    labels_l = torch.tensor([[IGNORE_INDEX, IGNORE_INDEX, 7, 13, 14, 19, 2, 10]])
    keep_w, keep_l = kept_positions(LABELS, VOCAB), kept_positions(labels_l, VOCAB)
    pw, pl = sequence_logps(lw, LABELS, keep_w), sequence_logps(ll, labels_l, keep_l)
    qw, ql = sequence_logps(rw, LABELS, keep_w), sequence_logps(rl, labels_l, keep_l)
    beta = 0.3
    loss, _ = masked_dpo_loss(pw, pl, qw, ql, beta)
    hw = hand_sequence_logp(lw, LABELS, keep_w) - hand_sequence_logp(rw, LABELS, keep_w)
    hl = hand_sequence_logp(ll, labels_l, keep_l) - hand_sequence_logp(rl, labels_l, keep_l)
    hand = -math.log(1 / (1 + math.exp(-beta * (hw - hl))))
    assert loss.item() == pytest.approx(hand, rel=1e-5)
    # the masked reward uses exactly the two text positions (t=2 and t=6)
    assert pw.item() == pytest.approx(
        (torch.log_softmax(lw[0, 1], -1)[3] + torch.log_softmax(lw[0, 5], -1)[5]).item(), rel=1e-5)


def test_an_inverted_mask_changes_the_result():
    torch.manual_seed(1)
    logits = torch.randn(1, 8, VOCAB.size)
    keep = kept_positions(LABELS, VOCAB)
    inverted = (LABELS != IGNORE_INDEX) & ~keep  # summing the audio positions instead: the known pitfall
    right = sequence_logps(logits, LABELS, keep)
    wrong = sequence_logps(logits, LABELS, inverted)
    assert not torch.allclose(right, wrong)
    # and the masked value is exactly the text-only sum (fails if kept/ignored are swapped)
    assert right.item() == pytest.approx(hand_sequence_logp(logits, LABELS, keep), rel=1e-6)


def test_masked_mode_sends_exactly_zero_gradient_to_audio_positions():
    torch.manual_seed(2)
    logits = torch.randn(2, 8, VOCAB.size, requires_grad=True)
    labels = LABELS.repeat(2, 1)
    lp = sequence_logps(logits, labels, kept_positions(labels, VOCAB, masked=True))
    loss, _ = masked_dpo_loss(lp[:1], lp[1:], torch.zeros(1), torch.tensor([0.5]), beta=0.1)
    loss.sum().backward()
    # position t predicts labels[t+1]; audio targets sit at t+1 in {3, 4, 5, 7}
    for t in (2, 3, 4, 6):
        assert torch.all(logits.grad[:, t] == 0), t
    for t in (1, 5):  # the text positions do get gradient
        assert logits.grad[0, t].abs().sum() > 0
    unmasked = torch.randn(2, 8, VOCAB.size, requires_grad=True)
    lp = sequence_logps(unmasked, labels, kept_positions(labels, VOCAB, masked=False))
    masked_dpo_loss(lp[:1], lp[1:], torch.zeros(1), torch.tensor([0.5]), 0.1)[0].sum().backward()
    assert unmasked.grad[:, 2].abs().sum() > 0  # unmasked DPO does push on audio positions


def test_dpo_training_raises_the_chosen_margin(tmp_path):
    torch.manual_seed(0)
    model = Step1ForCausalLM(Step1Config(vocab_size=VOCAB.size, hidden_size=32, intermediate_size=64,
                                         num_attention_heads=4, num_attention_groups=2, num_hidden_layers=2))
    pairs = []
    for i in range(16):
        prompt = [1, 2 + i % 4]
        pairs.append(dict(chosen_input_ids=prompt + [3, 11, 15, 16],
                          chosen_labels=[IGNORE_INDEX, IGNORE_INDEX, 3, 11, 15, 16],
                          rejected_input_ids=prompt + [7, 11, 15, 16],
                          rejected_labels=[IGNORE_INDEX, IGNORE_INDEX, 7, 11, 15, 16]))
    pairs = reference_logps(model, pairs, VOCAB)
    assert pairs[0]["ref_chosen"] < 0
    cfg = TrainConfig(steps=15, batch_size=8, lr=5e-3, warmup_steps=1, checkpoint_every=0, progress=False)
    res = train(model, pairs, cfg, tmp_path, loss_fn=make_dpo_loss_fn(VOCAB, beta=0.5), token_count=pair_count)
    assert res.metrics[-1]["loss"] < res.metrics[0]["loss"]
    assert res.metrics[-1]["reward_accuracy"] == 1.0


def test_pad_collate_handles_pair_keys():
    b = pad_collate([dict(chosen_input_ids=[1, 2], chosen_labels=[IGNORE_INDEX, 2], ref_chosen=-1.0),
                     dict(chosen_input_ids=[1], chosen_labels=[1], ref_chosen=-2.0)])
    assert b["chosen_attention_mask"].tolist() == [[1, 1], [1, 0]]
    assert b["chosen_labels"].tolist() == [[IGNORE_INDEX, 2], [1, IGNORE_INDEX]]
    assert b["ref_chosen"].tolist() == [-1.0, -2.0]
