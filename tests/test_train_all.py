"""aqaa_ref.training.train_all: the two chains side by side leave exactly the cache a later load needs."""
import pytest

from aqaa_ref.training.recipe import STAGES, Recipe
from aqaa_ref.training.train_all import train_all


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("AQAA_CACHE", str(tmp_path_factory.mktemp("cache")))   # inherited by the worker process
    recipe = Recipe.from_preset("tiny")
    seen = []
    seconds = train_all(recipe, judges_preset="tiny", concurrent=True, progress=False,
                        on_stage=lambda name, s: seen.append(name))
    yield recipe, seconds, seen
    mp.undo()


def test_every_piece_is_trained_and_timed(trained):
    recipe, seconds, seen = trained
    pieces = ["corpus", "tokenizer", "tokenize + text BPE", *STAGES, "flow vocoder", "mel-to-wave", "judges"]
    assert set(seconds) == {*pieces, "total"} and all(s >= 0 for s in seconds.values())
    # the worker's pieces are reported as trained beside the backbone
    assert seen[:len(pieces) - 3] == pieces[:-3] and all(n.endswith("(beside the backbone)") for n in seen[-3:])


def test_a_later_load_trains_nothing(trained, monkeypatch):
    recipe, _, _ = trained

    def refuse(*a, **k):
        raise AssertionError("trained again although train_all cached it")

    import aqaa_ref.evaluation.judges as judges
    import aqaa_ref.evaluation.recognizer as recognizer
    import aqaa_ref.training.recipe as rec
    import aqaa_ref.vocoder.mel2wav as m2w
    import aqaa_ref.vocoder.train as voc
    from aqaa_ref.inference.pipeline import AQAA

    for mod, name in ((rec, "train"), (voc, "train_vocoder"), (m2w, "train_mel2wav"), (judges, "train_judges"),
                      (recognizer, "train_recognizer")):
        monkeypatch.setattr(mod, name, refuse)
    aqaa = AQAA.from_recipe(recipe, progress=False)
    assert aqaa.vocoder is not None
    judges.Judges.load_or_train(aqaa_corpus(recipe), "tiny", progress=False)


def aqaa_corpus(recipe):
    from aqaa_ref.data import build_corpus
    return build_corpus(recipe.corpus, progress=False)
