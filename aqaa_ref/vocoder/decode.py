"""Tokens -> waveform at inference: offline (:class:`Vocoder`) and streaming (:class:`StreamDecoder`).

``Vocoder.decode(codes)`` runs the flow model (codes -> mel, Euler steps with guidance) and
the mel-to-wave model (mel -> samples); ``StreamDecoder`` does the same one chunk of groups at
a time, with a few groups of left context, so audio starts before generation has finished.
"""
from __future__ import annotations

from typing import Iterator

import torch

from aqaa_ref.vocoder.flow import FlowVocoder, frame_noise
from aqaa_ref.vocoder.mel2wav import GriffinLim
from aqaa_ref.vocoder.token_encoder import GROUP_SIZE, check_codes


# ----------------------------------------------------------------------------- inference

class Vocoder:
    """Tokens -> waveform: a :class:`FlowVocoder` and a mel-to-wave model (either kind).

    ``decode(codes) -> (G * 1920,)`` samples at 16 kHz; ``stream(codes)`` yields the same
    audio in pieces, one ``chunk_groups`` block of tokens at a time.
    """

    def __init__(self, flow: FlowVocoder, mel2wav=None):
        self.flow = flow.eval()
        self.mel2wav = mel2wav if mel2wav is not None else GriffinLim(flow.cfg.mel)
        if self.mel2wav.hop_length != flow.cfg.mel.hop_length:
            raise ValueError("flow model and mel2wav disagree on the mel hop length")
        self.sample_rate, self.hop = flow.cfg.mel.sample_rate, flow.cfg.mel.hop_length
        self.fpg = flow.cfg.frames_per_group

    def codes(self, codes) -> torch.Tensor:
        """Validate (one-line ValueError) and drop an incomplete tail group. -> (5G,)."""
        return check_codes(codes, self.flow.n_linguistic, self.flow.n_semantic)

    @torch.no_grad()
    def tokens_to_mel(self, codes, n_steps=None, guidance=None, seed: int = 0, trajectory=None,
                      temperature=None) -> torch.Tensor:
        """(N,) codes -> (n_mels, 12 G) log-mel. None: the model config's inference settings."""
        return self.flow.sample(self.codes(codes), n_steps, guidance, seed=seed, trajectory=trajectory,
                                temperature=temperature)

    @torch.no_grad()
    def decode(self, codes, n_steps=None, guidance=None, seed: int = 0, temperature=None) -> torch.Tensor:
        """(N,) codes -> (12 G * hop,) float32 waveform (empty codes -> empty audio)."""
        mel = self.tokens_to_mel(codes, n_steps, guidance, seed, temperature=temperature)
        return self.mel2wav(mel).float()

    def stream(self, codes, chunk_groups: int = 3, context_groups: int = 3, overlap_frames: int = 4,
               n_steps=None, guidance=None, seed: int = 0):
        """Decode chunk by chunk; yields (samples,) pieces whose concatenation is the answer.

        The offline view of :class:`StreamDecoder` (which also takes the codes as they arrive);
        each piece is yielded as soon as its chunk is decoded, so timing the loop measures the
        time to first audio.
        """
        codes = self.codes(codes)
        dec = StreamDecoder(self, chunk_groups, context_groups, overlap_frames, n_steps, guidance, seed)
        yield from dec.pieces(codes, final=True)


