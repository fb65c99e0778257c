"""Dual codebook against linguistic-only and semantic-only audio tokens."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from aqaa_ref.backbone.model import Step1ForCausalLM
from aqaa_ref.data import strided
from aqaa_ref.evaluation.ablations.common import (AblationConfig, Variant, _builder, _eval_estimate, _generate_cached,
                                                  _train_key, _variant_dir, train_variants)
from aqaa_ref.formats.answer_format import Format, get_format
from aqaa_ref.formats.id_layout import IGNORE_INDEX, whole_groups
from aqaa_ref.inference.generation import score_answers
from aqaa_ref.training.loop import load_weights
from aqaa_ref.training.recipe import Assets
from aqaa_ref.training.sequences import pad_collate
from aqaa_ref.training.sequences import AudioTable, SequenceBuilder, pretrain_examples, sft_examples


# ----------------------------------------------------------------------------- 3. codebook

class SingleStreamTable(AudioTable):
    """An audio table that keeps one stream: per 120 ms group, 2 linguistic ("linguistic"),
    3 semantic ("semantic") or all 5 as LLSSS ("dual"). Groups as in the dual stream (the
    incomplete tail dropped), so every variant covers the same audio."""

    def __init__(self, codes: dict, vocab, stream: str):
        if stream not in ("dual", "linguistic", "semantic"):
            raise ValueError(f"stream must be dual, linguistic or semantic, got {stream!r}")
        super().__init__(codes, vocab)
        self.stream = stream

    def ids(self, path: str) -> list[int]:
        if self.stream == "dual":
            return super().ids(path)
        lc, sc = self.codes[path]
        n = whole_groups(len(lc), len(sc))
        if self.stream == "linguistic":
            return [self.vocab.linguistic_offset + c for c in lc[:2 * n]]
        return [self.vocab.semantic_offset + c for c in sc[:3 * n]]


def single_stream_format(fmt: Format, stream: str) -> Format:
    """The answer format for one stream, keeping the time per round: ratio_10_15 (10 text :
    6 L : 9 S) -> 10 text : 6 L (group (2, 0)) or 10 text : 9 S (group (0, 3))."""
    if stream == "dual":
        return fmt
    group = (2, 0) if stream == "linguistic" else (0, 3)
    tri = fmt.tri_codebook()
    if tri is None:                                        # text_cot / audio_only: no per-round count
        return Format(f"{fmt.name}_{stream}", fmt.text_per_chunk, None, group)
    y = tri[1] if stream == "linguistic" else tri[2]
    return Format(f"ratio_{tri[0]}_{y}_{stream}", tri[0], y, group)


def stream_builder(assets: Assets, stream: str) -> SequenceBuilder:
    table = SingleStreamTable(assets.table.codes, assets.vocab, stream)
    return _builder(assets, single_stream_format(get_format(assets.recipe.format), stream), table=table)


@torch.no_grad()
def token_type_perplexity(model, examples: list[dict], builder: SequenceBuilder, batch_size: int = 16) -> dict:
    """Teacher-forced perplexity over the learned positions, split by the label's type:
    text (plain text ids), linguistic, semantic and all audio. Markers and <|EOT|> are in
    none of them. Returns {type: perplexity or None when the type never occurs}."""
    model.eval()
    vocab, special = builder.vocab, builder.special
    sums = {k: [0.0, 0] for k in ("text", "linguistic", "semantic", "audio")}
    for i in range(0, len(examples), batch_size):
        b = pad_collate(examples[i:i + batch_size])
        logits = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits[:, :-1].float()
        labels = b["labels"][:, 1:]                                            # (B, T-1)
        nll = F.cross_entropy(logits.transpose(1, 2), labels.clamp(min=0), reduction="none")  # (B, T-1)
        valid = labels != IGNORE_INDEX
        plain = torch.ones_like(valid)
        for t in special.all():
            plain &= labels != t
        masks = {"text": valid & plain & vocab.is_text(labels), "linguistic": valid & vocab.is_linguistic(labels),
                 "semantic": valid & vocab.is_semantic(labels), "audio": valid & vocab.is_audio(labels)}
        for k, m in masks.items():
            sums[k][0] += float(nll[m].sum())
            sums[k][1] += int(m.sum())
    return {k: (math.exp(s / n) if n else None) for k, (s, n) in sums.items()}


def _initial_model(assets: Assets, seed: int):
    """The from-scratch backbone of a codebook variant: the recipe's initialisation for seed 0,
    another draw for every other seed."""
    if seed == 0:
        return assets.new_model()
    torch.manual_seed(assets.recipe.seed * 1_000_003 + seed)
    return Step1ForCausalLM(assets.recipe.backbone)


def codebook_ablation(assets: Assets, cfg: AblationConfig, limit: int | None = None, progress: bool = True) -> list:
    """Dual vs linguistic-only vs semantic-only audio tokens, each pre-trained and SFT'd from scratch."""
    r = assets.recipe
    common = {k: v for k, v in r.stage_config("pretrain").items() if k != "train"}  # data, tokenizer, backbone
    train_items = strided(assets.corpus.split("train"), cfg.train_items)
    builders = {s: stream_builder(assets, s) for s in cfg.streams}
    pre, sft = [], []
    for s in cfg.streams:
        b = builders[s]
        pd = _variant_dir(r, "codebook", f"{s}-pretrain", common, s, _train_key(cfg.codebook_pretrain))
        pre.append(Variant(f"{s}-pretrain", pd, lambda: _initial_model(assets, cfg.seed),
                           lambda b=b: pretrain_examples(b, assets.corpus, r.pretrain_mix, r.seed), cfg.codebook_pretrain))
        sd = _variant_dir(r, "codebook", f"{s}-sft", pd.name, [it.id for it in train_items],
                          cfg.codebook_aqta_fraction, _train_key(cfg.codebook_sft))
        sft.append(Variant(s, sd, lambda pd=pd: load_weights(assets.new_model(), pd),
                           lambda b=b: sft_examples(b, train_items, cfg.codebook_aqta_fraction, r.seed),
                           cfg.codebook_sft))
    pending = [v for v in pre + sft if not v.done]
    if pending:
        print(f"codebook: {len(pending)} training run(s) pending (pre-training from scratch, then SFT)")
    train_variants(pre, cfg, progress)
    train_variants(sft, cfg, progress)
    items = strided(assets.corpus.split("test"), limit or cfg.limit)
    print(_eval_estimate(len(items), len(sft), cfg) + " (text answers: far less)")
    rows = []
    for v in sft:
        b = builders[v.name]
        model = load_weights(assets.new_model(), v.out_dir).eval()
        ppl = token_type_perplexity(model, [b.sft_example(it) for it in items], b, cfg.eval_batch_size)
        ans = _generate_cached(r, v.out_dir.name, lambda: model, b, items, cfg, output="text")
        right = [float(s.text_correct) for s in score_answers(b, items, ans)]
        rows.append({"variant": v.name, "n": len(items), "ppl_text": ppl["text"], "ppl_linguistic": ppl["linguistic"],
                     "ppl_semantic": ppl["semantic"], "ppl_audio": ppl["audio"],
                     "aqta_text_accuracy": sum(right) / max(1, len(items)), "final_loss": v.info()["final_loss"],
                     "per_item": {"aqta_text_accuracy": right}})
    return rows
