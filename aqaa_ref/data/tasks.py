"""Task families: synthetic spoken questions with checkable answers.

Each family mirrors one StepEval-Audio-360 dimension where a synthetic version is honest,
i.e. where the correct answer (and how it must be spoken) follows from the question alone:

=========================== ======================================================
family                      what is asked
=========================== ======================================================
logical_reasoning           arithmetic, comparison, successor/predecessor (English)
language_ability            the same in Mandarin, Cantonese, Japanese (answer in the
                            language asked), and "how do you say N in Japanese"
voice_instruction_following "answer slowly / quickly / in a high / low voice", and
                            style switches mid-answer ("say X slowly, then Y quickly")
speech_emotion_control      "answer happily / sadly / angrily" (prosody proxies)
role_playing                "answer like a robot / child / grandpa / teacher" (persona voice)
voice_understanding         questions about the question's own voice: fast or slow,
                            high or low, a man or a woman
gaming                      word games: "repeat after me", "say the opposite of"
=========================== ======================================================

Not covered: *singing* (eSpeak cannot sing; a pitch-contour imitation would be a fake),
and *creativity* (no single correct answer to check automatically).

Every item carries a ``fact`` key (e.g. ``"plus:3:4"``) naming what must be known to
answer; the corpus builder holds some facts out of training to measure generalisation.
"""
from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field, replace

from aqaa_ref.data.styles import (MALE_VOICES, MANY_TRAIN_VOICES, MANY_UNSEEN_VOICES, TRAIN_VOICES, UNSEEN_VOICE, Speech,
                                  assistant, number_word)

LANGUAGES = ("en", "cmn", "yue", "ja")
LANGUAGE_NAMES = {"cmn": "Mandarin", "yue": "Cantonese", "ja": "Japanese"}

