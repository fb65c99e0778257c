"""Vocabulary extension: give a text-only Step-1 model rows for the audio tokens (facts §3).

Pre-training stage 1 adds 5,120 audio ids (1,024 linguistic + 4,096 semantic) after the
65,536 text ids, and trains embedding and LM head at 5x the backbone learning rate
(backbone 2e-5, new rows 1e-4), since those are the parameters that must move most.

Initialisation rule for the new rows (our choice; the paper does not say):

    new_row = mean(old rows) + noise,   noise ~ N(0, (noise_scale * std(old rows))^2)

applied to both ``embed_tokens`` and ``lm_head``. Why the mean: a new lm_head row equal to
the mean row gives each new token the mean text logit, and by Jensen exp(mean logit) <=
mean exp(logit), so each new token starts with no more probability than the average text
token. With g = log mean exp(l) - mean(l) >= 0 (the Jensen gap of the text logits l), the
n_new new tokens take n_new e^-g / (n_text + n_new e^-g) of the mass: about their share of
the vocabulary when the logits are flat (an untrained model: notebook 03 moves 27 % of the
mass), little for a trained, confident model (Hewitt 2021, "Initializing new word embeddings
for pretrained language models"). For a prompt of text ids the text tokens' relative
probabilities are kept exactly (their rows and the hidden states are unchanged); only their
total shrinks. The small noise makes the 5,120 rows distinct.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from aqaa_ref.formats.id_layout import AudioVocab


@torch.no_grad()
def _mean_init_rows(weight: torch.Tensor, n_new: int, noise_scale: float, gen) -> torch.Tensor:
    """weight (V_old, d) -> new rows (n_new, d) = mean + noise_scale * std * N(0, 1)."""
    w = weight.float()
    mean, std = w.mean(0), w.std(0)                                   # (d,), (d,)
    noise = torch.randn(n_new, w.shape[1], generator=gen) * (noise_scale * std)
    return (mean + noise).to(weight.dtype)


@torch.no_grad()
def extend_vocab_for_audio(model, vocab: AudioVocab, noise_scale: float = 0.1, seed: int = 0):
    """Resize ``model`` (a Step1ForCausalLM whose vocab is the text block) to ``vocab.size``.

    Rows [0, old) are kept bit for bit; rows [old, vocab.size) (audio + extra) follow the
    mean-plus-noise rule above. Updates ``model.config.vocab_size``. Returns the model.
    """
    old = model.config.vocab_size
    if old > vocab.size:
        raise ValueError(f"model vocab {old} is already larger than the extended vocab {vocab.size}")
    if old < vocab.text_vocab_size:
        raise ValueError(f"model vocab {old} is smaller than the text block {vocab.text_vocab_size}")
    n_new = vocab.size - old
    if n_new == 0:
        return model
    gen = torch.Generator().manual_seed(seed)
    emb, head = model.get_input_embeddings(), model.get_output_embeddings()
    d = emb.weight.shape[1]
    new_emb = nn.Embedding(vocab.size, d, device=emb.weight.device, dtype=emb.weight.dtype)
    new_emb.weight[:old] = emb.weight
    new_emb.weight[old:] = _mean_init_rows(emb.weight, n_new, noise_scale, gen).to(emb.weight.device)
    new_head = nn.Linear(d, vocab.size, bias=False, device=head.weight.device, dtype=head.weight.dtype)
    new_head.weight[:old] = head.weight
    new_head.weight[old:] = _mean_init_rows(head.weight, n_new, noise_scale, gen).to(head.weight.device)
    model.model.embed_tokens = new_emb
    model.lm_head = new_head
    model.config.vocab_size = vocab.size
    return model


def param_groups(model, lr: float, lr_mult_new: float = 5.0, weight_decay: float = 0.1) -> list[dict]:
    """AdamW groups for every backbone stage (``torch.optim.AdamW(param_groups(...))``):

    - "decay":    attention and MLP matrices, lr, ``weight_decay``
    - "no_decay": RMSNorm weights (1-D), lr, no decay
    - "embed":    model.embed_tokens and lm_head, lr * lr_mult_new, **no decay**

    Why no decay on the embedding and head: AdamW's decoupled decay shrinks every row at
    every step, also the rows of ids absent from the batch. The audio rows are new, and each
    audio id is rare in a batch, so decay would pull them towards zero between their
    updates. (minGPT exempts embeddings for the same reason.) Each group also carries
    ``lr_mult`` (its lr over the base lr), so a schedule sets ``g["lr"] = lr_at(step) *
    g["lr_mult"]`` and the 5x ratio survives warm-up and decay. Each parameter lands in
    exactly one group; empty groups are dropped.
    """
    groups = {"decay": [], "no_decay": [], "embed": []}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if "embed_tokens" in name or name.startswith("lm_head"):
            groups["embed"].append(p)
        elif p.ndim < 2:
            groups["no_decay"].append(p)
        else:
            groups["decay"].append(p)
    if not groups["embed"]:
        raise ValueError("no model.embed_tokens / lm_head parameters found: is this a Step1ForCausalLM?")
    settings = {"decay": (1.0, weight_decay), "no_decay": (1.0, 0.0), "embed": (lr_mult_new, 0.0)}
    return [{"name": name, "params": params, "lr": lr * settings[name][0], "lr_mult": settings[name][0],
             "weight_decay": settings[name][1]} for name, params in groups.items() if params]
