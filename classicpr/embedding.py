"""Hamming embedding of RootSIFT and the ASMK* selective match kernel over binary signatures.

* Hamming embedding (Jegou, Douze and Schmid, ECCV 2008): a descriptor ``x`` in word ``w``
  gets a B-bit signature (B = 64 or 128), bit ``b`` set when ``(P x)_b > t_{w,b}``, where
  ``P`` is a random orthogonal projection (B of RootSIFT's 128 dimensions, seeded) and
  ``t_w`` the per-word medians of the projected training descriptors, learned with the
  vocabulary. Two features in the same word are alike when their signatures differ in few
  bits; random pairs differ in about B / 2.
* ASMK* (Tolias, Avrithis and Jegou, ICCV 2013): an image is one binary vector per visual
  word -- the majority of the signatures of its features in that word (the sign of their
  summed residuals ``P x - t_w`` on the query side) -- so bursts of similar features count
  once. Two images score ``sum over shared words of sigma(1 - 2 h / 64)``, ``h`` the Hamming
  distance of their words' vectors, with the selective function ``sigma(u) = u^alpha`` for
  ``u > tau`` and 0 otherwise, normalised by the square roots of both images' word counts
  (the kernel of an image with itself is its number of words).

Signatures are rows of B / 64 ``uint64``: B / 8 bytes a feature in the index, and as many
per posting for its ASMK* vector (computed when the index is built). 128 bits (the
default) rank better than 64 with distractors and on the RParis6k sample; 64 bits halve
the memory (``docs/benchmarks.md``, "Retrieval").
"""
from __future__ import annotations

from typing import Optional

import numpy as np

#: Signature lengths an embedding can have.
SIGNATURE_BITS = (64, 128)
#: Features whose bits :func:`majority_signatures` unpacks at once (each int32 copy 16 MB
#: at 128 bits).
MAJORITY_BLOCK = 32_768
#: Fewest training descriptors of a word for its own medians (else the global median).
MIN_TRAINING_PER_WORD = 4
#: Descriptors projected at once by :func:`project` (two float64 copies of 8 MB each).
PROJECTION_BLOCK = 8_192


def pack_bits(bits: np.ndarray) -> np.ndarray:
    """``(N, B)`` bool array (B a multiple of 64) -> ``(N, B / 64)`` uint64 signatures (bit b
    of row i = ``bits[i, b]``)."""
    bits = np.asarray(bits, bool)
    n, b = bits.shape
    if b % 64:
        raise ValueError(f"signatures have a multiple of 64 bits, got {b}")
    return np.packbits(bits, axis=1, bitorder="little").view("<u8").reshape(n, b // 64
                                                                           ).astype(np.uint64)


