"""Inverted file (tf-idf bag of visual words) and direct index, as CSR/CSC arrays.

* Inverted file: term counts of every (image, word) pair as a sparse matrix in CSC layout
  (word -> postings), so a query touches only the columns of its own words. Weights are
  tf-idf with ``idf = log(N / df)`` and L2-normalised vectors; the idf and the image norms
  are recomputed when images are added, so incremental adds stay exact.
* Direct index: for every image, the word id and quantised geometry of each of its features
  (concatenated arrays + offsets, DBoW2-style). Spatial verification uses it to form
  correspondences between features that share a word, without raw descriptors.

Geometry is quantised to keep the index small: x, y as uint16 fractions of the image
width/height (resolution < 0.1 px for images up to 6,500 px), scale as float16 and
orientation as uint8 (1.4 degree steps).
"""
from __future__ import annotations

from typing import Dict, Optional, Tuple

import numpy as np
import scipy.sparse as sp

XY_LEVELS = 65535


def features_in_box(keypoints: np.ndarray, box: Optional[np.ndarray]) -> np.ndarray:
    """Boolean mask of the keypoints whose (x, y) lies inside ``box`` = (x1, y1, x2, y2)."""
    if box is None:
        return np.ones(len(keypoints), bool)
    x1, y1, x2, y2 = box
    x, y = keypoints[:, 0], keypoints[:, 1]
    return (x >= x1) & (x <= x2) & (y >= y1) & (y <= y2)


def quantise_geometry(keypoints: np.ndarray, size: Tuple[int, int]) -> Dict[str, np.ndarray]:
    """Compact geometry of ``(N, 4)`` keypoints (x, y, scale, orientation) for the direct index."""
    w, h = max(size[0], 1), max(size[1], 1)
    xy = np.empty((len(keypoints), 2), np.uint16)
    xy[:, 0] = np.clip(np.rint(keypoints[:, 0] / w * XY_LEVELS), 0, XY_LEVELS)
    xy[:, 1] = np.clip(np.rint(keypoints[:, 1] / h * XY_LEVELS), 0, XY_LEVELS)
    scale = keypoints[:, 2].astype(np.float16)
    angle = np.rint(np.mod(keypoints[:, 3], 360.0) / 360.0 * 256).astype(np.int64) % 256
    return {"xy": xy, "scale": scale, "angle": angle.astype(np.uint8)}


def dequantise_geometry(xy: np.ndarray, scale: np.ndarray, angle: np.ndarray,
                        size: Tuple[int, int]) -> np.ndarray:
    """Inverse of :func:`quantise_geometry`: ``(N, 4)`` float32 x, y, scale, orientation."""
    out = np.empty((len(xy), 4), np.float32)
    out[:, 0] = xy[:, 0].astype(np.float32) / XY_LEVELS * max(size[0], 1)
    out[:, 1] = xy[:, 1].astype(np.float32) / XY_LEVELS * max(size[1], 1)
    out[:, 2] = scale.astype(np.float32)
    out[:, 3] = angle.astype(np.float32) * (360.0 / 256)
    return out


