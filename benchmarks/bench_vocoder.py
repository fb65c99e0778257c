"""Token vocoder: resynthesis quality, speed and streaming latency (issue 6, item 4).

Held-out test speech -> the dual tokenizer's ground-truth tokens -> vocoder -> audio, scored
against the original clip (cut to the tokens' whole groups):

* recognizer PER: the independent CTC judge (aqaa_ref.recognizer) on the output; the
  same judge on the original audio is the floor;
* F0: median F0 of the output / of the original, as mean |cents| and mean ratio;
* duration: voiced-span length (silence trimmed) of the output / of the original;
* mel L1: mean |log-mel difference| (the vocoder's mel settings) against the original.

Rows: the original; copy synthesis (ground-truth mel -> Griffin-Lim / iSTFT vocoder, to
judge mel -> wave alone); flow + Griffin-Lim vs flow + iSTFT at the defaults; Euler steps
1, 2, 4, 10, 32 at guidance 0.7; guidance 0, 0.7, 1.5 at 10 steps; streaming. Plus the
real-time factor, time to first audio, and the recognizer's PER on ground truth (seen
voices vs the unseen voice m4).

    .venv/bin/python benchmarks/bench_vocoder.py              # toy models (cached or trained), 48 clips
    .venv/bin/python benchmarks/bench_vocoder.py --clips 16   # quicker
"""
from __future__ import annotations

import argparse
import json
import math
import platform
import random
import time
from pathlib import Path

import torch

from aqaa_ref.audio import median_f0, trim_silence
from aqaa_ref.data import CorpusConfig, build_corpus, phoneme_tokens
from aqaa_ref.recognizer import RecognizerConfig, corpus_per, evaluate_recognizer, load_or_train_recognizer
from aqaa_ref.vocoder import (GriffinLim, Mel2WavConfig, Vocoder, VocoderConfig, interleave_codes,
                              load_or_train_mel2wav, load_or_train_vocoder, mel_frames)
from aqaa_ref.vocoder import codebook_sizes

RESULTS = Path(__file__).parent / "results"
SR, HOP, FPG = 16_000, 160, 12


def load_tokenizer(corpus, preset: str):
    """The project's dual tokenizer (issue 3), cached or trained."""
    from aqaa_ref.tokenizer import DualConfig, load_or_train_dual
    return load_or_train_dual(corpus, DualConfig.preset(preset))


def score(out: torch.Tensor, ref: torch.Tensor, ref_tokens: list, hyp: list) -> dict:
    """Per-clip metrics of output audio against the reference audio (same length)."""
    f_out, f_ref = median_f0(out, SR), median_f0(ref, SR)
    cents = 1200 * math.log2(f_out / f_ref) if f_out > 0 and f_ref > 0 else float("nan")
    d_out, d_ref = trim_silence(out).numel(), trim_silence(ref).numel()
    mel_l1 = (mel_frames(out) - mel_frames(ref)).abs().mean().item()
    return {"ref": ref_tokens, "hyp": hyp, "cents": cents, "f0_ratio": f_out / f_ref if f_ref > 0 else float("nan"),
            "dur_ratio": d_out / max(1, d_ref), "mel_l1": mel_l1}


