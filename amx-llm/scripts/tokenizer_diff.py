#!/usr/bin/env python3
"""amx-llm's tokenizer against llama.cpp's, text by text: ids in the four modes
(add_special x parse_special) and every token's piece, on random and real texts.

    python3 amx-llm/scripts/tokenizer_diff.py LLAMA_BIN_DIR MODEL [MODEL ...]
        [--amx PATH] [--count 3000] [--seed 1] [--cli-check 100] [--pieces]
        [--files] [--long N] [--report FILE] [--max-shrink 20]
        [--tiny N [--tiny-texts 200] [--keep DIR]]

LLAMA_BIN_DIR holds llama-tokenize and libllama.so (llama.cpp's build/bin). The bulk of
the texts goes through libllama.so's own `llama_tokenize` and `llama_token_to_piece`
(ctypes: llama-tokenize is those calls behind a command line, and loading a 262k vocabulary
per text would take hours); `--cli-check N` runs llama-tokenize itself on N texts per mode
and checks the library path gives the same ids. amx-llm's side is the example
`tokenize_ids` (cargo build --release -p amx-llm --example tokenize_ids), kept running.

Texts: random mixes (words, contractions, digit runs, whitespace, accents and combining
marks, scripts, emoji sequences, odd code points, special-token strings, code, long runs),
as many again made from each model's own vocabulary (special-token soup, token-piece soup,
code-point soup, lossily decoded random bytes), `--files` the lines and paragraphs of
/usr/share/common-licenses/* and some /usr/share/doc/*/copyright, `--long` ~30k-character
texts.

`--tiny N` also writes N random tiny vocabularies as GGUF files (SentencePiece and
byte-level BPE over a few characters, every pre-tokenizer, tied and signed-zero scores,
merges that form no token, many short overlapping special tokens, EOG/FIM names as normal
tokens, model names that set strip flags) and compares on texts over their alphabet;
`--keep DIR` keeps the files of failing ones.

Each mismatch is shrunk to a minimal text (code points dropped while the mismatch stays)
and printed with both id lists. Exit status 1 when anything mismatched.
"""
import argparse
import ctypes
import glob
import json
import os
import random
import struct
import subprocess
import sys
import tempfile

MODES = [(True, True), (True, False), (False, True), (False, False)]
MODE_NAMES = ["add+parse", "add", "parse", "plain"]


# ---------------------------------------------------------------- llama.cpp via ctypes

class ModelParams(ctypes.Structure):
    """llama.h's `struct llama_model_params` (80 bytes, vocab_only at 72)."""
    _fields_ = [
        ("devices", ctypes.c_void_p),
        ("tensor_buft_overrides", ctypes.c_void_p),
        ("n_gpu_layers", ctypes.c_int32),
        ("split_mode", ctypes.c_int32),
        ("load_mode", ctypes.c_int32),
        ("lazy_mode", ctypes.c_int32),
        ("main_gpu", ctypes.c_int32),
        ("tensor_split", ctypes.c_void_p),
        ("progress_callback", ctypes.c_void_p),
        ("progress_callback_user_data", ctypes.c_void_p),
        ("kv_overrides", ctypes.c_void_p),
        ("vocab_only", ctypes.c_bool),
        ("check_tensors", ctypes.c_bool),
        ("use_extra_bufts", ctypes.c_bool),
        ("no_host", ctypes.c_bool),
        ("no_alloc", ctypes.c_bool),
        ("load_mtp", ctypes.c_bool),
    ]


class LoadError(Exception):
    """libllama refused the model file."""


LOG_CB = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)