class InvertedFile:
    """tf-idf inverted file plus direct index over a growing set of images.

    Parameters
    ----------
    n_words : int
        Vocabulary size.
    """

    def __init__(self, n_words: int):
        self.n_words = int(n_words)
        # term counts are kept in one layout at a time: image-major while images are added
        # (cheap to append to), word-major once queried (the postings of each word)
        self._rows: Optional[sp.csr_matrix] = sp.csr_matrix((0, self.n_words), dtype=np.float32)
        self._cols: Optional[sp.csc_matrix] = None
        self.idf = np.zeros(self.n_words, np.float32)
        self.norms = np.zeros(0, np.float32)
        # direct index
        self.offsets = np.zeros(1, np.int64)
        self.words = np.zeros(0, np.uint16 if n_words <= 65536 else np.uint32)
        self.xy = np.zeros((0, 2), np.uint16)
        self.scale = np.zeros(0, np.float16)
        self.angle = np.zeros(0, np.uint8)
        self.sizes = np.zeros((0, 2), np.int32)

    @property
    def n_images(self) -> int:
        return len(self.sizes)

    @property
    def counts(self) -> sp.csc_matrix:
        """Term counts (n_images, n_words) in CSC layout: the postings of each word."""
        if self._cols is None:
            self._cols = self._rows.tocsc()
            self._cols.sort_indices()
            self._rows = None
        return self._cols

    def _image_major(self) -> sp.csr_matrix:
        if self._rows is None:
            self._rows = self._cols.tocsr()
            self._cols = None
        return self._rows

    def add(self, words_per_image, keypoints_per_image, sizes) -> None:
        """Add images.

        Parameters
        ----------
        words_per_image : list of (N_i,) int arrays
            Visual word of each feature of each new image.
        keypoints_per_image : list of (N_i, 4) float arrays
            x, y, scale, orientation of the same features (original pixels).
        sizes : list of (width, height)
        """
        if not (len(words_per_image) == len(keypoints_per_image) == len(sizes)):
            raise ValueError("words_per_image, keypoints_per_image and sizes differ in length")
        if len(sizes) == 0:
            return
        rows, cols = [], []
        new_geo = {"xy": [], "scale": [], "angle": []}
        lengths = []
        for i, (w, kp, size) in enumerate(zip(words_per_image, keypoints_per_image, sizes)):
            w = np.asarray(w)
            if len(w) != len(kp):
                raise ValueError(f"image {i}: {len(w)} words but {len(kp)} keypoints")
            if len(w) and (w.min() < 0 or w.max() >= self.n_words):
                raise ValueError(f"image {i}: word ids outside [0, {self.n_words})")
            rows.append(np.full(len(w), self.n_images + i, np.int64))
            cols.append(w.astype(np.int64))
            g = quantise_geometry(np.asarray(kp, np.float32).reshape(-1, 4), size)
            for k in new_geo:
                new_geo[k].append(g[k])
            lengths.append(len(w))
        n_new = len(sizes)
        r, c = np.concatenate(rows), np.concatenate(cols)
        new_counts = sp.coo_matrix((np.ones(len(r), np.float32), (r - self.n_images, c)),
                                   shape=(n_new, self.n_words)).tocsr()
        new_counts.sum_duplicates()
        self._rows = sp.vstack([self._image_major(), new_counts], format="csr")
        self._cols = None
        self.words = np.concatenate([self.words, c.astype(self.words.dtype)])
        self.xy = np.concatenate([self.xy] + new_geo["xy"])
        self.scale = np.concatenate([self.scale] + new_geo["scale"])
        self.angle = np.concatenate([self.angle] + new_geo["angle"])
        self.offsets = np.concatenate([self.offsets, self.offsets[-1] + np.cumsum(lengths)])
        self.sizes = np.concatenate([self.sizes, np.asarray(sizes, np.int32).reshape(-1, 2)])
        self._reweight()

    def _reweight(self) -> None:
        rows = self._rows if self._rows is not None else self._cols.tocsr()
        df = np.bincount(rows.indices, minlength=self.n_words).astype(np.float64)  # images per word
        n = max(self.n_images, 1)
        self.idf = np.where(df > 0, np.log(n / np.maximum(df, 1)), 0.0).astype(np.float32)
        w = rows.data * self.idf[rows.indices]
        image_of = np.repeat(np.arange(rows.shape[0]), np.diff(rows.indptr))
        self.norms = np.sqrt(np.bincount(image_of, w.astype(np.float64) ** 2,
                                         minlength=rows.shape[0])).astype(np.float32)

    def query(self, words: np.ndarray) -> np.ndarray:
        """Cosine similarity of a query bag of words with every database image.

        Parameters
        ----------
        words : (M,) int array
            Visual words of the query's features (those inside its box).

        Returns
        -------
        (n_images,) float32 array of scores in [0, 1]; 0 for an empty query.
        """
        scores = np.zeros(self.n_images, np.float32)
        words = np.asarray(words, np.int64)
        if len(words) == 0 or self.n_images == 0:
            return scores
        uw, tf = np.unique(words, return_counts=True)
        q = tf.astype(np.float32) * self.idf[uw]
        qn = float(np.linalg.norm(q))
        if qn == 0:
            return scores
        # only the postings of the query's own words are touched
        indptr, indices, data = self.counts.indptr, self.counts.indices, self.counts.data
        starts, ends = indptr[uw], indptr[uw + 1]
        lens = ends - starts
        if lens.sum() == 0:
            return scores
        pos = np.repeat(starts - np.cumsum(np.r_[0, lens[:-1]]), lens) + np.arange(lens.sum())
        contrib = data[pos] * np.repeat(q * self.idf[uw], lens)
        np.add.at(scores, indices[pos], contrib)
        with np.errstate(invalid="ignore", divide="ignore"):
            scores = np.where(self.norms > 0, scores / (self.norms * qn), 0.0)
        return scores.astype(np.float32)

    def image_features(self, i: int) -> Tuple[np.ndarray, np.ndarray]:
        """Direct index of image ``i``: word ids ``(N,)`` and keypoints ``(N, 4)`` float32."""
        a, b = self.offsets[i], self.offsets[i + 1]
        kp = dequantise_geometry(self.xy[a:b], self.scale[a:b], self.angle[a:b],
                                 tuple(self.sizes[i]))
        return self.words[a:b], kp

    def nbytes(self) -> Dict[str, int]:
        """Bytes held in memory by each part of the index."""
        c = self.counts
        inv = c.data.nbytes + c.indices.nbytes + c.indptr.nbytes
        direct = (self.words.nbytes + self.xy.nbytes + self.scale.nbytes + self.angle.nbytes
                  + self.offsets.nbytes + self.sizes.nbytes)
        return {"inverted_file": int(inv + self.idf.nbytes + self.norms.nbytes),
                "direct_index": int(direct)}

    def state(self) -> Dict[str, np.ndarray]:
        """Arrays that fully describe the inverted file (for saving)."""
        c = self.counts
        return {"inv_indptr": c.indptr.astype(np.int64), "inv_indices": c.indices.astype(np.int32),
                "inv_counts": c.data.astype(np.uint16), "offsets": self.offsets,
                "words": self.words, "xy": self.xy, "scale": self.scale, "angle": self.angle,
                "sizes": self.sizes}

    @classmethod
    def from_state(cls, n_words: int, s: Dict[str, np.ndarray]) -> "InvertedFile":
        inv = cls(n_words)
        n_images = len(s["sizes"])
        inv._cols = sp.csc_matrix(
            (s["inv_counts"].astype(np.float32), s["inv_indices"], s["inv_indptr"]),
            shape=(n_images, n_words))
        inv._rows = None
        for k in ("offsets", "words", "xy", "scale", "angle", "sizes"):
            setattr(inv, k, s[k])
        inv._reweight()
        return inv
