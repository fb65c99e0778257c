"""aqaa_ref.evaluation.recognizer: PER by hand, CTC greedy decoding, tiny training, save/load, edge cases."""
import pytest
import torch

from aqaa_ref.data import CorpusConfig, build_corpus
from aqaa_ref.evaluation.recognizer import (BLANK, CTCRecognizer, Recognizer, RecognizerConfig, corpus_per,
                                            load_recognizer, pad_batch, per, save_recognizer, train_recognizer)
from aqaa_ref.metrics import edit_distance

pytestmark = pytest.mark.usefixtures("one_thread")   # conftest.py: 1 torch thread (small models)


def test_per_hand_cases():
    assert per(["a", "b", "c"], ["a", "b", "c"]) == 0.0
    assert per(["a", "b", "c"], ["a", "x", "c"]) == pytest.approx(1 / 3)       # one substitution
    assert per(["a", "b", "c"], ["a", "c"]) == pytest.approx(1 / 3)            # one deletion
    assert per(["a", "b"], ["a", "b", "b", "z"]) == pytest.approx(2 / 2)       # two insertions
    assert per(["a", "b"], []) == 1.0
    assert per([], []) == 0.0 and per([], ["a"]) == 1.0
    assert edit_distance(list("kitten"), list("sitting")) == 3
    assert edit_distance(["aa1", "t"], ["aa2", "t"]) == 1                       # tones are part of the phoneme
    assert corpus_per([(["a", "b"], ["a"]), (["c", "d", "e", "f"], ["c", "d", "e", "f"])]) == pytest.approx(1 / 6)


def test_greedy_ctc_merges_repeats_and_drops_blanks():
    cfg = RecognizerConfig.from_preset("tiny")
    rec = Recognizer(CTCRecognizer(cfg, 5), ["a", "b", "c"])

    class Fixed(torch.nn.Module):                     # best path: a a _ a b b _ _ c
        cfg = rec.model.cfg

        def forward(self, mel, mask):
            path = [2, 2, BLANK, 2, 3, 3, BLANK, BLANK, 4]
            logp = torch.full((1, len(path), 5), -10.0)
            logp[0, torch.arange(len(path)), torch.tensor(path)] = 0.0
            return logp
    rec.model = Fixed()
    assert rec.transcribe(torch.randn(16 * 180), 16_000) == ["a", "a", "b", "c"]


def test_pad_batch_and_empty_audio():
    mel, mask = pad_batch([torch.ones(80, 3), torch.ones(80, 5)])
    assert mel.shape == (2, 80, 5) and mask[0, 0].tolist() == [1, 1, 1, 0, 0]
    rec = Recognizer(CTCRecognizer(RecognizerConfig.from_preset("tiny"), 4), ["a", "b"])
    assert rec.transcribe(torch.zeros(0), 16_000) == []


def test_tiny_training_is_deterministic_and_round_trips(tmp_path_factory):
    corpus = build_corpus(CorpusConfig.from_preset("tiny"), progress=False)   # the shared cached tiny corpus
    cfg = RecognizerConfig.from_preset("tiny", steps=4)
    a, b = train_recognizer(corpus, cfg, progress=False), train_recognizer(corpus, cfg, progress=False)
    for va, vb in zip(a.model.state_dict().values(), b.model.state_dict().values()):
        assert torch.equal(va, vb)
    assert a.phonemes == sorted(a.phonemes) and len(a.phonemes) > 10
    folder = tmp_path_factory.mktemp("rec")
    save_recognizer(a, folder)
    c = load_recognizer(folder)
    wav = corpus.load(corpus.utterances("test")[0][1])
    hyp = a.transcribe(wav, 16_000)
    assert c.transcribe(wav, 16_000) == hyp and all(isinstance(p, str) for p in hyp)
    # another sample rate is resampled first: 8 kHz input gives a phoneme list too
    assert isinstance(a.transcribe(wav[::2], 8_000), list)
