"""Audio-token-masked DPO (the paper's §3.3), written out so every term is visible.

Standard DPO scores an answer y to a prompt x by the policy/reference log-ratio summed
over its tokens. Step-Audio-AQAA keeps only the *text* tokens of the answer:

    r(x, y) = Σ_t  I(y_t ∉ A) · ( log π(y_t | x, y_<t) − log π_ref(y_t | x, y_<t) )
    loss    = −log σ( β · ( r(x, y_w) − r(x, y_l) ) )

where A is the set of audio token ids (linguistic and semantic). The preference signal
then flows only through text positions: the audio tokens that follow each text chunk are
left to what SFT taught, which the paper found necessary (unmasked DPO misaligned text
and audio and damaged audio generation). Log-probs are *summed* over kept tokens, as in
the original DPO code and TRL (averaging is known to destabilise).

A known pitfall elsewhere: summing over the *ignored* positions instead of the kept ones
(an inverted mask). ``tests/test_dpo.py`` fails if the mask here is inverted.

Worked example (ids from the toy layout: text < 1000 <= audio; -100 = prompt)::

    labels      [-100, -100,  17,   1003, 1007, 1010,  42,   1001]
    kept (text) [ F,    F,    T,    F,    F,    F,     T,    F   ]    masked=True
    kept (all)  [ F,    F,    T,    T,    T,    T,     T,    T   ]    masked=False
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from aqaa_ref.formats.id_layout import IGNORE_INDEX, AudioVocab


def kept_positions(labels: torch.Tensor, vocab: AudioVocab, masked: bool = True) -> torch.Tensor:
    """Which label positions count in the DPO reward. labels (B, T) -> bool (B, T).

    Always drops IGNORE_INDEX (prompt and padding); with ``masked`` also drops audio tokens.
    """
    keep = labels != IGNORE_INDEX
    if masked:
        keep = keep & ~vocab.is_audio(labels)
    return keep


def sequence_logps(logits: torch.Tensor, labels: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Sum of log p(label_t) over kept positions, per sequence.

    Args:
        logits: (B, T, V) from the model on input_ids; position t predicts token t+1.
        labels: (B, T) aligned with input_ids (IGNORE_INDEX where not an answer token).
        keep:   (B, T) bool from :func:`kept_positions`.
    Returns:
        (B,) summed log-probabilities.
    """
    logits, labels, keep = logits[:, :-1].float(), labels[:, 1:], keep[:, 1:]
    logp = torch.log_softmax(logits, dim=-1)                                    # (B, T-1, V)
    tok = logp.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)        # (B, T-1)
    return (tok * keep).sum(dim=-1)


def masked_dpo_loss(pi_chosen: torch.Tensor, pi_rejected: torch.Tensor, ref_chosen: torch.Tensor,
                    ref_rejected: torch.Tensor, beta: float) -> tuple[torch.Tensor, dict]:
    """Per-pair DPO loss from summed (already masked) log-probs. Each input is (B,).

    Returns:
        loss (B,): −log σ(β (r_w − r_l)) with r = logp_policy − logp_ref.
        stats: rewards and the fraction of pairs ranked correctly.
    """
    r_w = pi_chosen - ref_chosen                                   # implicit reward of the preferred answer
    r_l = pi_rejected - ref_rejected
    loss = -F.logsigmoid(beta * (r_w - r_l))
    stats = {"reward_chosen": (beta * r_w).detach().mean().item(),
             "reward_rejected": (beta * r_l).detach().mean().item(),
             "reward_accuracy": (r_w > r_l).float().mean().item()}
    return loss, stats


def make_dpo_loss_fn(vocab: AudioVocab, beta: float = 0.1, masked: bool = True):
    """A ``train()`` loss function over batches of preference pairs.

    A batch holds ``chosen_input_ids``/``chosen_labels``, ``rejected_input_ids``/
    ``rejected_labels`` (B, T) and precomputed reference log-probs ``ref_chosen``,
    ``ref_rejected`` (B,) (the frozen reference is run once, before training, with the
    same mask: see :func:`reference_logps`). The step's normaliser is its pair count.
    """
    def loss_fn(model, batch, norm):
        lp = {}
        for side in ("chosen", "rejected"):
            logits = model(input_ids=batch[f"{side}_input_ids"], attention_mask=batch[f"{side}_attention_mask"]).logits
            labels = batch[f"{side}_labels"]
            lp[side] = sequence_logps(logits, labels, kept_positions(labels, vocab, masked))
        loss, stats = masked_dpo_loss(lp["chosen"], lp["rejected"], batch["ref_chosen"], batch["ref_rejected"], beta)
        return loss.sum() / norm, stats

    return loss_fn


def pair_count(batch: dict) -> int:
    return int(batch["chosen_input_ids"].shape[0])


@torch.no_grad()
def reference_logps(model, pairs: list[dict], vocab: AudioVocab, masked: bool = True, batch_size: int = 16,
                    pad_id: int = 0) -> list[dict]:
    """Run the frozen reference once over every pair; return the pairs with ``ref_chosen``
    and ``ref_rejected`` added (floats)."""
    from aqaa_ref.training.sequences import pad_collate

    model.eval()
    out = []
    for i in range(0, len(pairs), batch_size):
        chunk = pairs[i:i + batch_size]
        b = pad_collate(chunk, pad_id)
        res = {}
        for side in ("chosen", "rejected"):
            logits = model(input_ids=b[f"{side}_input_ids"], attention_mask=b[f"{side}_attention_mask"]).logits
            labels = b[f"{side}_labels"]
            res[side] = sequence_logps(logits, labels, kept_positions(labels, vocab, masked)).tolist()
        out += [dict(p, ref_chosen=c, ref_rejected=r) for p, c, r in zip(chunk, res["chosen"], res["rejected"])]
    return out
