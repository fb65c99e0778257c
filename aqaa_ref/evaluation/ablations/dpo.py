"""Masked against unmasked DPO: does dropping audio tokens from the DPO loss protect audio?"""
from __future__ import annotations

import copy
import json
from dataclasses import replace

import torch

from aqaa_ref.cache import atomic_write_json, config_hash
from aqaa_ref.data import strided
from aqaa_ref.evaluation.ablations.common import (AblationConfig, _answer_row, _eval_estimate, _generate_cached,
                                                  scores_dir)
from aqaa_ref.formats.id_layout import IGNORE_INDEX
from aqaa_ref.training.dpo import kept_positions, sequence_logps
from aqaa_ref.training.recipe import Assets, ensure_stage
from aqaa_ref.training.sequences import pad_collate, preference_pairs


# ----------------------------------------------------------------------------- 4. dpo

@torch.no_grad()
def preference_metrics(model, pairs: list[dict], vocab, batch_size: int = 16) -> dict:
    """On preference pairs: mean text log-prob margin log pi(y_w) - log pi(y_l) (text tokens
    only, summed per answer), the share of pairs it ranks right, and the mean per-token
    log-prob of the chosen answers' audio tokens."""
    model.eval()
    margins, audio_lp, audio_n = [], 0.0, 0
    for i in range(0, len(pairs), batch_size):
        b = pad_collate(pairs[i:i + batch_size])
        lp = {}
        for side in ("chosen", "rejected"):
            logits = model(input_ids=b[f"{side}_input_ids"], attention_mask=b[f"{side}_attention_mask"]).logits
            labels = b[f"{side}_labels"]
            lp[side] = sequence_logps(logits, labels, kept_positions(labels, vocab, masked=True))
            if side == "chosen":
                audio = (labels != IGNORE_INDEX) & vocab.is_audio(labels)
                audio_lp += float(sequence_logps(logits, labels, audio).sum())
                audio_n += int(audio[:, 1:].sum())
        margins += (lp["chosen"] - lp["rejected"]).tolist()
    n = max(1, len(margins))
    return {"text_margin": sum(margins) / n, "pair_accuracy": sum(m > 0 for m in margins) / n,
            "audio_logp": audio_lp / max(1, audio_n)}


def dpo_ablation(assets: Assets, cfg: AblationConfig, limit: int | None = None, progress: bool = True) -> list:
    """Masked vs unmasked DPO from SFT-1 (the recipe's DPO settings; only the mask differs)."""
    r = assets.recipe
    ensure_stage("sft1", assets, progress)
    flavours = {}
    for masked in (True, False):
        a = copy.copy(assets)
        a.recipe = replace(r, dpo_masked=masked, dpo=replace(r.dpo, seed=cfg.seed))
        if not a.is_shipped("dpo") and not (a.recipe.stage_dir("dpo") / "done.json").exists():
            print(f"training DPO ({'masked' if masked else 'unmasked'}, seed {cfg.seed}, {a.recipe.dpo.steps} steps "
                  f"of {a.recipe.dpo.batch_size} pairs, plus one reference pass over every train pair)")
        ensure_stage("dpo", a, progress)
        flavours["dpo_masked" if masked else "dpo_unmasked"] = a
    items = strided(assets.corpus.split("test"), limit or cfg.limit)
    print(_eval_estimate(len(items), 3, cfg) + " and held-out preference pairs")
    models = {"sft1": (r.stage_key("sft1"), lambda: assets.load_stage("sft1"))}
    models.update({k: (a.recipe.stage_key("dpo"), lambda a=a: a.load_stage("dpo")) for k, a in flavours.items()})
    pairs, rows = None, []
    for name, (key, load) in models.items():
        ans = _generate_cached(r, key, load, assets.builder, items, cfg)
        # pair metrics are memoised too: the evasion audio is re-synthesised on each call,
        # and eSpeak does not always give the same samples twice in one process
        pair_key = config_hash(key, [it.id for it in items], "pairs", r.seed, r.dpo_evasion_fraction)
        path = scores_dir(r) / f"{pair_key}.json"
        if path.exists():
            pm = json.loads(path.read_text())
        else:
            if pairs is None:
                pairs = preference_pairs(assets.builder, items, assets.evasion_audio(), r.seed, r.dpo_evasion_fraction)
            pm = {"pairs": len(pairs), **preference_metrics(load(), pairs, assets.vocab, cfg.eval_batch_size)}
            atomic_write_json(path, pm)
        rows.append({"variant": name, **_answer_row(assets.builder, items, ans), **pm})
    return rows