#: question templates: task -> language -> template over number words {a} and {b}
TEMPLATES = {
    "plus": {"en": "what is {a} plus {b}", "cmn": "{a}加{b}等于几", "yue": "{a}加{b}係幾多", "ja": "{a}たす{b}は"},
    "minus": {"en": "what is {a} minus {b}", "cmn": "{a}减{b}等于几", "yue": "{a}減{b}係幾多", "ja": "{a}ひく{b}は"},
    "times": {"en": "what is {a} times {b}", "cmn": "{a}乘{b}等于几", "yue": "{a}乘{b}係幾多", "ja": "{a}かける{b}は"},
    "bigger": {"en": "which is bigger, {a} or {b}", "cmn": "{a}和{b}哪个大", "yue": "{a}同{b}邊個大",
               "ja": "{a}と{b}どっちがおおきい"},
    "after": {"en": "what comes after {a}", "cmn": "{a}后面是几", "yue": "{a}之後係幾多", "ja": "{a}のつぎは"},
    "before": {"en": "what comes before {a}", "cmn": "{a}前面是几", "yue": "{a}之前係幾多", "ja": "{a}のまえは"},
}
#: more ways to ask the same thing (``CorpusConfig.phrasing="varied"``): task -> language ->
#: (training templates, held-out templates). The first training template is the TEMPLATES one;
#: the held-out ones are asked only in the test split's ``unseen_phrasing`` condition, so that
#: condition measures whether a question is understood when worded in a way never trained on.
PHRASINGS = {
    "plus": {"en": (("what is {a} plus {b}", "what's {a} plus {b}", "how much is {a} plus {b}",
                     "could you tell me what {a} plus {b} is", "add {a} and {b}", "{a} plus {b} is what"),
                    ("tell me the sum of {a} and {b}", "what do you get if you add {a} to {b}")),
             "cmn": (("{a}加{b}等于几", "{a}加{b}是多少", "请问{a}加{b}等于多少"), ("{a}加上{b}得几",)),
             "yue": (("{a}加{b}係幾多", "{a}加{b}等於幾多"), ("{a}加埋{b}係幾多",)),
             "ja": (("{a}たす{b}は", "{a}たす{b}はいくつ"), ("{a}と{b}をたすといくつ",))},
    "minus": {"en": (("what is {a} minus {b}", "what's {a} minus {b}", "how much is {a} minus {b}",
                      "could you tell me what {a} minus {b} is", "take {b} from {a}"),
                     ("tell me {a} take away {b}", "what is left if you subtract {b} from {a}")),
              "cmn": (("{a}减{b}等于几", "{a}减{b}是多少", "请问{a}减{b}等于多少"), ("{a}减去{b}得几",)),
              "yue": (("{a}減{b}係幾多", "{a}減{b}等於幾多"), ("{a}減走{b}係幾多",)),
              "ja": (("{a}ひく{b}は", "{a}ひく{b}はいくつ"), ("{a}から{b}をひくといくつ",))},
    "times": {"en": (("what is {a} times {b}", "what's {a} times {b}", "how much is {a} times {b}",
                      "could you tell me what {a} times {b} is", "multiply {a} by {b}"),
                     ("tell me the product of {a} and {b}", "what do you get if you multiply {a} and {b}")),
              "cmn": (("{a}乘{b}等于几", "{a}乘{b}是多少", "请问{a}乘{b}等于多少"), ("{a}乘以{b}得几",)),
              "yue": (("{a}乘{b}係幾多", "{a}乘{b}等於幾多"), ("{a}乘埋{b}係幾多",)),
              "ja": (("{a}かける{b}は", "{a}かける{b}はいくつ"), ("{a}に{b}をかけるといくつ",))},
    "bigger": {"en": (("which is bigger, {a} or {b}", "which one is bigger, {a} or {b}",
                       "could you tell me which is bigger, {a} or {b}", "is {a} or {b} bigger"),
                      ("which number is larger, {a} or {b}", "of {a} and {b}, which is more")),
               "cmn": (("{a}和{b}哪个大", "{a}和{b}哪个比较大"), ("{a}跟{b}谁大",)),
               "yue": (("{a}同{b}邊個大", "{a}同{b}邊個比較大"), ("{a}定{b}大啲",)),
               "ja": (("{a}と{b}どっちがおおきい", "{a}と{b}はどちらがおおきい"), ("{a}と{b}ではどっちがおおきいですか",))},
    "after": {"en": (("what comes after {a}", "what number comes after {a}", "could you tell me what comes after {a}",
                      "which number is after {a}"), ("what is the next number after {a}", "count on from {a}")),
              "cmn": (("{a}后面是几", "{a}后面是多少"), ("{a}的下一个数是几",)),
              "yue": (("{a}之後係幾多", "{a}之後係邊個數"), ("{a}嘅下一個數係幾多",)),
              "ja": (("{a}のつぎは", "{a}のつぎはいくつ"), ("{a}のあとのかずは",))},
    "before": {"en": (("what comes before {a}", "what number comes before {a}",
                       "could you tell me what comes before {a}", "which number is before {a}"),
                      ("what is the number just before {a}", "count back one from {a}")),
               "cmn": (("{a}前面是几", "{a}前面是多少"), ("{a}的前一个数是几",)),
               "yue": (("{a}之前係幾多", "{a}之前係邊個數"), ("{a}嘅前一個數係幾多",)),
               "ja": (("{a}のまえは", "{a}のまえはいくつ"), ("{a}のひとつまえのかずは",))},
    "translate": {"en": (("how do you say {a} in {b}", "what is {a} in {b}", "could you tell me how to say {a} in {b}"),
                         ("say {a} in {b}", "what's the {b} word for {a}"))},
    "repeat": {"en": (("repeat after me, {a}", "say after me, {a}", "please repeat, {a}"),
                      ("can you say this back to me, {a}", "echo these words, {a}"))},
    "opposite": {"en": (("say the opposite of {a}", "what is the opposite of {a}", "tell me the opposite of {a}"),
                        ("give me the word that means the reverse of {a}", "what's the antonym of {a}"))},
    "speed": {"en": (("am I speaking fast or slow", "am I talking fast or slow", "is my speech fast or slow"),
                     ("do I talk quickly or slowly", "how fast am I speaking, fast or slow"))},
    "pitch": {"en": (("is my voice high or low", "is my voice high or is it low", "do I have a high or a low voice"),
                     ("does my voice sound high or low", "how high is my voice, high or low"))},
    "gender": {"en": (("am I a man or a woman", "is this a man or a woman speaking", "am I male or female"),
                      ("do I sound like a man or a woman", "is the speaker a man or a woman"))},
    # the long-answer family (EXTRA_FAMILIES)
    "count": {"en": (("count from {a} to {b}", "please count from {a} to {b}", "count {a} to {b}"),
                     ("say every number from {a} to {b}",))},
    "spell": {"en": (("spell {a} and {b}", "please spell {a} and {b}", "how do you spell {a} and {b}"),
                     ("spell out {a} and {b} letter by letter",))},
    "list": {"en": (("repeat this list, {a}", "say this list back, {a}"), ("read these words back to me, {a}",))},
    "sentence": {"en": (("say this {s}, {a}", "please say this {s}, {a}"), ("repeat this {s}, {a}",))},
}
PHRASING_MODES = ("one", "varied")
VOICE_MODES = ("seven", "many")