def summarize(rows: list[dict]) -> dict:
    def mean(xs):
        xs = [x for x in xs if not math.isnan(x)]
        return sum(xs) / len(xs) if xs else float("nan")
    return {"per": corpus_per([(r["ref"], r["hyp"]) for r in rows]),
            "f0_abs_cents": mean([abs(r["cents"]) for r in rows]), "f0_ratio": mean([r["f0_ratio"] for r in rows]),
            "dur_ratio": mean([r["dur_ratio"] for r in rows]), "mel_l1": mean([r["mel_l1"] for r in rows]),
            "clips": len(rows)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clips", type=int, default=48, help="held-out test clips to resynthesize")
    ap.add_argument("--preset", default="toy")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.manual_seed(args.seed)

    corpus = build_corpus(CorpusConfig.from_preset("toy"))
    t = time.time()
    tokenizer = load_tokenizer(corpus, args.preset)
    rec = load_or_train_recognizer(corpus, RecognizerConfig.from_preset(args.preset))
    m2w = load_or_train_mel2wav(corpus, Mel2WavConfig.from_preset(args.preset))
    flow = load_or_train_vocoder(corpus, tokenizer, VocoderConfig.from_preset(args.preset))
    print(f"models ready in {time.time() - t:.0f} s")
    gl = GriffinLim(flow.cfg.mel)
    voc_neural, voc_gl = Vocoder(flow, m2w), Vocoder(flow, gl)
    n_lin, _ = codebook_sizes(tokenizer)

    # held-out test clips, every condition and voice, a fixed random sample
    clips = corpus.utterances("test")
    random.Random(args.seed).shuffle(clips)
    clips = clips[: args.clips]
    variants = {"original": None, "copy-synthesis GL": None, "copy-synthesis iSTFT": None,
                "flow + GL (10 steps, w 0.7)": (voc_gl, 10, 0.7)}
    for n in (1, 2, 4, 10, 32):
        variants[f"flow + iSTFT, {n} steps, w 0.7"] = (voc_neural, n, 0.7)
    for w in (0.0, 1.5):
        variants[f"flow + iSTFT, 10 steps, w {w}"] = (voc_neural, 10, w)
    variants["streaming (3-group chunks)"] = "stream"
    rows = {k: [] for k in variants}
    timing = {"flow_s": 0.0, "mel2wav_s": 0.0, "gl_s": 0.0, "audio_s": 0.0, "ttfa_s": [], "stream_total_s": 0.0}
    with torch.inference_mode():
        for i, (sp, r) in enumerate(clips):
            wav = corpus.load(r, SR)
            lin, sem = tokenizer.encode(wav, SR)
            codes = interleave_codes(lin, sem, n_lin)
            G = codes.numel() // 5
            ref = wav[: G * FPG * HOP]
            if ref.numel() < G * FPG * HOP:
                ref = torch.nn.functional.pad(ref, (0, G * FPG * HOP - ref.numel()))
            ref_tokens = phoneme_tokens(r.phonemes)
            outs = {"original": ref}
            gt_mel = mel_frames(ref)
            t0 = time.perf_counter()
            outs["copy-synthesis GL"] = gl(gt_mel)
            timing["gl_s"] += time.perf_counter() - t0
            outs["copy-synthesis iSTFT"] = m2w(gt_mel)
            for name, v in variants.items():
                if isinstance(v, tuple):
                    voc, n, w = v
                    if voc is voc_neural and n == 10 and w == 0.7:       # the default: time its two halves
                        t0 = time.perf_counter()
                        mel = voc.tokens_to_mel(codes, n, w)
                        t1 = time.perf_counter()
                        outs[name] = m2w(mel)
                        timing["flow_s"] += t1 - t0
                        timing["mel2wav_s"] += time.perf_counter() - t1
                        timing["audio_s"] += ref.numel() / SR
                    else:
                        outs[name] = voc.decode(codes, n, w)
            t0 = time.perf_counter()
            pieces = []
            for piece in voc_neural.stream(codes):
                if not pieces:
                    timing["ttfa_s"].append(time.perf_counter() - t0)
                pieces.append(piece)
            timing["stream_total_s"] += time.perf_counter() - t0
            outs["streaming (3-group chunks)"] = torch.cat(pieces)
            hyps = rec.transcribe_batch([outs[k] for k in variants], SR)
            for k, h in zip(variants, hyps):
                rows[k].append(score(outs[k], ref, ref_tokens, h))
            print(f"\r{i + 1}/{len(clips)} clips", end="", flush=True)
    print()

    table = {k: summarize(v) for k, v in rows.items()}
    rtf = {"flow": timing["flow_s"] / timing["audio_s"], "mel2wav_istft": timing["mel2wav_s"] / timing["audio_s"],
           "total_istft": (timing["flow_s"] + timing["mel2wav_s"]) / timing["audio_s"],
           "griffin_lim_only": timing["gl_s"] / timing["audio_s"],
           "streaming_total": timing["stream_total_s"] / timing["audio_s"]}
    ttfa = sorted(timing["ttfa_s"])
    latency = {"ttfa_mean_s": sum(ttfa) / len(ttfa), "ttfa_median_s": ttfa[len(ttfa) // 2], "ttfa_max_s": ttfa[-1],
               "chunk_audio_s": 3 * 0.12}
    judge = evaluate_recognizer(rec, corpus, "test")
    seen = [(v, d) for v, d in judge.items() if v not in ("all", "m4")]
    judge_summary = {"seen_voices_per": sum(d["per"] * d["clips"] for _, d in seen) / sum(d["clips"] for _, d in seen),
                     "unseen_voice_m4_per": judge.get("m4", {}).get("per"), "by_voice": judge}

    print(f"\n{'system':38s} {'PER':>6s} {'|cents|':>8s} {'F0 ratio':>9s} {'dur':>6s} {'mel L1':>7s}")
    for k, s in table.items():
        print(f"{k:38s} {s['per']:6.3f} {s['f0_abs_cents']:8.1f} {s['f0_ratio']:9.3f} {s['dur_ratio']:6.3f} {s['mel_l1']:7.3f}")
    print(f"\nreal-time factor (2 CPU threads; lower is faster): " + ", ".join(f"{k} {v:.3f}" for k, v in rtf.items()))
    print(f"time to first audio (streaming, 360 ms chunks): mean {latency['ttfa_mean_s'] * 1000:.0f} ms, "
          f"median {latency['ttfa_median_s'] * 1000:.0f} ms, max {latency['ttfa_max_s'] * 1000:.0f} ms")
    print(f"recognizer PER on ground truth: seen voices {judge_summary['seen_voices_per']:.3f}, "
          f"unseen voice m4 {judge_summary['unseen_voice_m4_per']:.3f}")

    RESULTS.mkdir(parents=True, exist_ok=True)
    out = {"table": table, "rtf": rtf, "latency": latency, "recognizer": judge_summary,
           "models": {"flow": flow.train_info, "mel2wav": m2w.train_info, "recognizer": rec.train_info},
           "clips": args.clips, "preset": args.preset, "threads": torch.get_num_threads(),
           "machine": platform.processor() or platform.machine(),
           "note": "2 CPU cores shared with other jobs while measured: timings are noisy"}
    path = RESULTS / f"vocoder_{args.preset}.json"
    path.write_text(json.dumps(out, indent=2, default=float) + "\n")
    print(f"saved {path}")


if __name__ == "__main__":
    main()
