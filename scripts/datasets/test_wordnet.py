#!/usr/bin/env python3
"""Tests of the WordNet dataset builder and its numpy MiniLM embedder.

Run: scripts/datasets/build-wordnet.sh --test   (sets up the venv, then runs this file),
or `python scripts/datasets/test_wordnet.py` / `pytest scripts/datasets` inside it.
tests/dataset_wordnet.rs runs it as part of `cargo test`.

The SciFact test needs the SciFact folder (DBBENCH_SCIFACT, default
../shared/datasets/scifact from the repository, as workloads/rag.toml): without it that
one test says SKIP; with it, it must pass.
"""

from __future__ import annotations

import io
import json
import os
import sys
import tempfile
import zipfile
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import numpy as np  # noqa: E402

import minilm  # noqa: E402
import wordnet  # noqa: E402

REPO = HERE.parent.parent
WORDNET_DIR = Path(os.environ.get("WORDNET_DIR", "/usr/share/wordnet"))
SCIFACT = Path(os.environ.get("DBBENCH_SCIFACT", REPO.parent / "shared/datasets/scifact"))


try:  # under pytest a skip is a skip; run as a script, main() reports it
    import pytest

    Skip = pytest.skip.Exception
except ImportError:

    class Skip(Exception):  # type: ignore[no-redef]
        pass


_MODEL: minilm.MiniLM | None = None


def model() -> minilm.MiniLM:
    global _MODEL
    if _MODEL is None:
        _MODEL = minilm.MiniLM()
    return _MODEL


# Real data.* lines (WordNet 3.0), enough for every branch of the parser: several lemmas,
# an adjective marker, a satellite, verb frames after the pointers, @ and @i links, an
# attribution after an example, and the licence header.
LICENCE = "  1 This software and database is being provided to you, the LICENSEE, by  \n  2 Princeton University.  \n"
FIXTURE = {
    "noun": LICENCE
    + "00058743 04 n 02 escape 0 flight 1 010 @ 00046177 n 0000 + 02075480 v 0201 + 02074695 v 0101 ~ 00059127 n 0000 ~ 00059989 n 0000 ~ 00060201 n 0000 ~ 00060414 n 0000 ~i 00060548 n 0000 ~ 00060747 n 0000 ~i 00060817 n 0000 | the act of escaping physically; \"he made his escape from the mental hospital\"; \"the canary escaped from its cage\"; \"his flight was an indication of his guilt\"  \n"
    "00060548 04 n 02 Hegira 1 Hejira 1 001 @i 00058743 n 0000 | the flight of Muhammad from Mecca to Medina in 622 which marked the beginning of the Muslim era; the Muslim calendar begins in that year  \n"
    "02083346 05 n 02 canine 0 canid 0 002 @ 02075296 n 0000 ~ 02084071 n 0000 | any of various fissiped mammals with nonretractile claws and typically long muzzles  \n"
    "02084071 05 n 03 dog 0 domestic_dog 0 Canis_familiaris 0 002 @ 02083346 n 0000 @ 01317541 n 0000 | a member of the genus Canis (probably descended from the common wolf) that has been domesticated by man since prehistoric times; occurs in many breeds; \"the dog barked all night\"  \n"
    "07167041 10 n 01 conflict 0 000 | an open clash between two opposing groups (or individuals); \"the harder the conflict the more glorious the triumph\"--Thomas Paine  \n",
    "verb": LICENCE
    + "00001740 29 v 04 breathe 0 take_a_breath 0 respire 0 suspire 3 002 $ 00002325 v 0000 ~ 00002573 v 0000 02 + 02 00 + 08 00 | draw air into, and expel out of, the lungs; \"I can breathe better when the air is clean\"; \"The patient is respiring\"  \n",
    "adj": LICENCE
    + "00013887 00 a 01 abundant 0 001 & 00014358 a 0000 | present in great quantity; \"an abundant supply of water\"  \n"
    "00014358 00 s 02 abounding 0 galore(ip) 0 001 & 00013887 a 0000 | existing in abundance; \"abounding confidence\"; \"whiskey galore\"  \n",
    "adv": LICENCE + "00001740 02 r 01 a_cappella 0 000 | without musical accompaniment; \"they performed a cappella\"  \n",
}


