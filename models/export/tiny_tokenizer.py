"""A tiny CLIP byte-level BPE tokenizer for the random-weight fixture set.

Same scheme as the real CLIP tokenizer: the 256 byte symbols, the same 256 with the end-of-word
marker `</w>`, learned merges, then `<|startoftext|>` and `<|endoftext|>` as the two largest ids
(the text encoder pools at the largest id, see CONTRACT.md). Because every byte symbol is in the
vocabulary, any prompt tokenizes. Written in two formats:
  * vocab.json + merges.txt for transformers' slow `CLIPTokenizer` (the reference), and
  * tokenizer.json (the Hugging Face "fast" format) + tokenizer_config.json for JS tokenizers.
"""

from __future__ import annotations

import collections
import json
from pathlib import Path
from typing import Dict, List, Tuple

END_OF_WORD = "</w>"
BOS = "<|startoftext|>"
EOS = "<|endoftext|>"
MODEL_MAX_LENGTH = 77

# CLIP's pre-tokenizer pattern (letters, single digits, runs of other non-space characters and the
# English contractions), case-insensitive after lower-casing.
SPLIT_PATTERN = r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""

# Training text for the merges: the fixture prompts plus common prompt vocabulary.
CORPUS = """
a red cat 4k photo portrait of a horse in a field at sunset low quality bad quality blurry
the of and to in is on with for at by from as an or it this that be are was were has have
painting drawing illustration render photograph photography photorealistic realistic detailed
highly detailed beautiful landscape mountain mountains river lake sea ocean beach forest tree trees
flower flowers garden city street night day morning evening sky clouds cloud sun moon stars star
dog dogs cat cats bird birds fish horse horses lion tiger bear fox wolf owl rabbit dragon
man woman girl boy child people person face eyes hair smile hands dress hat glasses
house castle tower bridge road car train boat ship plane robot spaceship space planet
red green blue yellow orange purple pink black white gray grey brown gold golden silver colorful
light dark bright soft warm cold sunny rainy snowy foggy misty winter summer spring autumn
oil watercolor acrylic canvas sketch pencil ink digital art artwork concept style artist
trending artstation unreal engine octane cinematic lighting dramatic studio bokeh depth
sharp focus wide angle close up macro lens camera film grain vintage retro modern futuristic
fantasy magical mystical epic surreal abstract minimalist cute funny happy sad old young small big
large tiny huge tall long short round square wooden stone glass metal water fire ice snow
table chair room kitchen window door wall floor bed book books cup coffee tea food fruit apple
cake pizza bread cheese chocolate ice cream kandinsky wassily composition circles lines shapes
high resolution quality masterpiece best worst ugly deformed extra fingers text watermark
""".split()


def bytes_to_unicode() -> Dict[int, str]:
    """The reversible byte -> printable-character map of GPT-2/CLIP byte-level BPE."""
    printable = list(range(ord("!"), ord("~") + 1))
    printable += list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    mapping = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in mapping:
            mapping[b] = chr(256 + extra)
            extra += 1
    return dict(sorted(mapping.items()))


def _word_symbols(word: str, byte_map: Dict[int, str]) -> Tuple[str, ...]:
    chars = [byte_map[b] for b in word.encode("utf-8")]
    return tuple(chars[:-1]) + (chars[-1] + END_OF_WORD,)


def learn_merges(words: List[str], count: int) -> List[Tuple[str, str]]:
    byte_map = bytes_to_unicode()
    frequencies = collections.Counter(words)
    vocab = {_word_symbols(w, byte_map): n for w, n in frequencies.items()}
    merges: List[Tuple[str, str]] = []
    while len(merges) < count:
        pairs: Dict[Tuple[str, str], int] = collections.Counter()
        for symbols, n in vocab.items():
            for pair in zip(symbols, symbols[1:]):
                pairs[pair] += n
        if not pairs:
            raise ValueError(f"corpus too small: only {len(merges)} merges, {count} wanted")
        best = min(pairs, key=lambda p: (-pairs[p], p))  # most frequent, ties broken by the pair itself
        merges.append(best)
        merged = {}
        for symbols, n in vocab.items():
            out: List[str] = []
            i = 0
            while i < len(symbols):
                if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == best:
                    out.append(symbols[i] + symbols[i + 1])
                    i += 2
                else:
                    out.append(symbols[i])
                    i += 1
            merged[tuple(out)] = merged.get(tuple(out), 0) + n
        vocab = merged
    return merges


def build_vocab(vocab_size: int) -> Tuple[Dict[str, int], List[Tuple[str, str]]]:
    byte_symbols = list(bytes_to_unicode().values())
    base = byte_symbols + [s + END_OF_WORD for s in byte_symbols]
    merges = learn_merges(CORPUS, vocab_size - len(base) - 2)
    tokens = base + ["".join(m) for m in merges] + [BOS, EOS]
    if len(set(tokens)) != len(tokens):
        raise ValueError("duplicate token in the tiny vocabulary")
    return {t: i for i, t in enumerate(tokens)}, merges