BINARY_TASKS = ("plus", "minus", "times", "bigger")
UNARY_TASKS = ("after", "before")

#: instruction -> the English words that ask for it (spoken, or given as text)
INSTRUCTIONS = {
    "slow": "answer slowly", "fast": "answer quickly",
    "high": "answer in a high voice", "low": "answer in a low voice",
    "happy": "answer happily", "sad": "answer sadly", "angry": "answer angrily",
    "robot": "answer like a robot", "child": "answer like a child",
    "grandpa": "answer like a grandpa", "teacher": "answer like a teacher",
}
STYLE_ADVERBS = {"slow": "slowly", "fast": "quickly", "high": "in a high voice", "low": "in a low voice",
                 "happy": "happily", "sad": "sadly"}
SWITCH_PAIRS = (("slow", "fast"), ("fast", "slow"), ("high", "low"), ("low", "high"), ("happy", "sad"), ("sad", "happy"))

WORDS = ("red", "green", "blue", "yellow", "cat", "dog", "bird", "fish", "apple", "bread", "milk", "tea",
         "sun", "moon", "star", "tree", "house", "car", "boat", "book", "pen", "door", "hat", "shoe")
OPPOSITES = {"big": "small", "hot": "cold", "up": "down", "day": "night", "black": "white", "yes": "no",
             "open": "closed", "left": "right", "old": "new", "happy": "sad", "early": "late", "full": "empty"}
OPPOSITES.update({v: k for k, v in list(OPPOSITES.items())})


@dataclass
class Rendering:
    """A synthesized clip on disk: path relative to the corpus root, phonemes, length."""

    path: str
    phonemes: str
    seconds: float


@dataclass
class Item:
    """One spoken question with its answer, and how both are spoken.

    ``question`` is what the user says (an instruction may be part of it); ``instruction``
    is an instruction given in *text* alongside the audio (None when spoken or absent);
    ``answer`` is one or more segments, each with its own style (multi-segment answers
    switch style mid-way).
    """

    id: str
    family: str
    task: str
    fact: str
    question: Speech
    answer: list[Speech]
    instruction: str | None = None
    style: str = "neutral"  # the requested answer style ("slow", "robot", "slow>fast", ...)
    split: str = ""
    condition: str = "seen"  # seen | unseen_voice | unseen_prosody | unseen_fact
    question_audio: Rendering | None = None
    answer_audio: list[Rendering] = field(default_factory=list)

    @property
    def language(self) -> str:
        return self.answer[0].language

    @property
    def answer_text(self) -> str:
        return " ".join(s.text for s in self.answer)

    @property
    def is_multi_segment(self) -> bool:
        return len(self.answer) > 1

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Item":
        d = dict(d)
        d["question"] = Speech(**d["question"])
        d["answer"] = [Speech(**s) for s in d["answer"]]
        d["question_audio"] = Rendering(**d["question_audio"]) if d.get("question_audio") else None
        d["answer_audio"] = [Rendering(**r) for r in d.get("answer_audio") or []]
        return cls(**d)


