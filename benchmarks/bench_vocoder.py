"""Token vocoder: resynthesis quality, speed and streaming latency (issue 6, item 4).

Held-out test speech -> the dual tokenizer's ground-truth tokens -> vocoder -> audio, scored
against the original clip (cut to the tokens' whole groups):

* recognizer PER: the independent CTC judge (aqaa_ref.evaluation.recognizer) on the output; the
  same judge on the original audio is the floor;
* F0: median F0 of the output / of the original, as mean |cents| and mean ratio;
* duration: voiced-span length (silence trimmed) of the output / of the original;
* mel L1: mean |log-mel difference| (the vocoder's mel settings) against the original.

Rows: the original; copy synthesis (ground-truth mel -> Griffin-Lim / iSTFT vocoder, to
judge mel -> wave alone); the flow (10 steps, w 0.7) with each mel -> wave: Griffin-Lim, the iSTFT
vocoder with its own phase, and with its phase refined by Griffin-Lim iterations; Euler steps
1, 2, 4, 10, 32 at guidance 0.7; guidance 0, 0.7, 1.5 at 10 steps; starting-noise temperature
1.0 (the rows above), 0.7, 0.5, 0.3; the token encoder's mean mu alone (no flow); streaming
(with the model's default settings). Plus the
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

from aqaa_ref.audio import median_f0, peak_normalize, trim_silence
from aqaa_ref.data import CorpusConfig, build_corpus, phoneme_tokens
from aqaa_ref.evaluation.recognizer import RecognizerConfig, corpus_per, evaluate_recognizer, load_or_train_recognizer
from aqaa_ref.vocoder import (GriffinLim, Mel2WavConfig, Vocoder, VocoderConfig, codebook_sizes, interleave_codes,
                              load_or_train_mel2wav, load_or_train_vocoder, mel_frames)

RESULTS = Path(__file__).parent / "results"
SR, HOP, FPG = 16_000, 160, 12
TEMPERATURES = (0.7, 0.5, 0.3)     # starting-noise scale; rows above use 1.0 (plain OT-CFM sampling)


def load_tokenizer(corpus, preset: str):
    """The project's dual tokenizer (issue 3), cached or trained."""
    from aqaa_ref.tokenizer.dual import DualConfig, load_or_train_dual
    return load_or_train_dual(corpus, DualConfig.from_preset(preset))


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
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's, 2 on the project machines)")
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)

    corpus = build_corpus(CorpusConfig.from_preset("toy"))
    t = time.time()
    tokenizer = load_tokenizer(corpus, args.preset)
    rec = load_or_train_recognizer(corpus, RecognizerConfig.from_preset(args.preset))
    m2w = load_or_train_mel2wav(corpus, Mel2WavConfig.from_preset(args.preset))
    flow = load_or_train_vocoder(corpus, tokenizer, VocoderConfig.from_preset(args.preset))
    print(f"models ready in {time.time() - t:.0f} s")
    gl = GriffinLim(flow.cfg.mel)
    n_lin, _ = codebook_sizes(tokenizer)
    default_iters = m2w.gl_iters

    def istft(iters):                      # the iSTFT vocoder with a given number of phase-refinement iterations
        return lambda mel: m2w.synthesize(*m2w.predict_spec(mel[None]), gl_iters=iters)[0]
    mel2wav = {"GL": gl, "iSTFT": istft(0), f"iSTFT+{default_iters}GL": istft(default_iters)}
    voc = Vocoder(flow, m2w)

    # held-out test clips, every condition and voice, a fixed random sample
    clips = corpus.utterances("test")
    random.Random(args.seed).shuffle(clips)
    clips = clips[: args.clips]
    names = ["original"] + [f"copy-synthesis {k}" for k in mel2wav] + [f"flow 10 w0.7 + {k}" for k in mel2wav]
    names += [f"flow {n} steps w0.7 + default" for n in (1, 2, 4, 32)]
    names += [f"flow 10 steps w{w} + default" for w in (0.0, 1.5)]
    names += [f"flow 10 steps w0.7 T{T} + default" for T in TEMPERATURES]
    names += ["token encoder mean (mu, no flow) + default"]
    names += ["streaming 3-group chunks + default"]
    rows = {k: [] for k in names}
    timing = {"flow_s": 0.0, "mel2wav_s": {k: 0.0 for k in mel2wav}, "audio_s": 0.0, "ttfa_s": [], "stream_total_s": 0.0}
    with torch.inference_mode():
        for i, (sp, r) in enumerate(clips):
            wav = peak_normalize(corpus.load(r, SR))      # the tokenizer's and the vocoder's level
            lin, sem = tokenizer.encode(wav, SR)
            codes = interleave_codes(lin, sem, n_lin)
            G = codes.numel() // 5
            ref = wav[: G * FPG * HOP]
            if ref.numel() < G * FPG * HOP:
                ref = torch.nn.functional.pad(ref, (0, G * FPG * HOP - ref.numel()))
            outs = {"original": ref}
            gt_mel = mel_frames(ref)
            for k, f in mel2wav.items():
                outs[f"copy-synthesis {k}"] = f(gt_mel)
            t0 = time.perf_counter()
            mel = voc.tokens_to_mel(codes, 10, 0.7, temperature=1.0)  # the paper's settings
            timing["flow_s"] += time.perf_counter() - t0
            timing["audio_s"] += ref.numel() / SR
            for k, f in mel2wav.items():
                t0 = time.perf_counter()
                outs[f"flow 10 w0.7 + {k}"] = f(mel)
                timing["mel2wav_s"][k] += time.perf_counter() - t0
            for n in (1, 2, 4, 32):
                outs[f"flow {n} steps w0.7 + default"] = voc.decode(codes, n, 0.7, temperature=1.0)
            for w in (0.0, 1.5):
                outs[f"flow 10 steps w{w} + default"] = voc.decode(codes, 10, w, temperature=1.0)
            for T in TEMPERATURES:
                outs[f"flow 10 steps w0.7 T{T} + default"] = voc.decode(codes, 10, 0.7, temperature=T)
            mu = flow.encoder(voc.codes(codes)[None], [G])[0]
            outs["token encoder mean (mu, no flow) + default"] = voc.mel2wav(flow.denormalize(mu)).float()
            t0 = time.perf_counter()
            pieces = []
            for piece in voc.stream(codes):
                if not pieces:
                    timing["ttfa_s"].append(time.perf_counter() - t0)
                pieces.append(piece)
            timing["stream_total_s"] += time.perf_counter() - t0
            outs["streaming 3-group chunks + default"] = torch.cat(pieces)
            hyps = rec.transcribe_batch([outs[k] for k in names], SR)
            ref_tokens = phoneme_tokens(r.phonemes)
            for k, h in zip(names, hyps):
                rows[k].append(score(outs[k], ref, ref_tokens, h))
            print(f"\r{i + 1}/{len(clips)} clips", end="", flush=True)
    print()

    table = {k: summarize(v) for k, v in rows.items()}
    a = timing["audio_s"]
    rtf = {"flow_10_steps_w0.7": timing["flow_s"] / a,
           **{f"mel2wav_{k}": v / a for k, v in timing["mel2wav_s"].items()},
           **{f"total_{k}": (timing["flow_s"] + v) / a for k, v in timing["mel2wav_s"].items()},
           "streaming_total_default": timing["stream_total_s"] / a}
    ttfa = sorted(timing["ttfa_s"])
    latency = {"ttfa_mean_s": sum(ttfa) / len(ttfa), "ttfa_median_s": ttfa[len(ttfa) // 2], "ttfa_max_s": ttfa[-1],
               "chunk_audio_s": 3 * 0.12}
    judge = evaluate_recognizer(rec, corpus, "test")
    seen = [(v, d) for v, d in judge.items() if v not in ("all", "m4")]
    judge_summary = {"seen_voices_per": sum(d["per"] * d["clips"] for _, d in seen) / sum(d["clips"] for _, d in seen),
                     "unseen_voice_m4_per": judge.get("m4", {}).get("per"), "by_voice": judge}

    print(f"\n{'system':40s} {'PER':>6s} {'|cents|':>8s} {'F0 ratio':>9s} {'dur':>6s} {'mel L1':>7s}")
    for k, s in table.items():
        print(f"{k:40s} {s['per']:6.3f} {s['f0_abs_cents']:8.1f} {s['f0_ratio']:9.3f} {s['dur_ratio']:6.3f} {s['mel_l1']:7.3f}")
    print(f"\nreal-time factor ({torch.get_num_threads()} CPU threads; lower is faster): "
          + ", ".join(f"{k} {v:.3f}" for k, v in rtf.items()))
    print(f"time to first audio (streaming, 360 ms chunks): mean {latency['ttfa_mean_s'] * 1000:.0f} ms, "
          f"median {latency['ttfa_median_s'] * 1000:.0f} ms, max {latency['ttfa_max_s'] * 1000:.0f} ms")
    print(f"recognizer PER on ground truth: seen voices {judge_summary['seen_voices_per']:.3f}, "
          f"unseen voice m4 {judge_summary['unseen_voice_m4_per']:.3f}")

    RESULTS.mkdir(parents=True, exist_ok=True)
    out = {"table": table, "rtf": rtf, "latency": latency, "recognizer": judge_summary,
           "models": {"flow": flow.train_info, "mel2wav": m2w.train_info, "recognizer": rec.train_info},
           "clips": args.clips, "preset": args.preset, "default_mel2wav": f"iSTFT+{default_iters}GL",
           "threads": torch.get_num_threads(),
           "machine": platform.processor() or platform.machine(),
           "note": "2 CPU cores shared with other jobs while measured: timings are noisy"}
    path = RESULTS / f"vocoder_{args.preset}.json"
    path.write_text(json.dumps(out, indent=2, default=float) + "\n")
    print(f"saved {path}")


if __name__ == "__main__":
    main()
