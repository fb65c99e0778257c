"""Shipped checkpoints: every trained model of a recipe in one folder, loaded the transformers way.

    python -m aqaa_ref export checkpoints/toy          # the toy recipe's trained models -> this layout
    aqaa = AQAA.from_pretrained("checkpoints/toy")     # no corpus, no training: seconds

The layout (each component in the format of its kind, no pickle anywhere)::

    checkpoints/toy/
      provenance.json        how it was made: command, commit, configs, cache keys, seconds, machine, scores
      aqaa.json              what the pipeline needs besides weights: answer format, concat mode, stage names
      text_tokenizer/        BPE + special tokens            PreTrainedTokenizerFast.save_pretrained
      dual_tokenizer/        linguistic + semantic encoders  weights.safetensors + config.json
      backbone/pretrain/ sft1/ sft2/ dpo/   the four trained stages   Step1ForCausalLM.save_pretrained
                                                           + training.json (loss per step, seconds)
      backbone/merge.json    the answering model: the 5:5:1 merge of sft1, sft2, dpo, as its recipe
      vocoder/flow/          tokens -> mel flow model        model.safetensors + config.json
      vocoder/mel2wav/       mel -> waveform                 model.safetensors + config.json
      judges/recognizer/     the independent CTC recognizer  model.safetensors + config.json
      judges/classifiers/    voice and language heads        classifiers.safetensors + config.json

Weights are stored in float16 (half the bytes; every component is loaded back into float32,
so only the rounding of the stored weights differs, and the scores measured on these files
are the ones in provenance.json). The flow vocoder's weight matrices are stored in int8 with
one scale per output row (:func:`quantize_int8`; ``aqaa.json`` lists such components): 3.6 MB
less, and on the 324-item evaluation its score differences from float16 stay inside the
differences that reseeding the flow's noise makes (``benchmarks/bench_storage.py``), which is
what keeps the toy folder under 40 MB. ``export(int8=())`` stores everything in float16;
:func:`store_int8` re-stores a component of an existing folder. Integer tensors (codebook
indices, counters) keep their type.
The merge is not stored a fifth time: it is a weighted average of three shipped stages
(notebook 06), so ``load_backbone(folder)`` computes it on load, in float32, from them.

A missing, truncated or corrupt file is a one-line :class:`CheckpointError` naming the file.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
from pathlib import Path

import torch

from aqaa_ref.cache import atomic_write_bytes, atomic_write_json

#: the backbone stages shipped beside the merge (notebooks 04-06 show them)
SHIPPED_STAGES = ("pretrain", "sft1", "sft2", "dpo")
#: components that may be stored with int8 weight matrices (``export(int8=...)``, ``--int8``,
#: :func:`store_int8`); each keeps its weights in ``<component>/model.safetensors``
INT8_OPTIONS = ("vocoder/flow", "vocoder/mel2wav", "judges/recognizer")
#: stored in int8 by default: the flow vocoder. Measured on the 324 test questions at four noise
#: seeds, int8 minus float16 moved `correct` by -0.003..+0.003 and `voice_ok` by -0.015..+0.025,
#: inside what reseeding the float16 flow's noise moves them (+-0.034, +-0.019); README, "Shipped
#: checkpoints"
DEFAULT_INT8 = ("vocoder/flow",)
LAYOUT_VERSION = "aqaa_ref.checkpoints/1"


class CheckpointError(ValueError):
    """A shipped-checkpoint file is missing, truncated or corrupt (the message names it)."""


# ----------------------------------------------------------------------------- files

def _need(path: Path, what: str) -> Path:
    if not path.exists():
        raise CheckpointError(f"{path}: missing ({what}); write the folder with `python -m aqaa_ref export {path.parent}`")
    return path


def read_json(path: Path, what: str = "a config") -> dict:
    """A JSON file of a checkpoint folder, or a one-line error naming it."""
    try:
        return json.loads(_need(path, what).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path}: not valid JSON ({e.__class__.__name__}: {e}); the file is truncated or corrupt") from None


def read_safetensors(path: Path, what: str = "weights") -> dict[str, torch.Tensor]:
    """A safetensors file of a checkpoint folder as float32 / integer tensors, or a one-line error."""
    from safetensors.torch import load

    try:
        tensors = load(_need(path, what).read_bytes())
    except CheckpointError:
        raise
    except Exception as e:  # safetensors raises its own error types for bad headers and short files
        raise CheckpointError(f"{path}: unreadable safetensors ({e}); the file is truncated or corrupt") from None
    out = {}
    for k, v in tensors.items():
        if k.endswith(INT8):
            name = k[:-len(INT8)]
            scale = tensors.get(name + SCALE)
            if scale is None:
                raise CheckpointError(f"{path}: {name} is stored in int8 without its {SCALE} tensor; the file is corrupt")
            out[name] = dequantize_int8(v, scale)
        elif not k.endswith(SCALE):
            out[k] = v.float() if v.is_floating_point() else v
    return out


# int8 storage: weight matrices / conv kernels as int8 plus one float16 scale per output channel
INT8, SCALE = ":int8", ":scale"


def quantize_int8(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(out, ...) float -> int8 of the same shape and an (out, 1, ...) scale: symmetric, per
    output channel (row), round to nearest; ``q * scale`` is within scale / 2 of ``w``."""
    amax = w.detach().float().abs().flatten(1).amax(1).clamp_min(1e-12)
    scale = (amax / 127.0).view(-1, *([1] * (w.dim() - 1)))
    return torch.round(w.float() / scale).clamp(-127, 127).to(torch.int8), scale.to(torch.float16)


