"""Byte-level BPE: multilingual round trips, the AudioVocab id layout, chat template, save/load."""
import pytest

from aqaa_ref.formats.answer_format import ChatTemplate, SpecialIds, build_chat
from aqaa_ref.formats.id_layout import AudioVocab
from aqaa_ref.formats.text_tokenizer import (SPECIAL_TOKENS, audio_token, audio_vocab_of, decode_text, encode_text,
                                             load_text_tokenizer, train_text_tokenizer)

CORPUS = {
    "english": ["What is three plus four?", "The answer is seven.", "Hello, how are you today?",
                "Please speak a little slower."],
    "mandarin": ["三加四等于几？", "答案是七。", "你好，今天天气怎么样？", "请说慢一点。"],
    "cantonese": ["三加四係幾多？", "答案係七。", "你食咗飯未呀？", "唔該講慢啲。"],
    "japanese": ["三足す四はいくつですか？", "答えは七です。", "こんにちは、お元気ですか？", "もう少しゆっくり話してください。"],
}
VOCAB = AudioVocab(text_vocab_size=400, n_linguistic=16, n_semantic=32, extra=4)


@pytest.fixture(scope="module")
def tok():
    texts = [s for lang in CORPUS.values() for s in lang] * 10
    return train_text_tokenizer(texts, VOCAB)


@pytest.mark.parametrize("lang", sorted(CORPUS))
def test_round_trip_every_language(tok, lang):
    for s in CORPUS[lang]:
        ids = encode_text(tok, s)
        assert all(7 <= i < VOCAB.text_vocab_size for i in ids)      # plain text ids only
        assert decode_text(tok, ids) == s


def test_unseen_characters_still_round_trip(tok):
    for s in ["Ωμέγα 🙂 ñandú", "  two  spaces\nand a newline\t", "粵語：佢哋喺度。"]:
        assert decode_text(tok, encode_text(tok, s)) == s


def test_bpe_learned_merges(tok):
    # trained text compresses below one token per UTF-8 byte
    s = CORPUS["mandarin"][0]
    assert len(encode_text(tok, s)) < len(s.encode("utf-8")) / 2


def test_id_layout_follows_audio_vocab(tok):
    assert len(tok) == VOCAB.size == 400 + 48 + 4
    assert [tok.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS] == list(range(7))
    assert (tok.pad_token_id, tok.bos_token_id, tok.eos_token_id) == (0, 1, 3)
    assert tok.convert_tokens_to_ids("<|EOT|>") == 3 and tok.convert_tokens_to_ids("<|BOT|>") == 4
    assert tok.convert_tokens_to_ids(audio_token(0)) == VOCAB.linguistic_offset == 400
    assert tok.convert_tokens_to_ids(audio_token(16)) == VOCAB.semantic_offset == 416
    assert tok.convert_tokens_to_ids(audio_token(47)) == VOCAB.audio_end - 1
    assert tok.convert_tokens_to_ids("<|extra_3|>") == VOCAB.size - 1
    assert SpecialIds.from_tokenizer(tok) == SpecialIds()


def test_text_block_is_padded_when_bpe_learns_fewer():
    small = train_text_tokenizer(CORPUS["english"] * 5, VOCAB, max_bpe_vocab=300)
    assert len(small) == VOCAB.size
    assert small.convert_ids_to_tokens(299) != "<|reserved_0|>"
    assert small.convert_ids_to_tokens(300) == "<|reserved_0|>"
    assert small.convert_ids_to_tokens(399) == "<|reserved_99|>"
    assert small.convert_tokens_to_ids(audio_token(0)) == 400
    s = CORPUS["japanese"][0]
    assert decode_text(small, encode_text(small, s)) == s


def test_audio_tokens_in_strings_map_to_audio_ids(tok):
    ids = tok.encode("<audio_start><audio_3><audio_20><audio_end>", add_special_tokens=False)
    assert ids == [5, 403, 420, 6]
    assert decode_text(tok, [*encode_text(tok, "hi"), 403, 6]) == "hi"


def test_chat_template_matches_build_chat(tok):
    messages = [{"role": "system", "content": "Answer briefly."},
                {"role": "human", "content": "三加四等于几？"},
                {"role": "assistant", "content": "答案是七。"}]
    rendered = tok.apply_chat_template(messages, tokenize=False)
    assert rendered == ("<s><|BOT|>system\nAnswer briefly.<|EOT|><|BOT|>human\n三加四等于几？<|EOT|>"
                        "<|BOT|>assistant\n答案是七。<|EOT|>")
    via_template = tok.apply_chat_template(messages, tokenize=True, return_dict=True)["input_ids"]
    turns = [(m["role"], encode_text(tok, m["content"])) for m in messages]
    ids, _ = build_chat(ChatTemplate.from_tokenizer(tok), turns)
    assert via_template == ids
    with pytest.raises(Exception, match="role must be"):
        tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False)


def test_save_load(tok, tmp_path):
    tok.save_pretrained(tmp_path)
    tok2 = load_text_tokenizer(tmp_path)
    assert audio_vocab_of(tok2) == VOCAB
    for lang in CORPUS.values():
        assert tok2.encode(lang[0]) == tok.encode(lang[0])
    assert tok2.chat_template == tok.chat_template


def test_too_small_text_block_is_refused():
    with pytest.raises(ValueError, match="below 263"):
        train_text_tokenizer(["abc"], AudioVocab(text_vocab_size=100, n_linguistic=4, n_semantic=4))