# ----------------------------------------------------------------------------- context

#: rate and pitch grids for ordinary questions; "unseen prosody" questions use values outside
TRAIN_RATES = tuple(range(140, 221, 10))
TRAIN_PITCHES = tuple(range(30, 71, 5))
UNSEEN_RATES = (122, 128, 232, 240)
UNSEEN_PITCHES = (18, 23, 77, 82)
#: extremes used by the voice-understanding family ("am I speaking fast or slow?")
EXTREME = {"slow": range(95, 116, 5), "fast": range(260, 301, 10), "low": range(0, 13, 3), "high": range(88, 101, 3)}


@dataclass
class TaskContext:
    """What a family generator may draw: the condition and the facts it must (not) use."""

    condition: str = "seen"
    heldout: frozenset = frozenset()  # fact keys never shown in training
    max_operand: int = 9
    text_instruction_prob: float = 0.25
    phrasing: str = "one"             # "one": TEMPLATES only; "varied": PHRASINGS (see there)
    voices: str = "seven"             # "seven": TRAIN_VOICES + UNSEEN_VOICE; "many": MANY_* (styles)

    @property
    def voice_sets(self) -> tuple[tuple, tuple]:
        """(training voices, held-out voices) of this context."""
        if self.voices == "many":
            return MANY_TRAIN_VOICES, MANY_UNSEEN_VOICES
        return TRAIN_VOICES, (UNSEEN_VOICE,)

    def phrase(self, rng: random.Random, task: str, language: str, one: str) -> str:
        """The template a question is asked with: ``one`` (the single wording) when phrasing is
        "one" (no random draw, so such corpora are exactly the earlier ones); otherwise a
        training wording, or a held-out one under the ``unseen_phrasing`` condition."""
        if self.phrasing == "one":
            return one
        train, held = PHRASINGS[task][language]
        return rng.choice(held if self.condition == "unseen_phrasing" else train)

    def fact_allowed(self, key: str) -> bool:
        if self.condition == "unseen_fact":
            return key in self.heldout
        return key not in self.heldout

    def question_speech(self, rng: random.Random, text: str, language: str, **fixed) -> Speech:
        """A question voice for this condition; ``fixed`` overrides (e.g. rate for voice questions)."""
        train, unseen = self.voice_sets
        if self.condition == "unseen_voice":    # one held-out voice: no draw (the "seven" corpora as before)
            voice = unseen[0] if len(unseen) == 1 else rng.choice(unseen)
        else:
            voice = rng.choice(train)
        grid_r, grid_p = (UNSEEN_RATES, UNSEEN_PITCHES) if self.condition == "unseen_prosody" else (TRAIN_RATES, TRAIN_PITCHES)
        kw = dict(voice=voice, rate=rng.choice(grid_r), pitch=rng.choice(grid_p), pitch_range=rng.choice((30, 50, 70)))
        kw.update(fixed)
        return Speech(text=text, language=language, style="question", **kw)


def _pick_operands(rng: random.Random, ctx: TaskContext, task: str) -> tuple[int, int]:
    n = ctx.max_operand
    candidates = [(a, b) for a in range(n + 1) for b in range(n + 1)
                  if not (task == "minus" and a < b) and not (task == "bigger" and a == b)
                  and ctx.fact_allowed(f"{task}:{a}:{b}")]
    if not candidates:
        raise LookupError(f"no {task} facts available under condition {ctx.condition}")
    return rng.choice(candidates)