class Llama:
    """One model's vocabulary in libllama.so."""
    lib = None
    _quiet = None

    @classmethod
    def load_lib(cls, bin_dir):
        if cls.lib is not None:
            return
        for dep in ["libggml-base.so", "libggml-cpu.so", "libggml.so"]:
            path = os.path.join(bin_dir, dep)
            if os.path.exists(path):
                ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
        lib = ctypes.CDLL(os.path.join(bin_dir, "libllama.so"))
        lib.llama_model_default_params.restype = ModelParams
        lib.llama_model_load_from_file.argtypes = [ctypes.c_char_p, ModelParams]
        lib.llama_model_load_from_file.restype = ctypes.c_void_p
        lib.llama_model_free.argtypes = [ctypes.c_void_p]
        lib.llama_model_get_vocab.argtypes = [ctypes.c_void_p]
        lib.llama_model_get_vocab.restype = ctypes.c_void_p
        lib.llama_vocab_n_tokens.argtypes = [ctypes.c_void_p]
        lib.llama_vocab_n_tokens.restype = ctypes.c_int32
        lib.llama_tokenize.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int32,
                                       ctypes.POINTER(ctypes.c_int32), ctypes.c_int32,
                                       ctypes.c_bool, ctypes.c_bool]
        lib.llama_tokenize.restype = ctypes.c_int32
        lib.llama_token_to_piece.argtypes = [ctypes.c_void_p, ctypes.c_int32, ctypes.c_char_p,
                                             ctypes.c_int32, ctypes.c_int32, ctypes.c_bool]
        lib.llama_token_to_piece.restype = ctypes.c_int32
        lib.llama_vocab_get_add_bos.argtypes = [ctypes.c_void_p]
        lib.llama_vocab_get_add_bos.restype = ctypes.c_bool
        lib.llama_vocab_get_attr.argtypes = [ctypes.c_void_p, ctypes.c_int32]
        lib.llama_vocab_get_attr.restype = ctypes.c_int32
        lib.llama_log_set.argtypes = [LOG_CB, ctypes.c_void_p]
        cls._quiet = LOG_CB(lambda level, text, data: None)
        lib.llama_log_set(cls._quiet, None)
        lib.llama_backend_init()
        cls.lib = lib

    def __init__(self, bin_dir, model):
        Llama.load_lib(bin_dir)
        params = self.lib.llama_model_default_params()
        params.vocab_only = True
        self.model = self.lib.llama_model_load_from_file(model.encode(), params)
        if not self.model:
            raise LoadError(f"libllama could not load {model}")
        self.vocab = self.lib.llama_model_get_vocab(self.model)
        self.n_tokens = self.lib.llama_vocab_n_tokens(self.vocab)
        self.add_bos = bool(self.lib.llama_vocab_get_add_bos(self.vocab))

    def close(self):
        self.lib.llama_model_free(self.model)
        self.model = self.vocab = None

    def tokenize(self, text, add_special, parse_special):
        data = text.encode("utf-8")
        n = len(data) + 8
        while True:
            buf = (ctypes.c_int32 * n)()
            got = self.lib.llama_tokenize(self.vocab, data, len(data), buf, n, add_special,
                                          parse_special)
            if got >= 0:
                return list(buf[:got])
            n = -got

    def specials(self):
        """The strings of control, user-defined and unknown tokens."""
        return [self.piece(t).decode("utf-8", "replace") for t in range(self.n_tokens)
                if self.lib.llama_vocab_get_attr(self.vocab, t) & (1 | 8 | 16)]

    def piece(self, token):
        n = 64
        while True:
            buf = ctypes.create_string_buffer(n)
            got = self.lib.llama_token_to_piece(self.vocab, token, buf, n, 0, True)
            if got >= 0:
                return buf.raw[:got]
            n = -got


def llama_tokenize_cli(bin_dir, model, text, add_bos, parse_special):
    """llama-tokenize's ids for `text` (through a file, escapes off)."""
    with tempfile.NamedTemporaryFile("wb", suffix=".txt", delete=False) as f:
        f.write(text.encode("utf-8"))
        path = f.name
    try:
        cmd = [os.path.join(bin_dir, "llama-tokenize"), "-m", model, "-f", path, "--ids",
               "--no-escape", "--log-disable"]
        if not add_bos:
            cmd.append("--no-bos")
        if not parse_special:
            cmd.append("--no-parse-special")
        env = dict(os.environ, LD_LIBRARY_PATH=bin_dir)
        out = subprocess.run(cmd, capture_output=True, check=True, env=env).stdout
    finally:
        os.unlink(path)
    line = [ln for ln in out.decode().splitlines() if ln.startswith("[")][-1]
    return json.loads(line)


# ---------------------------------------------------------------- amx-llm's side

