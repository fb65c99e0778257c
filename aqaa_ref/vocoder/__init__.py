"""The token vocoder: 2:3 interleaved audio tokens -> mel (flow matching) -> waveform.

    >>> flow = load_or_train_vocoder(corpus, tokenizer, VocoderConfig.from_preset("toy"))
    >>> m2w = load_or_train_mel2wav(corpus, Mel2WavConfig.from_preset("toy"))
    >>> voc = Vocoder(flow, m2w)
    >>> wav = voc.decode(codes)                    # codes: (5G,) LLSSS, relative to the audio block
    >>> for piece in voc.stream(codes): ...        # the same audio, one 360 ms chunk at a time

Input convention: the vocoder reads the interleaved stream as codes *relative to the
audio block* (linguistic 0..n_l-1, semantic n_l..n_l+n_s-1), like Step-Audio's vocoder
(ids 0..5119). :func:`interleave_codes` builds it from a tokenizer's two code streams;
:func:`to_vocoder_codes` converts a backbone's vocab-offset ids. G groups of tokens give
exactly 12 G mel frames and 12 G x 160 samples (G x 120 ms).

Modules: ``token_encoder`` (codes -> mu), ``unet`` (the velocity estimator), ``flow``
(OT-CFM loss and Euler + guidance sampler), ``mel2wav`` (Griffin-Lim, iSTFT vocoder),
``decode`` (offline and streaming inference), ``train`` (training, caching, save/load).
This ``__init__`` only re-exports.
"""
from aqaa_ref.vocoder.decode import StreamDecoder, Vocoder
from aqaa_ref.vocoder.flow import FlowVocoder, VocoderConfig, cosine_warp, euler_sample, frame_noise, guided_velocity
from aqaa_ref.vocoder.mel2wav import (VOCODER_MEL, GriffinLim, ISTFTVocoder, Mel2WavConfig, load_or_train_mel2wav,
                                      mel_frames, train_mel2wav)
from aqaa_ref.vocoder.token_encoder import check_codes, interleave_codes, to_vocoder_codes
from aqaa_ref.vocoder.train import (codebook_sizes, load_or_train_vocoder, load_vocoder, save_vocoder,
                                    tokenizer_identity, train_vocoder)
from aqaa_ref.vocoder.unet import UNet1D, UNetConfig

__all__ = ["Vocoder", "StreamDecoder", "FlowVocoder", "VocoderConfig", "UNet1D", "UNetConfig", "Mel2WavConfig", "GriffinLim",
           "ISTFTVocoder", "VOCODER_MEL", "interleave_codes", "to_vocoder_codes", "check_codes", "mel_frames",
           "train_vocoder", "load_or_train_vocoder", "codebook_sizes", "tokenizer_identity", "save_vocoder", "load_vocoder",
           "train_mel2wav", "load_or_train_mel2wav", "euler_sample", "guided_velocity", "cosine_warp", "frame_noise"]