def write_fixture(d: Path) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    for name, text in FIXTURE.items():
        (d / f"data.{name}").write_text(text, encoding="latin-1")
    return d


class FakeModel:
    """Stands in for MiniLM in the builder tests: deterministic unit vectors, and a way to
    fail half-way through, as a killed build would."""

    fail_after: int | None = None

    def __init__(self, _zip):
        pass

    def embed(self, texts, batch_tokens=0, progress=None, workers=1):
        if FakeModel.fail_after is not None and len(texts) > FakeModel.fail_after:
            raise KeyboardInterrupt("interrupted")
        rng = np.random.default_rng(len(texts))
        v = rng.standard_normal((len(texts), 384)).astype(np.float32)
        if progress:
            progress(len(texts))
        return v / np.linalg.norm(v, axis=1, keepdims=True)


@contextmanager
def fake_model(fake_zip: Path):
    real_model, real_zip = minilm.MiniLM, minilm.model_zip_path
    minilm.MiniLM, minilm.model_zip_path = FakeModel, lambda: fake_zip  # type: ignore[assignment]
    try:
        yield
    finally:
        minilm.MiniLM, minilm.model_zip_path = real_model, real_zip


def builder_fixture() -> tuple[Path, Path, Path]:
    """(WordNet folder, stand-in model.zip, output folder to build) in a fresh temp dir."""
    tmp = Path(tempfile.mkdtemp())
    fake_zip = tmp / "model.zip"
    fake_zip.write_bytes(b"not a model")
    return write_fixture(tmp / "wn"), fake_zip, tmp / "data" / "wordnet"


def run_builder(out: Path, wn: Path, fake_zip: Path, *extra: str) -> str:
    buf = io.StringIO()
    with fake_model(fake_zip), redirect_stdout(buf), redirect_stderr(io.StringIO()):
        assert wordnet.main([str(out), "--wordnet-dir", str(wn), *extra]) == 0
    return buf.getvalue()


# --- parsing -----------------------------------------------------------------------


def test_parse_line_splits_lemmas_definition_examples_and_pointers():
    noun = FIXTURE["noun"].splitlines()
    dog = wordnet.parse_line(noun[5], "n")
    assert dog.id == "02084071-n"
    assert dog.lexname == "noun.animal"
    assert dog.lemmas == ["dog", "domestic dog", "Canis familiaris"]
    assert dog.definition.startswith("a member of the genus Canis (probably")
    assert dog.definition.endswith("; occurs in many breeds"), dog.definition
    assert dog.examples == ["the dog barked all night"]
    assert ("@", "02083346", "n") in dog.pointers
    conflict = wordnet.parse_line(noun[6], "n")
    assert conflict.definition == "an open clash between two opposing groups (or individuals)", conflict.definition
    assert conflict.examples == ["the harder the conflict the more glorious the triumph"]
    breathe = wordnet.parse_line(FIXTURE["verb"].splitlines()[2], "v")
    assert breathe.lexname == "verb.body" and len(breathe.lemmas) == 4 and len(breathe.examples) == 2
    assert breathe.definition == "draw air into, and expel out of, the lungs"
    galore = wordnet.parse_line(FIXTURE["adj"].splitlines()[3], "a")
    assert galore.id == "00014358-s" and galore.lemmas == ["abounding", "galore"], galore.lemmas


def test_real_wordnet_counts():
    if not (WORDNET_DIR / "data.noun").is_file():
        raise Skip(f"no WordNet at {WORDNET_DIR}")
    synsets, licence = wordnet.read_wordnet(WORDNET_DIR)
    assert len(synsets) == 117_659
    assert len({s.id for s in synsets}) == len(synsets), "ids are unique"
    pos = {p: sum(1 for s in synsets if s.pos == p) for p in "nvasr"}
    assert pos == {"n": 82_115, "v": 13_767, "a": 7_463, "s": 10_693, "r": 3_621}, pos
    assert sum(len(s.examples) for s in synsets) == 48_339
    assert sum(1 for s in synsets for p in s.pointers if p[0] in ("@", "@i")) == 97_666
    assert len({s.lexname for s in synsets}) == 45
    assert all(s.definition and '"' not in s.definition[:1] for s in synsets)
    assert "Princeton University" in licence and "WordNet 3.0 Copyright 2006" in licence


