"""The text tokenizer: a small byte-level BPE whose ids follow ``AudioVocab``'s layout.

Step-1 reads one id space (facts §1, §3)::

    [0, text_vocab_size)                  specials, then BPE tokens, then <|reserved_k|> padding
    [linguistic_offset, semantic_offset)  <audio_0> ... <audio_{n_linguistic-1}>
    [semantic_offset, audio_end)          <audio_{n_linguistic}> ... <audio_{n_audio-1}>
    [audio_end, size)                     <|extra_k|> (unused, as in the released 74,752 vocab)

so ``<audio_k>`` has id ``text_vocab_size + k`` (Step-Audio writes audio into prompts
the same way). The first ids copy the released tokenizer where the facts say so: pad 0,
bos 1, eos = <|EOT|> = 3, <|BOT|> = 4; we add unk 2 and the audio markers 5, 6.

Byte-level BPE never meets an unknown character: every string, in any script
(English, 中文, 粵語, 日本語), encodes to bytes-level tokens and decodes back exactly.

Chat turns: ``<|BOT|>{role}\\n{content}<|EOT|>`` with roles system, human, assistant,
after one leading bos. ``tok.apply_chat_template(messages)`` renders this.
"""
from __future__ import annotations

from collections.abc import Iterable

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from aqaa_ref.formats.id_layout import AudioVocab

PAD, BOS, UNK, EOT, BOT = "<pad>", "<s>", "<unk>", "<|EOT|>", "<|BOT|>"
AUDIO_START, AUDIO_END = "<audio_start>", "<audio_end>"
SPECIAL_TOKENS = [PAD, BOS, UNK, EOT, BOT, AUDIO_START, AUDIO_END]   # ids 0..6, in this order
ROLES = ("system", "human", "assistant")
N_BYTES = 256

CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for m in messages %}"
    "{% if m['role'] not in ['system', 'human', 'assistant'] %}"
    "{{ raise_exception('role must be system, human or assistant, got ' + m['role']) }}"
    "{% endif %}"
    "<|BOT|>{{ m['role'] }}\n{{ m['content'] }}<|EOT|>"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|BOT|>assistant\n{% endif %}"
)


def audio_token(k: int) -> str:
    """The string of audio id ``text_vocab_size + k`` (k in [0, n_audio))."""
    return f"<audio_{k}>"


def train_text_tokenizer(texts: Iterable[str], vocab: AudioVocab, min_frequency: int = 2,
                         max_bpe_vocab: int | None = None) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE on ``texts`` and lay all ids out as ``vocab`` says.

    The BPE gets at most ``max_bpe_vocab`` (default: the whole text block) tokens including
    the 7 specials and 256 bytes; whatever it does not learn is padded with
    ``<|reserved_k|>`` so the text block is exactly ``vocab.text_vocab_size`` ids.
    Returns a ``PreTrainedTokenizerFast`` with ``len(tok) == vocab.size``.
    """
    floor = len(SPECIAL_TOKENS) + N_BYTES
    if vocab.text_vocab_size < floor:
        raise ValueError(f"text_vocab_size {vocab.text_vocab_size} is below {floor} "
                         f"(7 specials + 256 byte tokens)")
    target = min(max_bpe_vocab or vocab.text_vocab_size, vocab.text_vocab_size)
    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=target, min_frequency=min_frequency,
                                  special_tokens=SPECIAL_TOKENS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    core.train_from_iterator(texts, trainer=trainer)
    learned = core.get_vocab_size()
    # Pad the text block, then the audio block, then the unused extra block, in id order.
    added = [f"<|reserved_{k}|>" for k in range(vocab.text_vocab_size - learned)]
    added += [audio_token(k) for k in range(vocab.n_audio)]
    added += [f"<|extra_{k}|>" for k in range(vocab.extra)]
    core.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in added])
    tok = PreTrainedTokenizerFast(tokenizer_object=core, pad_token=PAD, bos_token=BOS, unk_token=UNK,
                                  eos_token=EOT, clean_up_tokenization_spaces=False)
    tok.chat_template = CHAT_TEMPLATE
    tok.init_kwargs["audio_vocab"] = vocab.to_dict()     # saved in tokenizer_config.json
    check_layout(tok, vocab)
    return tok


def load_text_tokenizer(path) -> PreTrainedTokenizerFast:
    """Load a tokenizer saved with ``tok.save_pretrained(path)`` and re-check its id layout."""
    tok = PreTrainedTokenizerFast.from_pretrained(path)
    vocab = AudioVocab(**tok.init_kwargs["audio_vocab"])
    check_layout(tok, vocab)
    return tok


def check_layout(tok, vocab: AudioVocab) -> None:
    """Raise ValueError unless ``tok``'s ids sit exactly where ``vocab`` says."""
    if len(tok) != vocab.size:
        raise ValueError(f"tokenizer has {len(tok)} ids, AudioVocab says {vocab.size}")
    for i, t in enumerate(SPECIAL_TOKENS):
        if tok.convert_tokens_to_ids(t) != i:
            raise ValueError(f"special token {t} should have id {i}")
    for k in (0, vocab.n_linguistic - 1, vocab.n_linguistic, vocab.n_audio - 1):
        if tok.convert_tokens_to_ids(audio_token(k)) != vocab.linguistic_offset + k:
            raise ValueError(f"{audio_token(k)} should have id {vocab.linguistic_offset + k}")


def audio_vocab_of(tok) -> AudioVocab:
    """The ``AudioVocab`` a tokenizer from ``train_text_tokenizer`` was built for."""
    return AudioVocab(**tok.init_kwargs["audio_vocab"])


def encode_text(tok, text: str) -> list[int]:
    """Plain text -> ids with no specials added (content of a turn)."""
    return tok.encode(text, add_special_tokens=False)


def decode_text(tok, ids) -> str:
    """ids -> text, dropping specials and audio tokens (they are all special tokens)."""
    return tok.decode(list(ids), skip_special_tokens=True, clean_up_tokenization_spaces=False)