def write_tokenizer(out_dir: Path, vocab_size: int) -> Dict[str, int]:
    out_dir.mkdir(parents=True, exist_ok=True)
    vocab, merges = build_vocab(vocab_size)
    bos_id, eos_id = vocab[BOS], vocab[EOS]

    (out_dir / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False) + "\n", encoding="utf-8")
    merges_text = "#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges)
    (out_dir / "merges.txt").write_text(merges_text, encoding="utf-8")

    write_fast_tokenizer(out_dir, vocab, merges)
    special = dict(SPECIAL)
    added = {str(bos_id): {"content": BOS, **special}, str(eos_id): {"content": EOS, **special}}
    config = {
        "tokenizer_class": "CLIPTokenizer",
        "model_max_length": MODEL_MAX_LENGTH,
        "bos_token": BOS,
        "eos_token": EOS,
        "unk_token": EOS,
        "pad_token": EOS,
        "do_lower_case": True,
        "errors": "replace",
        "add_prefix_space": False,
        "clean_up_tokenization_spaces": True,
        "added_tokens_decoder": added,
    }
    (out_dir / "tokenizer_config.json").write_text(json.dumps(config, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    (out_dir / "special_tokens_map.json").write_text(
        json.dumps({"bos_token": BOS, "eos_token": EOS, "unk_token": EOS, "pad_token": EOS}, indent=2) + "\n",
        encoding="utf-8",
    )
    return {"bos_token_id": bos_id, "eos_token_id": eos_id, "pad_token_id": eos_id, "vocab_size": len(vocab)}


SPECIAL = {"single_word": False, "lstrip": False, "rstrip": False, "normalized": True, "special": True}


def write_fast_tokenizer(out_dir: Path, vocab: Dict[str, int], merges: List[Tuple[str, str]]) -> None:
    """tokenizer.json in the Hugging Face fast-tokenizer format, equivalent to CLIPTokenizer."""
    bos_id, eos_id = vocab[BOS], vocab[EOS]
    special = dict(SPECIAL)
    fast = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [{"id": bos_id, "content": BOS, **special}, {"id": eos_id, "content": EOS, **special}],
        "normalizer": {
            "type": "Sequence",
            "normalizers": [
                {"type": "NFC"},
                {"type": "Replace", "pattern": {"Regex": r"\s+"}, "content": " "},
                {"type": "Lowercase"},
            ],
        },
        "pre_tokenizer": {
            "type": "Sequence",
            "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": SPLIT_PATTERN}, "behavior": "Removed", "invert": True},
                {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False},
            ],
        },
        "post_processor": {
            "type": "RobertaProcessing",
            "sep": [EOS, eos_id],
            "cls": [BOS, bos_id],
            "trim_offsets": False,
            "add_prefix_space": False,
        },
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": EOS,
            "continuing_subword_prefix": "",
            "end_of_word_suffix": END_OF_WORD,
            "fuse_unk": False,
            "byte_fallback": False,
            "vocab": vocab,
            "merges": [f"{a} {b}" for a, b in merges],
        },
    }
    (out_dir / "tokenizer.json").write_text(json.dumps(fast, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def load_reference_tokenizer(tokenizer_dir: Path):
    """transformers' slow CLIPTokenizer over vocab.json + merges.txt (the reference behaviour)."""
    try:
        import refenv_compat  # noqa: F401  (this project's machines: patches AddedToken, see TESTING.md)
    except ImportError:
        pass
    from transformers import CLIPTokenizer

    return CLIPTokenizer(
        vocab_file=str(tokenizer_dir / "vocab.json"),
        merges_file=str(tokenizer_dir / "merges.txt"),
        model_max_length=MODEL_MAX_LENGTH,
    )


def copy_pretrained_tokenizer(source: Path, target: Path) -> None:
    """Real checkpoints: copy the slow-tokenizer files and write tokenizer.json from them when the
    checkpoint has none (the JS tokenizers read tokenizer.json + tokenizer_config.json)."""
    import shutil

    target.mkdir(parents=True, exist_ok=True)
    for name in ("vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.json"):
        if (source / name).exists():
            shutil.copyfile(source / name, target / name)
    if not (target / "tokenizer.json").exists():
        vocab = json.loads((source / "vocab.json").read_text(encoding="utf-8"))
        lines = (source / "merges.txt").read_text(encoding="utf-8").strip().split("\n")[1:]
        merges = [tuple(line.split()) for line in lines if line]
        write_fast_tokenizer(target, vocab, merges)
