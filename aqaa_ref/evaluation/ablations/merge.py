"""The checkpoint merge: SFT-1 : SFT-2 : DPO weights, single checkpoints against 1:1:1 and 5:5:1."""
from __future__ import annotations

from aqaa_ref.cache import config_hash
from aqaa_ref.data import strided
from aqaa_ref.evaluation.ablations.common import (AblationConfig, _answer_row, _eval_estimate, _generate_cached)
from aqaa_ref.training.merge import merge_state_dicts
from aqaa_ref.training.recipe import Assets, ensure_stage


# ----------------------------------------------------------------------------- 5. merge

def merge_ablation(assets: Assets, cfg: AblationConfig, limit: int | None = None, progress: bool = True) -> list:
    """Each of SFT-1, SFT-2, DPO alone vs their weighted averages (no training)."""
    r = assets.recipe
    parents = ("sft1", "sft2", "dpo")
    for s in parents:
        ensure_stage(s, assets, progress)
    items = strided(assets.corpus.split("test"), limit or cfg.limit)
    print(_eval_estimate(len(items), len(parents) + len(cfg.merges), cfg))
    sds: dict = {}

    def state(stage):
        if stage not in sds:
            sds[stage] = assets.load_stage(stage).state_dict()
        return sds[stage]

    def merged(weights):
        m = assets.new_model()
        m.load_state_dict(merge_state_dicts([state(p) for p in parents], weights))
        return m.eval()

    models = {s: (r.stage_key(s), lambda s=s: assets.load_stage(s)) for s in parents}
    for w in cfg.merges:
        name = "merge_" + "_".join(f"{x:g}" for x in w)
        models[name] = (config_hash([r.stage_key(p) for p in parents], list(w)), lambda w=w: merged(w))
    rows = []
    for name, (key, load) in models.items():
        ans = _generate_cached(r, key, load, assets.builder, items, cfg)
        rows.append({"variant": name, **_answer_row(assets.builder, items, ans)})
    return rows