def test_slice_keeps_every_part_of_speech():
    synsets, _ = wordnet.read_wordnet(write_fixture(Path(tempfile.mkdtemp()) / "wn"))
    assert len(wordnet.slice_evenly(synsets, None)) == len(synsets)
    if (WORDNET_DIR / "data.noun").is_file():
        full, _ = wordnet.read_wordnet(WORDNET_DIR)
        part = wordnet.slice_evenly(full, 2000)
        assert len(part) == 2000 and len({s.id for s in part}) == 2000
        assert {s.pos for s in part} == set("nvasr")


# --- the builder -------------------------------------------------------------------


def test_builder_writes_the_beir_layout_and_reuses_it():
    wn, fake_zip, out = builder_fixture()
    run_builder(out, wn, fake_zip)

    corpus = [json.loads(l) for l in (out / "corpus.jsonl").read_text().splitlines()]
    assert [d["_id"] for d in corpus][:2] == ["00058743-n", "00060548-n"]
    assert len(corpus) == 9
    dog = next(d for d in corpus if d["_id"] == "02084071-n")
    assert dog["title"] == "dog, domestic dog, Canis familiaris"
    assert "barked" not in dog["text"], "usage examples are queries, not document text"
    assert dog["metadata"] == {"pos": "n", "lexname": "noun.animal", "lemmas": 3}
    queries = [json.loads(l) for l in (out / "queries.jsonl").read_text().splitlines()]
    assert len(queries) == 11
    assert queries[0] == {
        "_id": "00058743-n-e1",
        "text": "he made his escape from the mental hospital",
        "metadata": {"synset": "00058743-n", "judgment": "pseudo"},
    }
    qrels = (out / "qrels/test.tsv").read_text().splitlines()
    assert qrels[0] == "query-id\tcorpus-id\tscore" and len(qrels) == 12
    assert "02084071-n-e1\t02084071-n\t1" in qrels
    links = (out / "links.tsv").read_text().splitlines()
    assert links == [
        "source-id\ttarget-id\trelation",
        "00060548-n\t00058743-n\tinstance_hypernym",
        "02084071-n\t02083346-n\thypernym",
    ], links
    c = np.load(out / "corpus.minilm.npy")
    q = np.load(out / "queries.minilm.npy")
    assert c.shape == (9, 384) and q.shape == (11, 384) and c.dtype == np.float32
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["judgments"] == "pseudo" and meta["counts"]["links_leaving_the_slice"] == 3
    readme = (out / "README.md").read_text()
    assert "pseudo-judgments" in readme and "Princeton University" in readme
    assert wordnet.verify_sums(out)

    # Same inputs: reused, untouched.
    before = (out / "corpus.jsonl").stat().st_mtime_ns
    said = run_builder(out, wn, fake_zip)
    assert "reused" in said and (out / "corpus.jsonl").stat().st_mtime_ns == before

    # A damaged file or other inputs: rebuilt.
    (out / "links.tsv").write_text("tampered\n")
    assert not wordnet.verify_sums(out)
    said = run_builder(out, wn, fake_zip, "--limit", "4")
    assert "reused" not in said
    assert len((out / "corpus.jsonl").read_text().splitlines()) == 4 and wordnet.verify_sums(out)
    assert [p.name for p in out.parent.iterdir()] == ["wordnet"], "no partial or old folder is left behind"


def test_an_interrupted_build_leaves_nothing_behind():
    wn, fake_zip, out = builder_fixture()
    FakeModel.fail_after = 3
    try:
        with fake_model(fake_zip), redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()) as err:
            assert wordnet.main([str(out), "--wordnet-dir", str(wn)]) == 130
        assert "interrupted" in err.getvalue()
    finally:
        FakeModel.fail_after = None
    assert not out.exists() and list(out.parent.iterdir()) == [], list(out.parent.iterdir())


