"""ASMK* image mAP on prmini-dev (ranking alone, the index's vocabulary) by the choices of
the Hamming embedding:

* ``medians``: signature length, and where the per-word medians are learned (all of the
  database's features, or a random share of them), against one median for all words;
* ``projections``: the projection's draw (seeds 0-5) at 64 and 128 bits, for random
  orthogonal rows (the default) and for the principal directions of the descriptors'
  residuals to their words' centroids, in a random basis of them;
* ``asymmetric``: the query side's vectors kept real (its summed residuals, each
  dimension weighted by its magnitude or by its square root) against the signs that
  ASMK* compares (the default), over the same six projection draws at 64 and 128 bits.

Usage (INDEX built by ``classicpr evaluate ../shared/data/prmini-dev --name prmini
--index-dir INDEX``)::

    python benchmarks/embedding_choices.py ../shared/data/prmini-dev INDEX medians|projections|asymmetric
"""
import sys
from typing import List, Tuple

import numpy as np

from classicpr.config import RetrievalConfig
from classicpr.datasets import RevisitopDataset, load_revisitop
from classicpr.embedding import (HammingEmbedding, majority_signatures, project,
                                 random_orthogonal, unpack_bits)
from classicpr.features import rootsift
from classicpr.index import Index
from classicpr.invfile import InvertedFile
from classicpr.metrics import image_map
from classicpr.pipeline import extract_query

#: Projection draws of the ``projections`` experiment.
SEEDS = range(6)


class Experiment:
    """prmini-dev's database features (RootSIFT, exact words, keypoints) and queries (in-box
    RootSIFT, multiple assignment) under one index's vocabulary."""

    def __init__(self, root: str, index_dir: str):
        self.dataset: RevisitopDataset = load_revisitop(root, "prmini")
        index = Index.load(index_dir)
        self.vocabulary, self.config = index.vocabulary, RetrievalConfig()
        store = index.feature_store()
        self.database: List[Tuple[np.ndarray, np.ndarray, np.ndarray, Tuple[int, int]]] = []
        for name in index.names:
            kp, desc, size = store.load(name)
            x = rootsift(desc)
            self.database.append((x, self.vocabulary.assign(x), kp, size))
        self.queries = []
        for q in range(len(self.dataset.qimlist)):
            f = extract_query(index, self.dataset.image_dir / self.dataset.query_file(q),
                              self.dataset.query_box(q))
            x = rootsift(f.descriptors)
            self.queries.append((x, self.vocabulary.assign_multiple(
                x, self.config.query_assignments)))
        self.descriptors = np.concatenate([d[0] for d in self.database])
        self.words = np.concatenate([d[1] for d in self.database])

    def mean_ap(self, embedding: HammingEmbedding) -> Tuple[float, float]:
        """Medium and hard mAP (percent) of ASMK* with ``embedding``."""
        inv = InvertedFile.from_images(
            self.vocabulary.size, [d[1] for d in self.database], [d[2] for d in self.database],
            [d[3] for d in self.database],
            [embedding.signatures(d[0], d[1]) for d in self.database])
        ranks = []
        for x, near in self.queries:
            s = inv.query_asmk(*embedding.aggregate(x, near), self.config.alpha, self.config.tau)
            ranks.append(np.lexsort((np.arange(len(s)), -s)))
        m = image_map(np.array(ranks).T, self.dataset.gnd)["mAP"]
        return m["medium"], m["hard"]

    def mean_ap_asymmetric(self, embedding: HammingEmbedding, weighting: str
                           ) -> Tuple[float, float]:
        """Medium and hard mAP (percent) of the selective kernel with a real query side:
        per word, the similarity of the query's summed residuals ``r`` (B,) to the
        database's majority signature ``s`` in {-1, 1}^B is
        ``sum_i w_i sign(r_i) s_i / sum_i w_i`` with ``w = |r|`` ("magnitude"),
        ``sqrt(|r|)`` ("sqrt") or 1 ("sign": ASMK*, as the index scores)."""
        database = []
        for x, words, _, _ in self.database:
            order = np.argsort(words, kind="stable")
            words = words[order]
            unique, starts = np.unique(words, return_index=True)
            majority = majority_signatures(embedding.signatures(x[order], words), starts,
                                           np.diff(np.r_[starts, len(words)]))
            database.append((unique, 2.0 * unpack_bits(majority).astype(np.float32) - 1.0))
        weight = {"magnitude": np.abs, "sqrt": lambda r: np.sqrt(np.abs(r)),
                  "sign": np.ones_like}[weighting]
        ranks = []
        for x, near in self.queries:
            words = near.reshape(-1)
            order = np.argsort(words, kind="stable")
            words = words[order]
            residuals = embedding.residuals(np.repeat(x, near.shape[1], axis=0)[order], words)
            unique, starts = np.unique(words, return_index=True)
            summed = np.add.reduceat(residuals, starts, axis=0)
            w = weight(summed)
            q = np.sign(summed) * w / np.maximum(w.sum(axis=1, keepdims=True), 1e-12)
            scores = np.zeros(len(database))
            for i, (db_words, db_signs) in enumerate(database):
                _, a, b = np.intersect1d(unique, db_words, assume_unique=True,
                                         return_indices=True)
                u = np.einsum("ij,ij->i", q[a], db_signs[b])
                scores[i] = np.sum(np.where(u > self.config.tau, u, 0.0) ** self.config.alpha
                                   ) / np.sqrt(len(db_words) * len(unique))
            ranks.append(np.lexsort((np.arange(len(scores)), -scores)))
        m = image_map(np.array(ranks).T, self.dataset.gnd)["mAP"]
        return m["medium"], m["hard"]


