"""The course: the eleven notebooks in order, what each builds, and the paper's part it follows.

One table that the notebooks' headers, their previous / next links and the roadmap figure
(:func:`aqaa_ref.viz.roadmap`) all read, so they cannot disagree.

    >>> lesson(4).title
    'Pre-training and the two SFT stages'
    >>> lesson(4).previous.file, lesson(4).next.file
    ('03_backbone_and_vocabulary.ipynb', '05_masked_dpo.ipynb')

The paper is Step-Audio-AQAA, arXiv 2506.08967 (:data:`PAPER`); ``paper`` names the part of it
a notebook follows by its heading, not by a section number.
"""
from __future__ import annotations

from dataclasses import dataclass

PAPER = "https://arxiv.org/abs/2506.08967"


@dataclass(frozen=True)
class Lesson:
    number: int
    stem: str          # notebooks/<stem>.ipynb (and its .py twin)
    title: str
    box: str           # the roadmap's label: a few words, "\n" for a line break
    part: str          # which of the three modules of the paper's figure, or "data" / "scale"
    paper: str         # the paper's part this notebook follows

    @property
    def file(self) -> str:
        return f"{self.stem}.ipynb"

    @property
    def previous(self) -> "Lesson | None":
        return LESSONS[self.number - 1] if self.number > 0 else None

    @property
    def next(self) -> "Lesson | None":
        return LESSONS[self.number + 1] if self.number + 1 < len(LESSONS) else None


LESSONS: tuple[Lesson, ...] = (
    Lesson(0, "00_data_engine", "The data engine: spoken questions and answers from nothing",
           "data\nengine", "data", "StepEval-Audio-360 and the training data"),
    Lesson(1, "01_linguistic_tokenizer", "The linguistic tokenizer: 16.67 Hz codes from a CTC phoneme encoder",
           "linguistic\ntokenizer", "tokenizer", "Dual-codebook audio tokenizer (linguistic)"),
    Lesson(2, "02_semantic_tokenizer_and_interleaving", "The semantic tokenizer, and the 2:3 interleaving",
           "semantic tok.\n+ 2:3 groups", "tokenizer", "Dual-codebook audio tokenizer (semantic, 2:3 interleaving)"),
    Lesson(3, "03_backbone_and_vocabulary", "The Step-1 backbone and its extended vocabulary",
           "backbone\n+ vocab", "backbone", "Backbone LLM (Step-Omni, 5,120 added audio ids)"),
    Lesson(4, "04_pretraining_and_sft", "Pre-training and the two SFT stages",
           "pre-train\n+ SFT", "training", "Training: multimodal pre-training, SFT-1 and SFT-2"),
    Lesson(5, "05_masked_dpo", "Audio-token-masked DPO",
           "masked\nDPO", "training", "Training: DPO with audio tokens masked"),
    Lesson(6, "06_model_merge", "The 5:5:1 model merge",
           "5:5:1\nmerge", "training", "Training: model merge"),
    Lesson(7, "07_flow_matching_vocoder", "The flow-matching token vocoder: audio tokens -> mel -> waveform",
           "flow\nvocoder", "vocoder", "Neural vocoder (flow matching, U-Net of ResNet-1D + Transformer)"),
    Lesson(8, "08_end_to_end", "End to end: a spoken question in, a spoken answer out",
           "end to\nend", "inference", "The whole model: audio query -> interleaved tokens -> audio answer"),
    Lesson(9, "09_evaluation_and_ablations", "Evaluation and the paper's ablations, at toy scale",
           "eval +\nablations", "evaluation", "Experiments: StepEval-Audio-360, output format and concatenation ablations"),
    Lesson(10, "10_scaling_to_130b", "From the toy to the 130B backbone: planning and running at scale",
           "scale to\n130B", "scale", "Backbone LLM at 130B; training infrastructure"),
)


def lesson(number: int) -> Lesson:
    """The lesson of notebook ``number`` (0-10), or a one-line error."""
    if not 0 <= number < len(LESSONS):
        raise ValueError(f"there are notebooks 00 to {len(LESSONS) - 1:02d}, not {number}")
    return LESSONS[number]


def links(number: int) -> str:
    """The markdown line under a notebook's title: previous, this, next, and the paper's part."""
    this = lesson(number)
    prev = f"[← {this.previous.number:02d} {this.previous.box.replace(chr(10), ' ')}]({this.previous.file})" \
        if this.previous else "start of the course"
    nxt = f"[{this.next.number:02d} {this.next.box.replace(chr(10), ' ')} →]({this.next.file})" \
        if this.next else "end of the course"
    return f"{prev} · **{number:02d}** · {nxt} · paper: *{this.paper}* ([arXiv 2506.08967]({PAPER}))"