class Amx:
    """amx-llm's `tokenize_ids MODEL --jsonl`, kept running."""

    def __init__(self, exe, model):
        self.exe, self.model = exe, model
        self.proc = subprocess.Popen([exe, model, "--jsonl"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, encoding="utf-8")

    def tokenize_all(self, text):
        self.proc.stdin.write(json.dumps(text) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait()
            raise RuntimeError(f"tokenize_ids died (status {self.proc.returncode}) on "
                               f"{text!r}")
        return json.loads(line)

    def pieces(self):
        out = subprocess.run([self.exe, self.model, "--pieces"], capture_output=True,
                             check=True, text=True).stdout
        return [bytes.fromhex(h) for h in out.splitlines()]

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()


# ---------------------------------------------------------------- texts

LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
PUNCT = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
WHITESPACE = [" ", "  ", "   ", "\t", "\n", "\r\n", "\n\n", "\n\n\n", "\r", " \n", "\t\t",
              " \t ", "\u00a0", "\u3000", "\u2028", "\x0b", "\x0c", "\u2003", "    ", "\n "]
CONTRACTIONS = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T", "'RE", "'Re", "'VE",
                "'M", "'LL", "'Ll", "'D", "'", "''", "'x", "’s"]
ACCENTED = ["é", "e\u0301", "ñ", "n\u0303", "ü", "Å", "a\u030a\u0301", "\u0301", "\u0308x",
            "crème brûlée", "naïve", "Ångström", "façade", "Zoë", "ǅ", "ﬁ", "ß", "ẞ", "İ", "ı",
            "\u0345", "o\u0338", "Z\u0351\u0352\u0353\u0354"]
SCRIPTS = ["日本語のテキスト", "中文字符", "한국어 텍스트", "Привет, мир", "Ёжик", "مرحبا بالعالم",
           "नमस्ते दुनिया", "क्षत्रिय", "Γειά σου", "שלום", "สวัสดี", "ሰላም", "ᚠᚢᚦ", "𝕳𝖊𝖑𝖑𝖔",
           "ｆｕｌｌｗｉｄｔｈ", "ﾊﾝｶｸ", "〇一二三", "٠١٢٣٤٥", "०१२३", "²³¹", "½¾", "Ⅻ", "①②",
           "𠀀𠀁", "ㄱㄴ", "ㅏ", "\u1100\u1161\u11a8"]
EMOJI = ["😀", "👍🏽", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🇫🇷", "1️⃣", "❤️", "🤷🏻‍♀️", "👩🏿‍💻", "🧑‍🤝‍🧑",
         "☃", "✓", "⚡️", "🫠", "\u200d", "\ufe0f", "🏻"]
ODD = ["\ufffd", "\ufeff", "\u200b", "\u200c", "\u200e", "\u2060", "\uffff", "\ufdd0",
       "\ue000", "\ue0d0", "\ue0d1", "\ue0d2", "\ue0d3", "\ue0d4", "\ue0d5", "\U0010ffff",
       "\U000e0001", "\u00ad", "\x00", "\x01", "\x1b[0m", "\x7f", "\x80", "\x85", "\x9f",
       "\u0378", "\u2581", "\u2581\u2581", "Ġ", "Ċ", "ĉ", "Ā", "▁▁x", "\\n", "\\u00e9",
       "%s%d", "{{}}", "\u202e", "\U0001f3fb\U0001f3fb", "\u0600", "\ud7ff"]
SPECIALS = ["<|im_start|>", "<|im_end|>", "<|endoftext|>", "<start_of_turn>", "<end_of_turn>",
            "<eos>", "<bos>", "<pad>", "<unk>", "<s>", "</s>", "<mask>", "<|im_start",
            "im_start|>", "<<|im_start|>|>", "<start_of_image>", "<end_of_image>",
            "<unused0>", "<unused99>", "<table>", "</table>", "<h1>", "<div>", "<br>", "<0x41>",
            "<0x0A>", "[multimodal]", "<|im_end|><|im_end|>", "<start_of_turn>user\n",
            "<|im_start|>system\nYou are", "<|endoftext|> ", " <eos> ", "<|file_sep|>",
            "<repo_name>", "<filename>", "<gh_stars>", "<issue_start>", "<jupyter_code>",
            "<fim_prefix>", "<fim_middle>", "<fim_suffix>", "<fim_pad>", "<empty_output>",
            "<start_function_call>", "<image_soft_token>", "<mask><mask>", "<|>", "<>"]
CODE = [
    "fn main() {\n    println!(\"Hello, {}!\", name);\n}\n",
    "def f(x):\n\treturn x ** 2  # square\n",
    "for (int i = 0; i < n; ++i) { a[i] += b[i]; }",
    "{\"key\": [1, 2.5, -3e10, null, true], \"s\": \"\\u00e9\"}",
    "<html><body><p class=\"x\">Hi &amp; bye</p></body></html>",
    "SELECT * FROM t WHERE a >= 10 AND b <> 'x';",
    "x := y << 2 | z >> 3 ^ ~w && !v || u != t",
    "#include <stdio.h>\nint main(void){return 0;}\n",
    "let v: Vec<Option<&'static str>> = vec![];",
    "    if x:\n        pass\n    else:\n        raise ValueError('bad')\n",
    "$ ls -la /usr/bin | grep -E '^d' > out.txt 2>&1",
    "a=1;b=2;c=a+b;print(c)//comment",
    "https://example.com/path?q=1&r=%20#frag",
    "user@example.org, +1 (555) 123-4567, 2024-01-01T12:00:00Z",
]


def digits(rng):
    return "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 12)))


def word(rng):
    n = rng.choice([1, 2, 3, 4, 5, 6, 8, 10, 14])
    w = "".join(rng.choice(LETTERS) for _ in range(n))
    return rng.choice([w, w.lower(), w.capitalize(), w.upper()])


def long_run(rng):
    n = rng.choice([50, 100, 200, 300, 700])
    kind = rng.randrange(6)
    if kind == 0:
        return "".join(rng.choice(LETTERS) for _ in range(n))
    if kind == 1:
        return rng.choice(["a", "x", "ab", "é", "語", "😀", "-", "=", "\u2581"]) * n
    if kind == 2:
        return "".join(rng.choice("0123456789") for _ in range(n))
    if kind == 3:
        return rng.choice([" ", "\n", "\t", "\r\n", " \n"]) * (n // 10)
    if kind == 4:
        return "".join(rng.choice(PUNCT) for _ in range(n // 5))
    return "".join(chr(rng.randint(0x4E00, 0x9FFF)) for _ in range(n // 5))


def random_cpt(rng):
    while True:
        block = rng.choice([(0x20, 0x7F), (0x80, 0x250), (0x250, 0x800), (0x800, 0x1000),
                            (0x1000, 0x3000), (0x3000, 0xA000), (0xA000, 0xD800),
                            (0xE000, 0x10000), (0x10000, 0x20000), (0x20000, 0x110000),
                            (0, 0x20)])
        cp = rng.randrange(*block)
        if not 0xD800 <= cp < 0xE000:
            return chr(cp)


def fragment(rng):
    kind = rng.randrange(16)
    if kind <= 2:
        return word(rng)
    if kind == 3:
        return rng.choice(PUNCT) * rng.randint(1, 3)
    if kind == 4:
        return digits(rng)
    if kind == 5:
        return rng.choice(WHITESPACE)
    if kind == 6:
        return rng.choice(CONTRACTIONS)
    if kind == 7:
        return rng.choice(ACCENTED)
    if kind == 8:
        return rng.choice(SCRIPTS)
    if kind == 9:
        return rng.choice(EMOJI)
    if kind == 10:
        return rng.choice(ODD)
    if kind == 11:
        return rng.choice(SPECIALS)
    if kind == 12:
        return rng.choice(CODE)
    if kind == 13:
        return long_run(rng) if rng.random() < 0.3 else word(rng) + rng.choice(CONTRACTIONS)
    if kind == 14:
        return "".join(random_cpt(rng) for _ in range(rng.randint(1, 6)))
    return " " + word(rng)


def random_text(rng):
    parts = []
    if rng.random() < 0.25:
        parts.append(rng.choice(WHITESPACE))
    for _ in range(rng.randint(1, 12)):
        parts.append(fragment(rng))
        r = rng.random()
        if r < 0.4:
            parts.append(" ")
        elif r < 0.5:
            parts.append(rng.choice(WHITESPACE))
    if rng.random() < 0.25:
        parts.append(rng.choice(WHITESPACE))
    return "".join(parts)


def special_soup(rng, specials):
    """Special-token strings of the model, whole and cut, glued to text and to each other."""
    parts = []
    for _ in range(rng.randint(1, 8)):
        s = rng.choice(specials)
        r = rng.random()
        if r < 0.2 and len(s) > 1:
            k = rng.randrange(1, len(s))
            s = s[:k] if rng.random() < 0.5 else s[k:]
        elif r < 0.3:
            s = s * rng.randint(2, 3)
        parts.append(s)
        if rng.random() < 0.5:
            parts.append(fragment(rng))
    return "".join(parts)


def vocab_soup(rng, llama):
    """Random tokens' pieces glued together: text that is all merges."""
    out = []
    for _ in range(rng.randint(1, 10)):
        out.append(llama.piece(rng.randrange(llama.n_tokens)).decode("utf-8", "ignore"))
        if rng.random() < 0.2:
            out.append(rng.choice([" ", "\n", ""]))
    return "".join(out)


def cpt_soup(rng):
    """Code points from anywhere, in runs and mixed with ASCII."""
    out = []
    for _ in range(rng.randint(1, 20)):
        c = random_cpt(rng) if rng.random() < 0.6 else rng.choice(LETTERS + PUNCT + " \n\t0")
        out.append(c * (rng.randint(2, 5) if rng.random() < 0.1 else 1))
    return "".join(out)


def bytes_soup(rng):
    """Random bytes read as UTF-8, invalid sequences replaced (as a caller would)."""
    data = bytes(rng.choice([rng.randrange(256), rng.randrange(0x20, 0x7F)])
                 for _ in range(rng.randint(1, 40)))
    return data.decode("utf-8", "replace")


def model_texts(rng, llama, n):
    """`n` texts: special-token soup and vocabulary soup made from the model's own
    vocabulary, code-point soup and lossily decoded random bytes, a quarter of each."""
    specials = [s for s in llama.specials() if s] or SPECIALS
    kinds = [lambda: special_soup(rng, specials), lambda: vocab_soup(rng, llama),
             lambda: cpt_soup(rng), lambda: bytes_soup(rng)]
    return [kinds[i % 4]() for i in range(n)]


def file_texts():
    """Lines (and whole paragraphs) of real text files every Debian machine has."""
    paths = sorted(glob.glob("/usr/share/common-licenses/*"))
    paths += sorted(glob.glob("/usr/share/doc/*/copyright"))[:40]
    texts = []
    for p in paths:
        if not os.path.isfile(p):
            continue
        try:
            data = open(p, "rb").read().decode("utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        lines = data.splitlines(keepends=True)
        texts.extend(ln for ln in lines if ln.strip())
        texts.extend(data.split("\n\n"))
        texts.append(data[:20000])
    seen, out = set(), []
    for t in texts:
        if t and t not in seen:
            seen.add(t)
            out.append(t)
    return out


# ---------------------------------------------------------------- tiny vocabularies

def gguf_bytes(kvs):
    """A GGUF v3 file with metadata `kvs` (name -> (type, value)) and no tensors."""
    def string(x):
        b = x.encode("utf-8")
        return struct.pack("<Q", len(b)) + b

    def scalar(t, v):
        return {"u32": lambda: struct.pack("<I", v), "i32": lambda: struct.pack("<i", v),
                "f32": lambda: struct.pack("<f", v), "bool": lambda: struct.pack("<?", v),
                "str": lambda: string(v)}[t]()

    codes = {"u32": 4, "i32": 5, "f32": 6, "bool": 7, "str": 8}
    out = b"GGUF" + struct.pack("<IQQ", 3, 0, len(kvs))
    for key, (t, v) in kvs.items():
        out += string(key)
        if t.startswith("arr:"):
            sub = t[4:]
            out += struct.pack("<IIQ", 9, codes[sub], len(v))
            out += b"".join(scalar(sub, x) for x in v)
        else:
            out += struct.pack("<I", codes[t]) + scalar(t, v)
    return out + b"\0" * (-len(out) % 32)


TINY_ALPHABET = ["a", "b", "c", " ", "\n", "é", "'", "1"]
# For the pre-tokenizers: every character class their regexes tell apart.
WIDE_ALPHABET = TINY_ALPHABET + ["A", "B", "s", "t", "2", "3", "\r", "\t", "\u00a0", "\u3000",
                                 ".", ",", "!", "?", "/", "$", "+", "<", "|", "`", "…", "。",
                                 "、", "中", "国", "한", "ー", "ア", "\u0301", "\u0903", "١",
                                 "½", "€", "😀", "\u200d", "\ue0d1", "\x00", "\u0378", "S", "T"]
TINY_NAMED = ["<|im_end|>", "<end_of_turn>", "<|endoftext|>", "</s>", "<eos>", "<|eot_id|>",
              "<|fim_prefix|>", "<PRE>", "<fim-pad>", "<|file_sep|>", "<mask>", "[MASK]",
              "<|end|>", "<|return|>", "<|call|>", "<|channel|>", "<unused7>", "<s>", "<unk>"]
TINY_SCORES = [-0.0, 0.0, -1.0, -2.0, -2.0, -3.0]
# Every pre-tokenizer both sides know (amx-llm's "gpt2" alias is not llama.cpp's).
TINY_PRES = [
    "default", "llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0",
    "lfm2", "jina-v5-nano", "dbrx", "smaug-bpe", "tekken", "gpt-4o", "llama4", "kanana2",
    "talkie", "minimax-m2", "deepseek-coder", "deepseek-v3", "hunyuan-dense", "joyai-llm",
    "hy_v4", "falcon", "starcoder", "refact", "command-r", "smollm", "codeshell", "exaone",
    "minerva-7b", "mellum2", "gpt-2", "phi-2", "jina-es", "jina-de", "gigachat",
    "jina-v2-es", "jina-v2-de", "a.x-4.0", "mellum", "modern-bert", "jina-v1-en",
    "jina-v2-code", "roberta-bpe", "mpt", "olmo", "jais", "trillion", "granite-docling",
    "exaone4", "qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "stablelm2", "hunyuan",
    "megrez", "solar-open", "grok-2", "qwen35", "chatglm-bpe", "glm4", "glm5", "poro-chat",
    "bloom", "gpt3-finnish", "viking", "seed-coder", "bailingmoe", "bailingmoe2", "llada-moe",
    "ufakzeka", "minicpm5",
]


def tiny_vocab(rng):
    """A random small vocabulary (SentencePiece or byte-level BPE) over TINY_ALPHABET,
    with tied and signed-zero scores, merges that form no token, and special tokens made
    of ordinary text: the merge-order corners real vocabularies rarely reach."""
    arch = {"general.architecture": ("str", "llama"), "llama.context_length": ("u32", 64),
            "llama.embedding_length": ("u32", 8), "llama.block_count": ("u32", 1),
            "llama.feed_forward_length": ("u32", 8), "llama.attention.head_count": ("u32", 1)}
    def rand_str(alphabet, lo, hi):
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(lo, hi)))

    specials = [rng.choice(["<x>", "ab", "<|e|>", "b b", "\n\n", "c'"])
                for _ in range(rng.randint(0, 3))]
    if rng.random() < 0.4:
        # Many short specials, some overlapping at one length: llama.cpp's std::sort order.
        specials += [rand_str(["a", "b", "c", " ", "1"], 1, 3) for _ in range(rng.randint(5, 40))]
    # Names llama.cpp recognises whatever their type (end of generation, fill-in-the-middle),
    # given as normal tokens; "<mask>" and every special get strip flags by model name.
    named = [n for n in TINY_NAMED if rng.random() < 0.15]
    arch["general.name"] = ("str", rng.choice(["tiny", "Phi-3 tiny", "phi3", "modern-bert"]))
    if "hi" in arch["general.name"][1]:
        # llama.cpp refuses a "phi-3" vocabulary without these (it sets their strip flags).
        named += ["</s>", "<unk>", "<s>", "<|endoftext|>"]
    for key in ["tokenizer.ggml.add_bos_token", "tokenizer.ggml.add_eos_token"]:
        if rng.random() < 0.3:
            arch[key] = ("bool", rng.random() < 0.5)
    if rng.random() < 0.5:
        spm_alpha = [c.replace(" ", "\u2581") for c in TINY_ALPHABET]
        tokens = ["<unk>", "<s>", "</s>"] + ["<0x%02X>" % b for b in range(256)]
        types = [2, 3, 3] + [6] * 256
        scores = [0.0, 0.0, 0.0] + [rng.choice([0.0, -1000.0])] * 256
        pieces = list(dict.fromkeys(spm_alpha + [rand_str(spm_alpha, 2, 4)
                                                 for _ in range(rng.randint(5, 60))]))
        for p in pieces:
            tokens.append(p)
            types.append(1)
            scores.append(rng.choice(TINY_SCORES + [rng.uniform(-5, 0)]))
        for sp in specials:
            sp = sp.replace(" ", "\u2581")
            if sp not in tokens:
                tokens.append(sp)
                types.append(rng.choice([3, 4, 4, 2, 5]))
                scores.append(rng.choice(TINY_SCORES))
        for name in named:
            if name not in tokens:
                tokens.append(name)
                types.append(1)
                scores.append(rng.choice(TINY_SCORES))
        kvs = dict(arch, **{
            "tokenizer.ggml.model": ("str", "llama"),
            "tokenizer.ggml.tokens": ("arr:str", tokens),
            "tokenizer.ggml.scores": ("arr:f32", scores),
            "tokenizer.ggml.token_type": ("arr:i32", types),
            "tokenizer.ggml.add_space_prefix": ("bool", rng.random() < 0.5)})
        return kvs, "spm"
    # Byte-level BPE: the GPT-2 mapping of the alphabet's bytes, then merges.
    byte_chars = {}
    n = 0
    for b in range(256):
        if 0x21 <= b <= 0x7E or 0xA1 <= b <= 0xAC or 0xAE <= b <= 0xFF:
            byte_chars[b] = chr(b)
        else:
            byte_chars[b] = chr(256 + n)
            n += 1
    units = sorted({byte_chars[b] for c in WIDE_ALPHABET for b in c.encode()})
    tokens = list(units)
    merges = []
    if rng.random() < 0.5:
        # Dense: every pair of units merges, so any difference in where the pre-tokenizer
        # cuts shows in the ids.
        pairs = [a + " " + b for a in units for b in units]
        rng.shuffle(pairs)
        merges += pairs
        tokens += [p.replace(" ", "") for p in pairs]
    seen = set(tokens)
    for _ in range(rng.randint(5, 60)):
        left = rng.choice(tokens)
        right = rng.choice(tokens)
        merges.append(left + " " + right)
        if rng.random() < 0.85 and left + right not in seen:
            tokens.append(left + right)
            seen.add(left + right)
    while len(tokens) < 12:
        tokens.append("<pad%d>" % len(tokens))
    types = [1] * len(tokens)
    for sp in specials:
        if sp not in tokens:
            tokens.append(sp)
            types.append(rng.choice([3, 4, 4, 5]))
    for name in named:
        if name not in tokens:
            tokens.append(name)
            types.append(1)
    kvs = dict(arch, **{
        "tokenizer.ggml.model": ("str", "gpt2"),
        "tokenizer.ggml.pre": ("str", rng.choice(TINY_PRES)),
        "tokenizer.ggml.tokens": ("arr:str", tokens),
        "tokenizer.ggml.token_type": ("arr:i32", types),
        "tokenizer.ggml.merges": ("arr:str", merges),
        "tokenizer.ggml.bos_token_id": ("u32", 0),
        "tokenizer.ggml.eos_token_id": ("u32", 1)})
    return kvs, "bpe"


def tiny_text(rng):
    out = []
    alphabet = TINY_ALPHABET if rng.random() < 0.5 else WIDE_ALPHABET
    for _ in range(rng.randint(1, 24)):
        r = rng.random()
        if r < 0.8:
            out.append(rng.choice(alphabet) * (rng.randint(2, 4) if rng.random() < 0.1 else 1))
        elif r < 0.9:
            out.append(rng.choice(["<x>", "<|e|>", "\u2581", "ab", "  "] + TINY_NAMED))
        else:
            out.append(random_cpt(rng))
    return "".join(out)


def compare_tiny(args):
    """Random tiny vocabularies, each written as a GGUF file and given to both sides."""
    rng = random.Random(args.seed)
    failures = []
    total = bad = refused = 0
    with tempfile.TemporaryDirectory() as tmp:
        for v in range(args.tiny):
            kvs, kind = tiny_vocab(rng)
            path = os.path.join(tmp, f"tiny{v}.gguf")
            with open(path, "wb") as f:
                f.write(gguf_bytes(kvs))
            try:
                llama = Llama(args.bin_dir, path)
            except LoadError:
                # e.g. a "phi-3" name without "</s>": llama.cpp's strip flags need it.
                refused += 1
                continue
            amx = Amx(args.amx, path)
            for _ in range(args.tiny_texts):
                text = tiny_text(rng)
                ours = amx.tokenize_all(text)
                for m, (add, parse) in enumerate(MODES):
                    total += 1
                    theirs = llama.tokenize(text, add, parse)
                    if ours[m] == theirs:
                        continue
                    bad += 1
                    if len(failures) < args.max_shrink:
                        def differs(t, m=m, add=add, parse=parse):
                            return amx.tokenize_all(t)[m] != llama.tokenize(t, add, parse)
                        small = shrink(text, differs)
                        keep = os.path.join(args.keep or tmp, f"tiny_fail{len(failures)}.gguf")
                        if args.keep:
                            with open(keep, "wb") as f:
                                f.write(gguf_bytes(kvs))
                        failures.append({"vocab": kind, "gguf": keep, "mode": MODE_NAMES[m],
                                         "text": small, "amx": amx.tokenize_all(small)[m],
                                         "llama": llama.tokenize(small, add, parse)})
                        print(f"  tiny {v} ({kind}) {MODE_NAMES[m]} {small!r}\n"
                              f"    amx-llm   {failures[-1]['amx']}\n"
                              f"    llama.cpp {failures[-1]['llama']}")
            amx.close()
            llama.close()
    print(f"tiny vocabularies: {args.tiny} ({refused} refused by llama.cpp), "
          f"{bad}/{total} tokenizations mismatched")
    return failures


# ---------------------------------------------------------------- comparing

def shrink(text, differs, budget=3000):
    """A minimal text (by code points) for which `differs` still holds: chunks dropped,
    then single code points, then runs of a repeated code point shortened."""
    cpts = list(text)
    calls = 0
    n = 2
    while len(cpts) >= 2 and calls < budget:
        chunk = max(1, len(cpts) // n)
        removed = False
        for start in range(0, len(cpts), chunk):
            cand = cpts[:start] + cpts[start + chunk:]
            calls += 1
            if cand and differs("".join(cand)):
                cpts = cand
                n = max(n - 1, 2)
                removed = True
                break
        if not removed:
            if chunk == 1:
                break
            n = min(len(cpts), n * 2)
    return "".join(cpts)


def compare_ids(models, args):
    rng = random.Random(args.seed)
    common = [random_text(rng) for _ in range(args.count)]
    if args.files:
        common += file_texts()
    failures = []
    for name, llama, amx in models:
        texts = common + model_texts(random.Random(args.seed), llama, args.count)
        if args.long:
            texts += [" ".join(random_text(rng) for _ in range(400)) for _ in range(args.long)]
        counts = [0] * 4
        bad = [0] * 4
        shrunk = {}
        for text in texts:
            ours = amx.tokenize_all(text)
            for m, (add, parse) in enumerate(MODES):
                theirs = llama.tokenize(text, add, parse)
                counts[m] += 1
                if ours[m] == theirs:
                    continue
                bad[m] += 1
                if len(shrunk) >= args.max_shrink:
                    continue

                def differs(t, m=m, add=add, parse=parse):
                    return amx.tokenize_all(t)[m] != llama.tokenize(t, add, parse)

                small = shrink(text, differs)
                if small not in shrunk:
                    shrunk[small] = (m, amx.tokenize_all(small)[m],
                                     llama.tokenize(small, add, parse))
        print(f"{name}: " + ", ".join(f"{MODE_NAMES[m]} {bad[m]}/{counts[m]} mismatched"
                                      for m in range(4)))
        for small, (m, ours, theirs) in shrunk.items():
            print(f"  {MODE_NAMES[m]} {small!r}\n    amx-llm   {ours}\n    llama.cpp {theirs}")
            failures.append({"model": name, "mode": MODE_NAMES[m], "text": small,
                             "amx": ours, "llama": theirs})
    return failures


def compare_cli(models, args):
    """llama-tokenize itself against the library path, on the first texts."""
    rng = random.Random(args.seed + 1)
    texts = [t for t in (random_text(rng) for _ in range(args.cli_check * 2)) if "\x00" not in t]
    texts = texts[:args.cli_check]
    failures = []
    for name, llama, amx in models:
        bad = total = 0
        for text in texts:
            for add, parse in [(True, True), (True, False), (False, True), (False, False)]:
                cli = llama_tokenize_cli(args.bin_dir, llama.path, text, add, parse)
                # llama-tokenize's add_special is "the model adds BOS and no --no-bos".
                lib = llama.tokenize(text, add and llama.add_bos, parse)
                total += 1
                if cli != lib:
                    bad += 1
                    failures.append({"model": name, "cli": cli, "lib": lib, "text": text})
        print(f"{name}: llama-tokenize vs libllama {bad}/{total} differ")
    return failures


def compare_pieces(models):
    failures = []
    for name, llama, amx in models:
        ours = amx.pieces()
        n = llama.n_tokens
        bad = []
        if len(ours) != n:
            print(f"{name}: amx-llm has {len(ours)} pieces, llama.cpp {n}")
        for t in range(min(n, len(ours))):
            theirs = llama.piece(t)
            if ours[t] != theirs:
                bad.append((t, ours[t], theirs))
        print(f"{name}: pieces {len(bad)}/{n} differ")
        for t, o, th in bad[:20]:
            print(f"  {t}: amx-llm {o!r} llama.cpp {th!r}")
        failures += [{"model": name, "id": t, "amx": o.hex(), "llama": th.hex()}
                     for t, o, th in bad]
    return failures


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("bin_dir")
    ap.add_argument("models", nargs="*")
    here = os.path.dirname(os.path.abspath(__file__))
    default_exe = os.path.join(os.environ.get("CARGO_TARGET_DIR",
                                              os.path.join(here, "..", "..", "target")),
                               "release", "examples", "tokenize_ids")
    ap.add_argument("--amx", default=default_exe, help="the tokenize_ids example")
    ap.add_argument("--count", type=int, default=3000,
                    help="random texts, and as many from each model's vocabulary")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--files", action="store_true", help="add lines of real files")
    ap.add_argument("--long", type=int, default=0, help="long texts (~30k chars) to add")
    ap.add_argument("--cli-check", type=int, default=0,
                    help="texts run through llama-tokenize itself too")
    ap.add_argument("--pieces", action="store_true", help="compare every token's piece")
    ap.add_argument("--max-shrink", type=int, default=20,
                    help="mismatches shrunk per model")
    ap.add_argument("--report", help="write the failures as JSON here")
    ap.add_argument("--tiny", type=int, default=0,
                    help="random tiny vocabularies (GGUF files written here) to compare on")
    ap.add_argument("--tiny-texts", type=int, default=200, help="texts per tiny vocabulary")
    ap.add_argument("--keep", help="directory to keep the GGUF files of failing tiny vocabularies")
    args = ap.parse_args()

    models = []
    for path in args.models:
        try:
            llama = Llama(args.bin_dir, path)
        except LoadError as e:
            raise SystemExit(str(e))
        llama.path = path
        models.append((os.path.basename(path), llama, Amx(args.amx, path)))
    failures = {}
    if models and (args.count or args.files):
        failures["ids"] = compare_ids(models, args)
    if args.cli_check:
        failures["cli"] = compare_cli(models, args)
    if args.pieces:
        failures["pieces"] = compare_pieces(models)
    if args.tiny:
        failures["tiny"] = compare_tiny(args)
    for _, _, amx in models:
        amx.close()
    if args.report:
        with open(args.report, "w") as f:
            json.dump(failures, f, indent=1, ensure_ascii=False)
    return 1 if any(failures.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