class StreamDecoder:
    """Incremental decoding: ``push`` codes as the backbone emits them, get audio pieces back.

    Each chunk of ``chunk_groups`` new groups (3 = one 10:15 block = 360 ms) is decoded
    with ``context_groups`` groups of earlier tokens in front, on the same absolute-frame
    noise as an offline decode. The last ``overlap_frames`` of every chunk (made without
    right context) are held back and cross-faded (raised cosine) with the next chunk's
    version of the same frames, so chunk seams are smooth. The first piece is ready after
    one chunk of tokens: that is the time to first audio; ``first_chunk_groups`` (e.g. 1 =
    120 ms) makes that first chunk smaller, so audio starts sooner. ``finish`` decodes the
    remaining (< chunk_groups) groups and releases the held-back tail.

        dec = StreamDecoder(vocoder)
        for codes in arriving:                 # any lengths; incomplete groups wait
            for piece in dec.push(codes): play(piece)
        for piece in dec.finish(): play(piece)
    """

    def __init__(self, vocoder: "Vocoder", chunk_groups: int = 3, context_groups: int = 3, overlap_frames: int = 4,
                 n_steps=None, guidance=None, seed: int = 0, first_chunk_groups: int | None = None):
        if overlap_frames > context_groups * vocoder.fpg:
            raise ValueError("overlap_frames must not exceed the context (context_groups * frames_per_group)")
        if chunk_groups < 1 or (first_chunk_groups is not None and first_chunk_groups < 1):
            raise ValueError(f"chunk sizes must be >= 1, got {chunk_groups} and {first_chunk_groups}")
        self.voc, self.chunk, self.context = vocoder, chunk_groups, context_groups
        self.first = first_chunk_groups or chunk_groups
        self.n_steps, self.guidance, self.seed = n_steps, guidance, seed
        self.ov = overlap_frames * vocoder.hop
        self.fade = (0.5 - 0.5 * torch.cos(torch.linspace(0, torch.pi, self.ov))) if self.ov else torch.zeros(0)
        self.codes = torch.zeros(0, dtype=torch.long)   # every code pushed so far (complete groups first)
        self.done_groups = 0                            # groups already decoded
        self.held = None                                # (ov,) tail awaiting the cross-fade

    def push(self, codes, final: bool = False) -> list[torch.Tensor]:
        """Append codes (any length, LLSSS order); return the pieces that became ready.

        ``final=True``: no more codes will come, so everything is decoded now (an incomplete
        tail group is dropped) and nothing is held back."""
        return list(self.pieces(codes, final))

    def pieces(self, codes, final: bool = False) -> Iterator[torch.Tensor]:
        """As :meth:`push`, but yields each piece as soon as it is decoded (consume it to the end)."""
        codes = torch.as_tensor(codes, dtype=torch.long).reshape(-1)
        self.codes = torch.cat([self.codes, codes])
        G = self.codes.numel() // GROUP_SIZE
        while G - self.done_groups >= (size := self.chunk if self.done_groups else self.first):
            g1 = self.done_groups + size
            yield self._decode(g1, last=final and g1 == G)
        if final:
            if G > self.done_groups:
                yield self._decode(G, last=True)             # cross-fades and clears the held tail
            elif self.held is not None:
                held, self.held = self.held, None
                yield held

    def finish(self) -> list[torch.Tensor]:
        """No more codes: decode what is left and release the held-back tail."""
        return self.push([], final=True)

    @torch.no_grad()
    def _decode(self, g1: int, last: bool) -> torch.Tensor:
        voc, hop, ov = self.voc, self.voc.hop, self.ov
        g0 = self.done_groups
        c0 = max(0, g0 - self.context)                                  # window = groups [c0, g1)
        window = voc.codes(self.codes[c0 * GROUP_SIZE: g1 * GROUP_SIZE])
        noise = frame_noise(self.seed, c0, g1 - c0, voc.flow.cfg.mel.n_mels, voc.fpg)
        mel = voc.flow.sample(window, self.n_steps, self.guidance, noise=noise)
        wav = voc.mel2wav(mel).float()                                  # samples of groups [c0, g1)
        start = (g0 - c0) * voc.fpg * hop                               # first new sample in the window
        piece = [self.held * (1 - self.fade) + wav[start - ov: start] * self.fade] if self.held is not None else []
        piece.append(wav[start: wav.numel() if last else wav.numel() - ov])
        self.held = None if last else wav[wav.numel() - ov:]
        self.done_groups = g1
        return torch.cat(piece)