def dequantize_int8(q: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return q.float() * scale.float()


def write_safetensors(path: Path, tensors: dict[str, torch.Tensor], dtype=torch.float16, int8: bool = False) -> None:
    """Floating tensors stored as ``dtype``, the rest as they are; atomic. ``int8``: every
    floating tensor of two or more dimensions (weight matrices, conv kernels) is stored as int8
    with a per-row scale instead (a quarter of float32's bytes); biases and norms stay ``dtype``."""
    from safetensors.torch import save

    out = {}
    for k, v in tensors.items():
        if int8 and v.is_floating_point() and v.dim() >= 2:
            out[k + INT8], out[k + SCALE] = quantize_int8(v)
        else:
            out[k] = v.to(dtype) if v.is_floating_point() else v
    atomic_write_bytes(path, save({k: v.contiguous() for k, v in out.items()}))


def _copy_component(src: Path, dst: Path, weights: str, dtype, int8: bool = False) -> None:
    """A cached model folder (safetensors + config.json) -> the shipped layout, weights in ``dtype``
    (weight matrices in int8 when ``int8``)."""
    from safetensors.torch import load_file

    dst.mkdir(parents=True, exist_ok=True)
    write_safetensors(dst / weights, load_file(str(src / weights)), dtype, int8=int8)
    shutil.copyfile(src / "config.json", dst / "config.json")


def folder_sizes(folder) -> dict[str, int]:
    """Bytes per top-level component (files summed), and "total"."""
    folder = Path(folder)
    sizes: dict[str, int] = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            rel = p.relative_to(folder).parts
            key = "/".join(rel[:2]) if rel[0] in ("backbone", "vocoder", "judges") and len(rel) > 2 else rel[0]
            sizes[key] = sizes.get(key, 0) + p.stat().st_size
    sizes["total"] = sum(sizes.values())
    return sizes


# ----------------------------------------------------------------------------- export

@contextlib.contextmanager
def _quiet_transformers():
    """No transformers progress bars (one small shard each) inside the block."""
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if bars:
            hf_logging.enable_progress_bar()


def _check_int8(components) -> tuple[str, ...]:
    unknown = sorted(set(components) - set(INT8_OPTIONS))
    if unknown:
        raise ValueError(f"int8 storage is offered for {', '.join(INT8_OPTIONS)}, not {', '.join(unknown)}")
    return tuple(components)


def export(recipe, folder, judges_preset: str | None = None, dtype=torch.float16, provenance: dict | None = None,
           progress: bool = True, int8=DEFAULT_INT8) -> dict[str, int]:
    """Write a recipe's trained models (all cached: train them first) in the shipped layout.

    Returns :func:`folder_sizes`. ``provenance`` is merged into ``provenance.json``. ``int8``:
    components (of :data:`INT8_OPTIONS`) stored with int8 weight matrices (ignored for float32;
    ``()`` for none)."""
    int8 = _check_int8(int8) if dtype != torch.float32 else ()
    from aqaa_ref.cache import cache_dir
    from aqaa_ref.evaluation.judges import JudgesConfig, judges_dir
    from aqaa_ref.evaluation.recognizer import recognizer_dir
    from aqaa_ref.tokenizer.dual import tokenizer_dir
    from aqaa_ref.training.recipe import STAGES, Assets
    from aqaa_ref.vocoder.train import vocoder_dir
    from aqaa_ref.vocoder.mel2wav import mel2wav_dir

    folder = Path(folder)
    assets = Assets(recipe, progress)
    missing = [s for s in STAGES if not (recipe.stage_dir(s) / "done.json").exists()]
    if missing:
        raise CheckpointError(f"stages {', '.join(missing)} of recipe {recipe.name!r} are not trained; "
                              "run `python -m aqaa_ref train` first")
    folder.mkdir(parents=True, exist_ok=True)
    # text tokenizer: its own save_pretrained folder
    assets.tok.save_pretrained(str(folder / "text_tokenizer"))
    _copy_component(tokenizer_dir(assets.corpus, recipe.tokenizer), folder / "dual_tokenizer", "weights.safetensors", dtype)
    # the backbone: each stage's last checkpoint; the merge as its recipe (computed on load)
    from aqaa_ref.training.recipe import PARENTS

    for stage in SHIPPED_STAGES:
        model = assets.load_stage(stage).to(dtype)
        with _quiet_transformers():
            model.save_pretrained(str(folder / "backbone" / stage), safe_serialization=True)
        # the stage's training record (loss per step, seconds), shipped beside its weights
        done = read_json(recipe.stage_dir(stage) / "done.json", f"the {stage} stage's summary")
        atomic_write_json(folder / "backbone" / stage / "training.json",
                          {k: done[k] for k in ("stage", "key", "examples", "items", "pairs", "final_loss", "losses",
                                                "seconds") if k in done})
    atomic_write_json(folder / "backbone" / "merge.json", {"stages": list(PARENTS["merge"]),
                                                           "weights": list(recipe.merge_weights)})
    for name, src, weights in (("vocoder/flow", vocoder_dir(assets.corpus, assets.dual, recipe.vocoder), "model.safetensors"),
                               ("vocoder/mel2wav", mel2wav_dir(assets.corpus, recipe.mel2wav), "model.safetensors")):
        _need(src / "config.json", f"the trained {name}: run `python -m aqaa_ref train` first")
        _copy_component(src, folder / name, weights, dtype, int8=name in int8)
    if judges_preset:
        jcfg = JudgesConfig.from_preset(judges_preset)
        _copy_component(recognizer_dir(assets.corpus, jcfg.recognizer), folder / "judges/recognizer", "model.safetensors",
                        dtype, int8="judges/recognizer" in int8)
        _copy_component(judges_dir(assets.corpus, jcfg), folder / "judges/classifiers", "classifiers.safetensors", dtype)
        atomic_write_json(folder / "judges" / "judges.json", {"config": jcfg.training_key() | {
            "correct_threshold": jcfg.correct_threshold, "rate_tolerance": jcfg.rate_tolerance,
            "f0_tolerance": jcfg.f0_tolerance, "silence_seconds": jcfg.silence_seconds}, "preset": judges_preset})
    atomic_write_json(folder / "aqaa.json", dict(
        layout=LAYOUT_VERSION, recipe=recipe.name, format=recipe.format, concat_mode=recipe.concat_mode,
        stages=["merge", *SHIPPED_STAGES], dtype=str(dtype).replace("torch.", ""), int8=list(int8)))
    keys = {s: recipe.stage_key(s) for s in STAGES}
    prov = dict(recipe=recipe.name, stage_keys=keys, dtype=str(dtype).replace("torch.", ""),
                cache=str(cache_dir().name)) | (provenance or {})
    atomic_write_json(folder / "provenance.json", prov)
    return folder_sizes(folder)


def store_int8(folder, components, record: dict | None = None) -> dict[str, int]:
    """Re-store ``components`` of an existing shipped folder with int8 weight matrices, from the
    weights stored there (float16 -> int8 + per-row scale), in place and atomically per file;
    ``aqaa.json`` lists them and ``provenance.json`` gains ``record`` under ``"int8_storage"``.
    Returns :func:`folder_sizes`. A component already in int8 is left as it is."""
    from safetensors.torch import load_file

    folder = Path(folder)
    components = _check_int8(components)
    meta_path = folder / "aqaa.json"
    meta = read_json(meta_path, "the pipeline's settings")
    dtype = getattr(torch, meta.get("dtype", "float16"))
    done = list(meta.get("int8", []))
    for name in components:
        if name in done:
            continue
        path = _need(folder / name / "model.safetensors", f"the {name} weights")
        tensors = load_file(str(path))
        if any(k.endswith(INT8) for k in tensors):
            raise CheckpointError(f"{path}: already holds int8 tensors but aqaa.json does not list {name}")
        write_safetensors(path, {k: v.float() if v.is_floating_point() else v for k, v in tensors.items()},
                          dtype, int8=True)
        done.append(name)
    atomic_write_json(meta_path, meta | {"int8": done})
    if record is not None:
        prov_path = folder / "provenance.json"
        prov = read_json(prov_path, "the provenance") if prov_path.exists() else {}
        atomic_write_json(prov_path, prov | {"int8_storage": record})
    return folder_sizes(folder)


def retrain_flow(folder, overrides, preset: str = "toy", record: dict | None = None, progress: bool = True) -> dict:
    """Give a shipped folder another flow vocoder: the recipe's vocoder config with ``overrides``
    (``VocoderConfig`` fields, ``["steps=8000"]``), trained on the folder's own tokenizer codes
    (or taken from the cache, where ``benchmarks/bench_vocoder_ceiling.py --checkpoints`` leaves
    it), stored in place of the shipped flow in the folder's dtype (int8 when the folder stores
    the flow so). Nothing else changes. ``provenance.json`` gains ``"flow"``: the overrides, the
    training seconds and ``record``. Returns :func:`folder_sizes`."""
    from aqaa_ref.overrides import apply_overrides
    from aqaa_ref.training.recipe import Assets, Recipe
    from aqaa_ref.vocoder.train import load_or_train_vocoder, vocoder_dir

    folder = Path(folder)
    meta = read_json(folder / "aqaa.json", "the pipeline's settings")
    recipe = Recipe.from_preset(preset)
    cfg = apply_overrides(recipe.vocoder, list(overrides))
    assets = Assets(recipe, progress, pretrained=folder)
    flow = load_or_train_vocoder(assets.corpus, assets.dual, cfg, progress)
    int8 = "vocoder/flow" in meta.get("int8", [])
    _copy_component(vocoder_dir(assets.corpus, assets.dual, cfg), folder / "vocoder" / "flow", "model.safetensors",
                    getattr(torch, meta.get("dtype", "float16")), int8=int8)
    prov_path = folder / "provenance.json"
    prov = read_json(prov_path, "the provenance") if prov_path.exists() else {}
    info = {"overrides": list(overrides), "preset": preset, "trained_on": "this folder's dual tokenizer's codes",
            "train_seconds": flow.train_info.get("train_seconds"), "stored": "int8 from float32" if int8 else
            meta.get("dtype", "float16")} | (record or {})
    atomic_write_json(prov_path, prov | {"flow": info})
    return folder_sizes(folder)


# ----------------------------------------------------------------------------- load

def layout(folder) -> dict:
    """``aqaa.json`` of a shipped folder (checked), or a one-line error."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"{folder}: no such checkpoint folder")
    meta = read_json(folder / "aqaa.json", "the pipeline's settings")
    if meta.get("layout") != LAYOUT_VERSION:
        raise CheckpointError(f"{folder / 'aqaa.json'}: layout {meta.get('layout')!r}, expected {LAYOUT_VERSION!r}")
    return meta


def load_text_tokenizer(folder):
    from aqaa_ref.formats.text_tokenizer import load_text_tokenizer as load

    path = Path(folder) / "text_tokenizer"
    _need(path / "tokenizer.json", "the text tokenizer")
    try:
        return load(str(path))
    except Exception as e:
        raise CheckpointError(f"{path / 'tokenizer.json'}: unreadable tokenizer ({e.__class__.__name__}: {e})") from None


def load_dual(folder):
    from aqaa_ref.tokenizer.dual import DualTokenizer

    path = Path(folder) / "dual_tokenizer"
    read_json(path / "config.json", "the dual tokenizer's config")
    weights = _need(path / "weights.safetensors", "the dual tokenizer's weights")
    try:                                      # one read of the weights, a one-line error if they are bad
        dual = DualTokenizer.load(path)
    except Exception as e:
        raise CheckpointError(f"{weights}: unreadable safetensors ({e}); the file is truncated or corrupt") from None
    dual.source = "shipped-" + hashlib.sha1(weights.read_bytes()).hexdigest()[:12]   # keys its cached codes
    return dual


def load_backbone(folder, stage: str = "merge"):
    """The Step-1 backbone of one stage, float32, eval mode: "merge" (the answering model, the
    weighted average that ``backbone/merge.json`` names) or one of the shipped stages, each a
    ``save_pretrained`` folder loaded with ``Step1ForCausalLM.from_pretrained``."""
    from aqaa_ref.backbone.model import Step1ForCausalLM
    from aqaa_ref.training.merge import merge_state_dicts

    stages = layout(folder)["stages"]
    if stage not in stages:
        raise CheckpointError(f"{folder}: no backbone stage {stage!r} (shipped: {', '.join(stages)})")
    if stage == "merge":
        recipe = read_json(Path(folder) / "backbone" / "merge.json", "the merge's recipe")
        parts = [load_backbone(folder, s) for s in recipe["stages"]]
        model = parts[0]
        model.load_state_dict(merge_state_dicts([p.state_dict() for p in parts], recipe["weights"]))
        return model.eval()
    path = Path(folder) / "backbone" / stage
    read_json(path / "config.json", f"the {stage} backbone's config")
    read_safetensors(path / "model.safetensors", f"the {stage} backbone's weights")    # a clear error if bad
    with _quiet_transformers():
        return Step1ForCausalLM.from_pretrained(str(path), dtype=torch.float32).eval()


def load_training(folder, stage: str) -> dict | None:
    """A shipped stage's training record (``losses`` per step, ``seconds``, ``final_loss``), or
    None for a folder exported before the record was shipped."""
    path = Path(folder) / "backbone" / stage / "training.json"
    return read_json(path, f"the {stage} stage's training record") if path.exists() else None


def load_vocoder(folder):
    """The flow vocoder and mel-to-wave model as one :class:`~aqaa_ref.vocoder.Vocoder`."""
    from aqaa_ref.vocoder import Vocoder
    from aqaa_ref.vocoder.flow import FlowVocoder
    from aqaa_ref.vocoder.mel2wav import ISTFTVocoder, mel2wav_config
    from aqaa_ref.vocoder.train import vocoder_config

    base = Path(folder) / "vocoder"
    meta = read_json(base / "flow" / "config.json", "the flow vocoder's config")
    flow = FlowVocoder(vocoder_config(meta["config"]), meta["n_linguistic"], meta["n_semantic"])
    flow.load_state_dict(read_safetensors(base / "flow" / "model.safetensors", "the flow vocoder's weights"))
    m2w = ISTFTVocoder(mel2wav_config(read_json(base / "mel2wav" / "config.json", "the mel-to-wave config")["config"]))
    m2w.load_state_dict(read_safetensors(base / "mel2wav" / "model.safetensors", "the mel-to-wave weights"))
    return Vocoder(flow.eval(), m2w.eval())


def load_judges(folder):
    """The evaluation judges (recognizer + voice / language classifiers) shipped in ``folder``."""
    from aqaa_ref.evaluation.judges import JudgesConfig, judges_from_state
    from aqaa_ref.evaluation.recognizer import recognizer_from_state

    base = Path(folder) / "judges"
    meta = read_json(base / "judges.json", "the judges' settings")
    rmeta = read_json(base / "recognizer" / "config.json", "the recognizer's config")
    rec = recognizer_from_state(rmeta, read_safetensors(base / "recognizer" / "model.safetensors", "the recognizer"))
    cfg = JudgesConfig.from_preset(meta["preset"])
    cmeta = read_json(base / "classifiers" / "config.json", "the classifiers' config")
    return judges_from_state(cfg, rec, cmeta, read_safetensors(base / "classifiers" / "classifiers.safetensors",
                                                               "the voice / language classifiers"))


def load_recognizer(folder):
    """Only the recognizer of a shipped folder (what the demo's judge needs)."""
    from aqaa_ref.evaluation.recognizer import recognizer_from_state

    base = Path(folder) / "judges" / "recognizer"
    return recognizer_from_state(read_json(base / "config.json", "the recognizer's config"),
                                 read_safetensors(base / "model.safetensors", "the recognizer"))


def default_folder(preset: str = "toy") -> Path:
    """Where the repository ships a preset's checkpoints: ``checkpoints/<preset>``."""
    return Path(__file__).resolve().parent.parent / "checkpoints" / preset


def is_shipped(folder) -> bool:
    return (Path(folder) / "aqaa.json").exists()
