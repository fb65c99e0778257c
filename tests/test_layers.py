"""The import direction runs one way along the course (README: Layout).

Each subpackage may import the foundation modules and the subpackages before it, never one
after it; the judges import nothing from the models they judge; data formatting imports no
training loop. Documented exceptions: the training recipe (which trains everything,
vocoder included) holds the vocoder's and mel-to-wave model's configs; ``train_all`` trains the
judges beside the models (so a first evaluation needs no further training); and
``AQAA.from_pretrained`` reads the shipped layout of ``aqaa_ref.checkpoints`` (which sits after
every layer it exports, with ``provenance``).
"""
import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parent.parent / "aqaa_ref"
FOUNDATION = {"audio", "cache", "threads", "lr_schedule", "metrics", "blocks", "compat", "lockfile", "presets",
              "overrides", "precision"}
ORDER = ["data", "formats", "tokenizer", "backbone", "training", "vocoder", "inference", "evaluation", "scaling",
         "provenance", "checkpoints"]
TOP = {"viz", "course", "__main__", "__init__"}        # drawing, the course table, the command line: above all
ALLOWED = {("training.recipe", "vocoder.flow"), ("training.recipe", "vocoder.mel2wav"),
           ("training.train_all", "vocoder"), ("training.train_all", "evaluation.judges"),
           ("inference.pipeline", "checkpoints"),
           # DPO on SFT-1's own wrong answers (Recipe.dpo_rejected) generates them inside the dpo stage
           ("training.recipe", "inference.generation")}


def imports_of(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("aqaa_ref"):
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("aqaa_ref")}
    return {m.removeprefix("aqaa_ref").lstrip(".") for m in out}


def layer(module: str) -> int | None:
    head = module.split(".")[0]
    if head in FOUNDATION or module == "":
        return -1
    return ORDER.index(head) if head in ORDER else None


MODULES = sorted(p for p in PKG.rglob("*.py"))


def test_every_module_has_a_layer():
    for p in MODULES:
        name = ".".join(p.relative_to(PKG).with_suffix("").parts)
        assert name in TOP or layer(name) is not None, name


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PKG)))
def test_imports_run_down_the_course(path):
    name = ".".join(path.relative_to(PKG).with_suffix("").parts)
    if name in TOP:
        return
    mine = layer(name)
    for dep in imports_of(path):
        if dep in TOP - {"__init__"}:
            pytest.fail(f"aqaa_ref.{name} imports aqaa_ref.{dep}, which sits above every layer")
        theirs = layer(dep)
        ok = theirs is not None and (theirs <= mine if mine >= 0 else theirs == -1)
        assert ok or (name, dep) in ALLOWED, f"aqaa_ref.{name} (layer {mine}) imports aqaa_ref.{dep} (layer {theirs})"


def test_the_judges_import_nothing_from_the_models_they_judge():
    for mod in ("recognizer", "judges", "scoring"):
        deps = imports_of(PKG / "evaluation" / f"{mod}.py")
        bad = [d for d in deps if d.split(".")[0] in ("tokenizer", "backbone", "training", "vocoder", "inference")]
        assert not bad, f"aqaa_ref.evaluation.{mod} imports {bad}"


def test_data_formatting_imports_no_training_loop():
    for mod in ("training/sequences.py", "training/dpo.py", "formats/answer_format.py"):
        assert "training.loop" not in imports_of(PKG / mod), mod