def reasoning_fact(rng: random.Random, ctx: TaskContext, language: str, tasks=BINARY_TASKS + UNARY_TASKS):
    """Draw an arithmetic/comparison/sequence fact -> (question text, answer text, task, fact key)."""
    task = rng.choice([t for t in tasks if ctx.condition != "unseen_fact" or t in BINARY_TASKS])
    if task in BINARY_TASKS:
        a, b = _pick_operands(rng, ctx, task)
        result = {"plus": a + b, "minus": a - b, "times": a * b, "bigger": max(a, b)}[task]
        key = f"{task}:{a}:{b}"
    else:
        a = rng.randint(1, ctx.max_operand) if task == "before" else rng.randint(0, ctx.max_operand)
        b, result, key = None, a + 1 if task == "after" else a - 1, f"{task}:{a}"
    def w(n):
        return number_word(n, language)

    q = ctx.phrase(rng, task, language, TEMPLATES[task][language]).format(a=w(a), b=w(b) if b is not None else "")
    return q, w(result), task, key


# ----------------------------------------------------------------------------- families

def _styled(rng, ctx, family, styles) -> Item:
    """An English reasoning question with an instruction, answered in the requested style."""
    style = rng.choice(styles)
    q, ans, task, key = reasoning_fact(rng, ctx, "en")
    words = INSTRUCTIONS[style]
    as_text = rng.random() < ctx.text_instruction_prob
    spoken = q if as_text else f"{words}, {q}"
    return Item(id="", family=family, task=task, fact=key, style=style,
                question=ctx.question_speech(rng, spoken, "en"), answer=[assistant(ans, "en", style)],
                instruction=words if as_text else None)


def logical_reasoning(rng: random.Random, ctx: TaskContext) -> Item:
    q, ans, task, key = reasoning_fact(rng, ctx, "en")
    return Item(id="", family="logical_reasoning", task=task, fact=key,
                question=ctx.question_speech(rng, q, "en"), answer=[assistant(ans, "en")])


def language_ability(rng: random.Random, ctx: TaskContext) -> Item:
    if rng.random() < 0.2 and ctx.condition != "unseen_fact":  # cross-lingual: asked in English
        target = rng.choice(("cmn", "yue", "ja"))
        n = rng.randint(0, ctx.max_operand)
        q = ctx.phrase(rng, "translate", "en", "how do you say {a} in {b}").format(
            a=number_word(n, "en"), b=LANGUAGE_NAMES[target])
        return Item(id="", family="language_ability", task="translate", fact=f"say:{target}:{n}",
                    question=ctx.question_speech(rng, q, "en"), answer=[assistant(number_word(n, target), target)])
    lang = rng.choice(("cmn", "yue", "ja"))
    q, ans, task, key = reasoning_fact(rng, ctx, lang)
    return Item(id="", family="language_ability", task=task, fact=key,
                question=ctx.question_speech(rng, q, lang), answer=[assistant(ans, lang)])


def voice_instruction_following(rng: random.Random, ctx: TaskContext) -> Item:
    if rng.random() < 0.3 and ctx.condition != "unseen_fact":  # style switch mid-answer
        s1, s2 = rng.choice(SWITCH_PAIRS)
        w1, w2 = rng.sample(range(10), 2)
        a1, a2 = number_word(w1, "en"), number_word(w2, "en")
        q = f"say {a1} {STYLE_ADVERBS[s1]}, then {a2} {STYLE_ADVERBS[s2]}"
        return Item(id="", family="voice_instruction_following", task="switch", fact=f"switch:{w1}:{w2}",
                    style=f"{s1}>{s2}", question=ctx.question_speech(rng, q, "en"),
                    answer=[assistant(a1, "en", s1), assistant(a2, "en", s2)])
    return _styled(rng, ctx, "voice_instruction_following", ("slow", "fast", "high", "low"))


def speech_emotion_control(rng: random.Random, ctx: TaskContext) -> Item:
    return _styled(rng, ctx, "speech_emotion_control", ("happy", "sad", "angry"))