def test_builder_refuses_a_folder_it_did_not_make():
    tmp = Path(tempfile.mkdtemp())
    wn = write_fixture(tmp / "wn")
    out = tmp / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    try:
        with redirect_stderr(io.StringIO()) as err:
            wordnet.main([str(out), "--wordnet-dir", str(wn)])
        raise AssertionError("should refuse")
    except SystemExit as e:
        assert e.code == 2 and "not a dataset this builder made" in err.getvalue()
    assert (out / "notes.txt").read_text() == "keep me"


# --- the embedder ------------------------------------------------------------------


def test_packaged_tokenizer_pads_to_a_fixed_length_and_the_embedder_does_not():
    with zipfile.ZipFile(minilm.model_zip_path()) as zf:
        packaged = json.loads(zf.read("tokenizer.json"))
    # The pitfall this embedder exists to avoid; if the package changes, look again.
    assert packaged["padding"]["strategy"] == {"Fixed": 128}
    m = model()
    assert m.tokenizer.padding is None
    assert m.tokenizer.truncation["max_length"] == 256


def test_a_text_embeds_the_same_alone_or_beside_a_long_one():
    m = model()
    short = "the dog barked all night"
    long = "a member of the genus Canis (probably descended from the common wolf) " * 6
    alone = m.embed([short])
    batched = m.embed([short, long], batch_tokens=1 << 20)
    assert float(alone[0] @ batched[0]) > 0.99999
    assert abs(float(np.linalg.norm(alone[0])) - 1.0) < 1e-5 and alone.dtype == np.float32


def test_workers_give_the_same_vectors_as_one_process():
    texts = [f"sense number {i} of a word with a gloss of some length" * (1 + i % 4) for i in range(40)]
    one = model().embed(texts, batch_tokens=256)
    two = model().embed(texts, batch_tokens=256, workers=2)
    assert np.array_equal(one, two)


def test_embedder_reproduces_the_scifact_vectors():
    if not (SCIFACT / "corpus.minilm.npy").is_file():
        raise Skip(f"no SciFact at {SCIFACT} (set DBBENCH_SCIFACT)")
    m = model()
    n_docs, n_queries = 8, 16
    with open(SCIFACT / "corpus.jsonl", encoding="utf-8") as fh:
        docs = [json.loads(next(fh)) for _ in range(n_docs)]
    with open(SCIFACT / "queries.jsonl", encoding="utf-8") as fh:
        queries = [json.loads(next(fh))["text"] for _ in range(n_queries)]
    got_docs = m.embed([f"{d['title']} {d['text']}" for d in docs])
    got_queries = m.embed(queries)
    want_docs = np.load(SCIFACT / "corpus.minilm.npy", mmap_mode="r")[:n_docs]
    want_queries = np.load(SCIFACT / "queries.minilm.npy", mmap_mode="r")[:n_queries]
    doc_cos = (got_docs * want_docs).sum(axis=1)
    query_cos = (got_queries * want_queries).sum(axis=1)
    assert doc_cos.min() >= 0.9999, doc_cos
    assert query_cos.min() >= 0.9999, query_cos
    print(f"  SciFact: min cosine documents {doc_cos.min():.6f}, queries {query_cos.min():.6f}")


def main() -> int:
    global WORDNET_DIR
    args = sys.argv[1:]
    if len(args) >= 2 and args[0] == "--wordnet-dir":
        WORDNET_DIR = Path(args[1])
    tests = [(n, f) for n, f in globals().items() if n.startswith("test_") and callable(f)]
    failed = skipped = 0
    for name, f in tests:
        try:
            f()
            print(f"ok    {name}")
        except Skip as s:
            skipped += 1
            print(f"SKIP  {name}: {s}")
        except Exception as e:  # noqa: BLE001 - report every failure, then fail
            failed += 1
            print(f"FAIL  {name}: {type(e).__name__}: {e}")
    print(f"{len(tests) - failed - skipped} passed, {failed} failed, {skipped} skipped")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