def unpack_bits(signatures: np.ndarray) -> np.ndarray:
    """``(N, W)`` uint64 -> ``(N, 64 W)`` uint8 array of 0/1 (inverse of :func:`pack_bits`)."""
    sig = np.ascontiguousarray(signatures, dtype="<u8")
    sig = sig.reshape(len(sig), -1)
    return np.unpackbits(sig.view(np.uint8), axis=1, bitorder="little")


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamming distances of ``(..., W)`` uint64 signatures (broadcast over the leading
    axes), as int64 in [0, 64 W]."""
    x = np.bitwise_xor(np.asarray(a, np.uint64), np.asarray(b, np.uint64))
    return np.bitwise_count(x).sum(axis=-1, dtype=np.int64)


def project(descriptors: np.ndarray, projection: np.ndarray) -> np.ndarray:
    """Projections ``P x`` of descriptors, the same for a descriptor whatever others it
    is projected with.

    float32 matrix products sum in an order that depends on the CPU's BLAS kernels and on
    the number and position of the rows computed together, so a descriptor's projection
    can differ in its last bit between two batches, and a feature at its word's median
    (which is one of the training features' projections) would take either bit: an index
    grown image by image would differ from one built at once. Summed in float64 and
    rounded to float32, it is the same in every batch (a float64 sum would have to fall
    within its own last bit of a float32 rounding boundary to differ).

    Parameters
    ----------
    descriptors : (N, D) float array
    projection : (B, D) float array

    Returns
    -------
    (N, B) float32 array
    """
    x = np.asarray(descriptors)
    p = np.asarray(projection, np.float64).T
    out = np.empty((len(x), p.shape[1]), np.float32)
    for start in range(0, len(x), PROJECTION_BLOCK):
        block = np.asarray(x[start:start + PROJECTION_BLOCK], np.float64)
        out[start:start + PROJECTION_BLOCK] = block @ p
    return out


def random_orthogonal(n: int, rng: np.random.Generator) -> np.ndarray:
    """``(n, n)`` float64 orthogonal matrix drawn uniformly (QR of a Gaussian matrix, signs
    fixed by R's diagonal)."""
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return q * np.sign(np.diag(r))


def selective_similarity(distance: np.ndarray, bits: int, alpha: float, tau: float
                         ) -> np.ndarray:
    """ASMK's selective function of binary similarity ``u = 1 - 2 h / bits``: ``u^alpha``
    where ``u > tau``, else 0.

    Parameters
    ----------
    distance : (P,) int array
        Hamming distances.
    bits : int
        Signature length.
    alpha, tau : float
        Selectivity exponent and threshold (Tolias et al.: 3 and 0).

    Returns
    -------
    (P,) float32 array in [0, 1].
    """
    u = 1.0 - 2.0 * np.asarray(distance, np.float32) / bits
    return np.where(u > tau, np.abs(u) ** alpha, 0.0).astype(np.float32)


def majority_signatures(signatures: np.ndarray, starts: np.ndarray, counts: np.ndarray
                        ) -> np.ndarray:
    """The bitwise majority of consecutive runs of signatures (ASMK* aggregation of the
    database side, where only the binary signatures are kept).

    Parameters
    ----------
    signatures : (F, W) uint64 array (or memory-mapped)
    starts, counts : (G,) int arrays
        Run ``g`` is ``signatures[starts[g] : starts[g] + counts[g]]`` (counts >= 1).

    Returns
    -------
    (G, W) uint64 array. A tie is broken by the run's first signature.
    """
    starts = np.asarray(starts, np.int64)
    counts = np.asarray(counts, np.int64)
    out = np.asarray(signatures[starts], np.uint64).copy()
    multi = np.flatnonzero(counts > 1)
    # runs in blocks of about MAJORITY_BLOCK features: their bits are unpacked as int32
    block = np.cumsum(counts[multi]) // MAJORITY_BLOCK
    for b in np.unique(block):
        rows = multi[block == b]
        c = counts[rows]
        pos = np.repeat(starts[rows] - np.cumsum(np.r_[0, c[:-1]]), c) + np.arange(int(c.sum()))
        bits = unpack_bits(np.asarray(signatures[pos])).astype(np.int32)
        ones = np.add.reduceat(bits, np.r_[0, np.cumsum(c)[:-1]], axis=0)
        first = unpack_bits(out[rows]).astype(np.int32)
        out[rows] = pack_bits(2 * ones + first > c[:, None])
    return out


class HammingEmbedding:
    """Projection and per-word thresholds that turn RootSIFT into B-bit signatures.

    Parameters
    ----------
    projection : (B, D) float32 array
        Rows of a random orthogonal matrix (B = 64 or 128 bits).
    thresholds : (k, B) float32 array
        Median of each projected dimension over each word's training descriptors.
    """

    def __init__(self, projection: np.ndarray, thresholds: np.ndarray):
        self.projection = np.ascontiguousarray(projection, np.float32)
        self.thresholds = np.ascontiguousarray(thresholds, np.float32)
        if self.projection.ndim != 2 or self.projection.shape[0] not in SIGNATURE_BITS:
            raise ValueError(f"projection must be (B, D) with B in {SIGNATURE_BITS}, got "
                             f"{self.projection.shape}")
        if self.thresholds.ndim != 2 or self.thresholds.shape[1] != self.bits:
            raise ValueError(f"thresholds must be (k, {self.bits}), got {self.thresholds.shape}")

    @property
    def n_words(self) -> int:
        return len(self.thresholds)

    @property
    def bits(self) -> int:
        """Signature length B."""
        return self.projection.shape[0]

    @classmethod
    def train(cls, descriptors: np.ndarray, words: np.ndarray, n_words: int, seed: int = 0,
              bits: int = 128) -> "HammingEmbedding":
        """Draw the projection (seeded) and learn the per-word medians.

        Parameters
        ----------
        descriptors : (N, D) float32 array
            Training RootSIFT descriptors (the database's own, as many as
            ``classicpr.index.EMBEDDING_TRAINING`` allows).
        words : (N,) int array
            Their visual words.
        n_words : int
        seed : int
        bits : {64, 128}

        Returns
        -------
        HammingEmbedding
            B rows of a uniformly random orthogonal matrix, medians as
            :meth:`learn_medians` learns them.
        """
        x = np.asarray(descriptors, np.float32)
        if bits not in SIGNATURE_BITS:
            raise ValueError(f"signatures have {SIGNATURE_BITS} bits, got {bits!r}")
        if x.ndim != 2 or x.shape[1] < bits:  # the words are checked by learn_medians
            raise ValueError(f"need (N, D >= {bits}) descriptors, got {x.shape}")
        rotation = random_orthogonal(x.shape[1], np.random.default_rng(seed))
        return cls.learn_medians(rotation[:bits], x, words, n_words)

    @classmethod
    def learn_medians(cls, projection: np.ndarray, descriptors: np.ndarray, words: np.ndarray,
                      n_words: int) -> "HammingEmbedding":
        """The embedding of a given projection, with per-word medians learned.

        Parameters
        ----------
        projection : (B, D) float array
            B in ``SIGNATURE_BITS``.
        descriptors : (N, D) float32 array
            Training RootSIFT descriptors.
        words : (N,) int array
            Their visual words.
        n_words : int

        Returns
        -------
        HammingEmbedding
            Words with fewer than ``MIN_TRAINING_PER_WORD`` training descriptors use the
            medians of all of them.
        """
        projection = np.asarray(projection, np.float32)
        x = np.asarray(descriptors, np.float32)
        words = np.asarray(words, np.int64)
        if x.ndim != 2 or projection.ndim != 2 or x.shape[1] != projection.shape[1] \
                or len(x) != len(words):
            raise ValueError(f"need a (B, D) projection, (N, D) descriptors and N words, got "
                             f"{projection.shape}, {x.shape} and {words.shape}")
        bits = len(projection)
        z = project(x, projection)
        thresholds = np.tile(np.median(z, axis=0) if len(z) else np.zeros(bits, np.float32),
                             (n_words, 1)).astype(np.float32)
        order = np.argsort(words, kind="stable")
        bounds = np.searchsorted(words[order], np.arange(n_words + 1))
        for w in np.flatnonzero(np.diff(bounds) >= MIN_TRAINING_PER_WORD):
            thresholds[w] = np.median(z[order[bounds[w]:bounds[w + 1]]], axis=0)
        return cls(projection, thresholds)

    def residuals(self, descriptors: np.ndarray, words: np.ndarray) -> np.ndarray:
        """``P x - t_w``: ``(N, B)`` float32 for ``(N, D)`` RootSIFT in words ``(N,)``."""
        z = project(descriptors, self.projection)
        return z - self.thresholds[np.asarray(words, np.int64)]

    def signatures(self, descriptors: np.ndarray, words: np.ndarray) -> np.ndarray:
        """``(N, B / 64)`` uint64 signatures of ``(N, D)`` RootSIFT descriptors in words
        ``(N,)``."""
        if len(descriptors) == 0:
            return np.zeros((0, self.bits // 64), np.uint64)
        return pack_bits(self.residuals(descriptors, words) > 0)

    def aggregate(self, descriptors: np.ndarray, words: np.ndarray
                  ) -> "tuple[np.ndarray, np.ndarray]":
        """ASMK* vectors of one image (the query side): per word, the sign of the summed
        residuals of its features.

        Parameters
        ----------
        descriptors : (N, D) float32 RootSIFT
        words : (N,) or (N, m) int array
            Each feature's word, or its m nearest words (multiple assignment: the feature
            counts in each).

        Returns
        -------
        unique_words : (U,) int64 array, sorted
        vectors : (U, B / 64) uint64 array
        """
        words = np.asarray(words, np.int64)
        x = np.asarray(descriptors, np.float32)
        if words.ndim == 2:
            x = np.repeat(x, words.shape[1], axis=0)
            words = words.reshape(-1)
        if len(words) == 0:
            return np.zeros(0, np.int64), np.zeros((0, self.bits // 64), np.uint64)
        order = np.argsort(words, kind="stable")
        words = words[order]
        res = self.residuals(x[order], words)
        unique, starts = np.unique(words, return_index=True)
        return unique, pack_bits(np.add.reduceat(res, starts, axis=0) > 0)

    def state(self) -> dict:
        return {"projection": self.projection, "thresholds": self.thresholds}

    @classmethod
    def from_state(cls, arrays: dict) -> Optional["HammingEmbedding"]:
        if "projection" not in arrays:
            return None
        return cls(arrays["projection"], arrays["thresholds"])