def principal_projection(descriptors: np.ndarray, words: np.ndarray, centroids: np.ndarray,
                         bits: int, seed: int) -> np.ndarray:
    """``(bits, D)``: the ``bits`` principal directions of the residuals
    ``descriptors - centroids[words]``, rotated by a random ``(bits, bits)`` basis (so that
    the bits share the variance)."""
    res = descriptors - centroids[words]
    covariance = res.T.astype(np.float64) @ res / max(len(res), 1)
    values, vectors = np.linalg.eigh(covariance)
    if seed == SEEDS[0]:
        print(f"the {bits} principal directions hold "
              f"{100 * values[::-1][:bits].sum() / values.sum():.0f} % of the residuals' "
              "variance", flush=True)
    top = vectors[:, ::-1][:, :bits].T
    return random_orthogonal(bits, np.random.default_rng(seed)) @ top


def medians(exp: Experiment) -> None:
    rng = np.random.default_rng(1)
    for bits in (64, 128):
        for share in (0.5, 0.9, 1.0):
            keep = rng.random(len(exp.descriptors)) < share
            emb = HammingEmbedding.train(exp.descriptors[keep], exp.words[keep],
                                         exp.vocabulary.size, 0, bits)
            m = exp.mean_ap(emb)
            print(f"{bits} bits, medians on {100 * share:.0f} % of the database features: "
                  f"mAP {m[0]:.1f} / {m[1]:.1f}", flush=True)
        drawn = HammingEmbedding.train(exp.descriptors, exp.words, exp.vocabulary.size, 0, bits)
        one = np.median(project(exp.descriptors, drawn.projection), axis=0)
        m = exp.mean_ap(HammingEmbedding(drawn.projection,
                                         np.tile(one, (exp.vocabulary.size, 1))))
        print(f"{bits} bits, one median for all words: mAP {m[0]:.1f} / {m[1]:.1f}", flush=True)


def projections(exp: Experiment) -> None:
    n_words = exp.vocabulary.size
    for bits in (64, 128):
        results = {"random": [], "principal": []}
        for seed in SEEDS:
            for kind, emb in (
                    ("random", HammingEmbedding.train(exp.descriptors, exp.words, n_words,
                                                      seed, bits)),
                    ("principal", HammingEmbedding.learn_medians(
                        principal_projection(exp.descriptors, exp.words,
                                             exp.vocabulary.centroids, bits, seed),
                        exp.descriptors, exp.words, n_words))):
                results[kind].append(exp.mean_ap(emb))
                print(f"{bits} bits, {kind} projection, seed {seed}: mAP "
                      f"{results[kind][-1][0]:.1f} / {results[kind][-1][1]:.1f}", flush=True)
        for kind, values in results.items():
            a = np.array(values)
            print(f"{bits} bits, {kind}: mean {a[:, 0].mean():.1f} / {a[:, 1].mean():.1f}, "
                  f"sd {a[:, 0].std(ddof=1):.1f} / {a[:, 1].std(ddof=1):.1f}, range "
                  f"{a[:, 0].min():.1f}-{a[:, 0].max():.1f} / {a[:, 1].min():.1f}-"
                  f"{a[:, 1].max():.1f}", flush=True)


def asymmetric(exp: Experiment) -> None:
    for bits in (64, 128):
        results = {"sign": [], "magnitude": [], "sqrt": []}
        for seed in SEEDS:
            emb = HammingEmbedding.train(exp.descriptors, exp.words, exp.vocabulary.size,
                                         seed, bits)
            for weighting, values in results.items():
                values.append(exp.mean_ap_asymmetric(emb, weighting))
            print(f"{bits} bits, seed {seed}: " + ", ".join(
                f"{k} {v[-1][0]:.1f} / {v[-1][1]:.1f}" for k, v in results.items()), flush=True)
        for weighting, values in results.items():
            a = np.array(values)
            print(f"{bits} bits, query side {weighting}: mean {a[:, 0].mean():.1f} / "
                  f"{a[:, 1].mean():.1f}, sd {a[:, 0].std(ddof=1):.1f} / "
                  f"{a[:, 1].std(ddof=1):.1f}", flush=True)


if __name__ == "__main__":
    experiments = {"medians": medians, "projections": projections, "asymmetric": asymmetric}
    experiments[sys.argv[3]](Experiment(*sys.argv[1:3]))
