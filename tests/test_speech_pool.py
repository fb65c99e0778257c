"""aqaa_ref.data.speech_pool: new words in the corpus's own deliveries, nothing from the test split."""
import pytest
import torch

from aqaa_ref.data import CorpusConfig, build_corpus
from aqaa_ref.data.speech_pool import UNSPACED, _units, pool_speeches, speech_pool


@pytest.fixture(scope="module")
def corpus():
    return build_corpus(CorpusConfig.from_preset("tiny"), progress=False)


def test_each_utterance_keeps_a_train_delivery_and_says_train_words(corpus):
    train = [sp for sp, _ in corpus.utterances("train")]
    deliveries = {(sp.language, sp.voice, sp.rate, sp.pitch, sp.pitch_range, sp.volume) for sp in train}
    units = {lang: set(_units([sp.text for sp in train if sp.language == lang], lang)) for lang in {s.language for s in train}}
    pool = pool_speeches(corpus, 200, seed=3)
    assert len(pool) == 200
    for sp in pool:
        assert (sp.language, sp.voice, sp.rate, sp.pitch, sp.pitch_range, sp.volume) in deliveries
        pieces = list(sp.text) if sp.language in UNSPACED else sp.text.split()
        assert pieces and set(pieces) <= units[sp.language]
    # new sentences, not the corpus's own
    assert sum(sp.text in {t.text for t in train} for sp in pool) < 20


def test_no_word_only_the_test_split_uses_leaks_in(corpus):
    train_words = set(_units([sp.text for sp, _ in corpus.utterances("train") if sp.language == "en"], "en"))
    test_only = set(_units([sp.text for sp, _ in corpus.utterances("test") if sp.language == "en"], "en")) - train_words
    assert test_only                      # the tiny corpus has test-only words (eleven, thirteen, ...)
    said = {w for sp in pool_speeches(corpus, 300, seed=0) if sp.language == "en" for w in sp.text.split()}
    assert not said & test_only


def test_the_pool_is_reproducible_and_rendered_at_the_corpus_rate(corpus):
    assert pool_speeches(corpus, 20, seed=1) == pool_speeches(corpus, 20, seed=1)
    assert pool_speeches(corpus, 20, seed=1) != pool_speeches(corpus, 20, seed=2)
    assert pool_speeches(corpus, 0) == []
    clips = speech_pool(corpus, 4, seed=1, progress=False)
    assert [sp for sp, _ in clips] == pool_speeches(corpus, 4, seed=1)
    for _, wav in clips:
        assert wav.dtype == torch.float32 and wav.ndim == 1 and wav.numel() > 0.2 * corpus.config.sample_rate