def role_playing(rng: random.Random, ctx: TaskContext) -> Item:
    return _styled(rng, ctx, "role_playing", ("robot", "child", "grandpa", "teacher"))


def voice_understanding(rng: random.Random, ctx: TaskContext) -> Item:
    task = rng.choice(("speed", "pitch", "gender"))
    if task == "speed":
        label = rng.choice(("fast", "slow"))
        q = ctx.question_speech(rng, ctx.phrase(rng, "speed", "en", "am I speaking fast or slow"), "en",
                                rate=rng.choice(EXTREME[label]))
    elif task == "pitch":
        label = rng.choice(("high", "low"))
        q = ctx.question_speech(rng, ctx.phrase(rng, "pitch", "en", "is my voice high or low"), "en",
                                pitch=rng.choice(EXTREME[label]))
    else:
        q = ctx.question_speech(rng, ctx.phrase(rng, "gender", "en", "am I a man or a woman"), "en")
        label = "a man" if q.voice in MALE_VOICES else "a woman"
    return Item(id="", family="voice_understanding", task=task, fact=f"{task}:{label}",
                question=q, answer=[assistant(label, "en")])


def gaming(rng: random.Random, ctx: TaskContext) -> Item:
    if rng.random() < 0.6:  # repeat-after-me; some word pairs are held out
        while True:
            w1, w2 = rng.sample(WORDS, 2)
            if ctx.fact_allowed(f"repeat:{w1}:{w2}"):
                break
        return Item(id="", family="gaming", task="repeat", fact=f"repeat:{w1}:{w2}",
                    question=ctx.question_speech(rng, ctx.phrase(rng, "repeat", "en", "repeat after me, {a}").format(
                        a=f"{w1} {w2}"), "en"),
                    answer=[assistant(f"{w1} {w2}", "en")])
    if ctx.condition == "unseen_fact":  # opposites are memorised facts: nothing to hold out
        return gaming(rng, ctx)
    w = rng.choice(sorted(OPPOSITES))
    return Item(id="", family="gaming", task="opposite", fact=f"opposite:{w}",
                question=ctx.question_speech(rng, ctx.phrase(rng, "opposite", "en", "say the opposite of {a}").format(a=w),
                                             "en"),
                answer=[assistant(OPPOSITES[w], "en")])


# ----------------------------------------------------------------------------- long answers

#: words a sentence is built from (a small grammar: "the ADJ NOUN VERB the ADJ NOUN PLACE")
ADJECTIVES = ("red", "green", "blue", "yellow", "big", "small", "old", "new", "happy", "sad")
NOUNS = ("cat", "dog", "bird", "fish", "boat", "car", "house", "tree", "book", "hat")
VERBS = ("sees", "likes", "finds", "follows", "takes", "paints")
PLACES = ("by the door", "in the rain", "at night", "on the hill", "near the sea", "after tea")
SPELL_WORDS = ("yellow", "orange", "purple", "banana", "window", "garden", "rabbit", "monkey", "pencil",
               "winter", "summer", "button", "candle", "dinner", "forest", "planet")
LONG_TASKS = ("count", "spell", "list", "sentence")


def _sentence(rng: random.Random) -> str:
    a1, a2 = rng.sample(ADJECTIVES, 2)
    n1, n2 = rng.sample(NOUNS, 2)
    return f"the {a1} {n1} {rng.choice(VERBS)} the {a2} {n2} {rng.choice(PLACES)}"


