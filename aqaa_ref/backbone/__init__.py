"""Notebook 03: the Step-1 decoder backbone.

Modules: ``attention`` (square-root ALiBi; eager, SDPA and flex_attention kernels),
``model`` (the decoder as a transformers model, registered with the Auto classes on
import; parameter counts, FLOPs, MFU), ``vocab_extension`` (growing a trained text model's
vocabulary by the audio tokens).
"""
from aqaa_ref.backbone.model import (STEP1_PRESETS, Step1Config, Step1ForCausalLM, Step1Model, count_parameters,
                                     estimate_mfu, flops_per_token, kv_cache_bytes_per_token)

__all__ = ["STEP1_PRESETS", "Step1Config", "Step1ForCausalLM", "Step1Model", "count_parameters", "estimate_mfu",
           "flops_per_token", "kv_cache_bytes_per_token"]