def long_answer(rng: random.Random, ctx: TaskContext) -> Item:
    """Answers of 7-14 words (10-34 text tokens of the toy tokenizer, about 3 s of speech, up to 6),
    so that the answer formats (10:15, 3:5, 6:50, text-CoT, audio-only) write them as *different*
    sequences; every one is checkable from the question alone:

    count     "count from four to thirteen"          -> "four five six ... thirteen" (10-14 numbers, up or down)
    spell     "spell garden and rabbit"              -> "g a r d e n and r a b b i t"
    list      "repeat this list, red cat ... tea"    -> the same 7-9 words
    sentence  "say this slowly, the red cat sees..." -> the sentence, in the style asked for
    """
    task = rng.choice(LONG_TASKS)
    style = "neutral"
    if task == "count":
        n = rng.randint(10, 14)
        lo = rng.randint(0, 20 - n + 1)
        a, b = (lo, lo + n - 1) if rng.random() < 0.5 else (lo + n - 1, lo)
        step = 1 if b > a else -1
        q = ctx.phrase(rng, "count", "en", "count from {a} to {b}").format(a=number_word(a, "en"), b=number_word(b, "en"))
        ans, key = " ".join(number_word(k, "en") for k in range(a, b + step, step)), f"count:{a}:{b}"
    elif task == "spell":
        w1, w2 = rng.sample(SPELL_WORDS, 2)
        q = ctx.phrase(rng, "spell", "en", "spell {a} and {b}").format(a=w1, b=w2)
        ans, key = f"{' '.join(w1)} and {' '.join(w2)}", f"spell:{w1}:{w2}"
    elif task == "list":
        words = rng.sample(WORDS, rng.randint(7, 9))
        ans = " ".join(words)
        q = ctx.phrase(rng, "list", "en", "repeat this list, {a}").format(a=ans)
        key = f"list:{'-'.join(words)}"
    else:
        style = rng.choice(tuple(STYLE_ADVERBS))
        ans = _sentence(rng)
        q = ctx.phrase(rng, "sentence", "en", "say this {s}, {a}").format(s=STYLE_ADVERBS[style], a=ans)
        key = f"sentence:{ans.replace(' ', '-')}"
    return Item(id="", family="long_answer", task=task, fact=key, style=style,
                question=ctx.question_speech(rng, q, "en"), answer=[assistant(ans, "en", style)])


FAMILIES = {
    "logical_reasoning": logical_reasoning,
    "language_ability": language_ability,
    "voice_instruction_following": voice_instruction_following,
    "speech_emotion_control": speech_emotion_control,
    "role_playing": role_playing,
    "voice_understanding": voice_understanding,
    "gaming": gaming,
}
#: families outside the seven StepEval dimensions above, drawn only when a corpus asks for them
#: (``CorpusConfig.family_counts``) or as a supplement (``data.corpus.long_answer_items``)
EXTRA_FAMILIES = {"long_answer": long_answer}
#: families whose facts can be held out (the "unseen fact" condition draws from these)
HELDOUT_FAMILIES = ("logical_reasoning", "language_ability", "voice_instruction_following",
                    "speech_emotion_control", "role_playing", "gaming")


def heldout_facts(rng: random.Random, fraction: float, max_operand: int = 9) -> frozenset:
    """Choose the fact keys kept out of training: a ``fraction`` of each binary task's
    operand pairs (across every language) and of the repeat-after-me word pairs."""
    keys = []
    n = max_operand
    for task in BINARY_TASKS:
        pairs = [(a, b) for a in range(n + 1) for b in range(n + 1)
                 if not (task == "minus" and a < b) and not (task == "bigger" and a == b)]
        keys += [f"{task}:{a}:{b}" for a, b in rng.sample(pairs, max(1, round(fraction * len(pairs))))]
    word_pairs = [(a, b) for a in WORDS for b in WORDS if a != b]
    keys += [f"repeat:{a}:{b}" for a, b in rng.sample(word_pairs, max(1, round(fraction * len(word_pairs))))]
    return frozenset(keys)


def make_item(family: str, rng: random.Random, ctx: TaskContext) -> Item:
    make = FAMILIES.get(family) or EXTRA_FAMILIES.get(family)
    if make is None:
        raise ValueError(f"unknown task family {family!r}; known: {sorted(FAMILIES | EXTRA_FAMILIES)}")
    item = make(rng, ctx)
    return replace(item, condition=ctx.condition)
