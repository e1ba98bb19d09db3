"""ASMK* rankings of the RParis6k sample over several codebook draws: classicpr's kernel
against the asmk package's, with the same codebooks.

    python benchmarks/codebook_draws.py ../shared/data/rparis6k-sample/jpg \
        ../shared/data/revisitop/gnd_rparis6k.pkl WORK/full [--draws 5] [--extra C.npy ...]

WORK/full is the index ``rparis_pipeline.py`` builds on all 31 images; its vocabulary is
one codebook, each ``--extra`` file another ((k, 128) float32 centroids in a .npy, or the
``centroids`` of a .npz such as the ranks file of ``asmk_package.py run``: the package's), and ``--draws`` more are trained here with
the package's recipe (faiss k-means, 10 iterations, all descriptors, seeds 1, 2, ...).
For each codebook the per-word medians of the Hamming embedding are learned on all the
images' descriptors, as the index does. Queries are whole frames (5 nearest words per
feature) with their own image dropped from the ranking, scored as ``rparis_sample.py``.

Kernels, both ASMK* with alpha 3, tau 0 and 128-bit vectors:

* classicpr: the query's vector in a word is the sign of its features' summed projected
  residuals, a database image's the majority of its features' signatures;
* asmk package: the sign of the summed residuals ``x - c`` in RootSIFT's own 128
  dimensions, on both sides.
"""
import argparse
import sys
from pathlib import Path

import faiss
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from classicpr.embedding import (HammingEmbedding, hamming, majority_signatures,  # noqa: E402
                                 pack_bits, selective_similarity)
from classicpr.features import rootsift  # noqa: E402
from classicpr.index import Index  # noqa: E402
from classicpr.metrics import average_precision  # noqa: E402
from rparis_sample import sample_ground_truth  # noqa: E402


def nearest_words(x: np.ndarray, centroids: np.ndarray, m: int) -> np.ndarray:
    """(N, m) ids of the m nearest centroids (exact)."""
    index = faiss.IndexFlatL2(centroids.shape[1])
    index.add(np.ascontiguousarray(centroids, np.float32))
    return index.search(np.ascontiguousarray(x, np.float32), m)[1]


def by_word(words: np.ndarray, rows: np.ndarray):
    """Rows sorted by word: (sorted words, rows, start of each distinct word, distinct words)."""
    order = np.argsort(words, kind="stable")
    words, rows = words[order], rows[order]
    unique, starts = np.unique(words, return_index=True)
    return words, rows, starts, unique


def classicpr_vectors(x, words, embedding, side):
    """ASMK* vectors of one image: (distinct words, (U, 2) uint64)."""
    words, x, starts, unique = by_word(words, x)
    if side == "query":
        return unique, pack_bits(np.add.reduceat(embedding.residuals(x, words), starts, axis=0) > 0)
    counts = np.diff(np.r_[starts, len(words)])
    return unique, majority_signatures(embedding.signatures(x, words), starts, counts)


def package_vectors(x, words, centroids):
    words, x, starts, unique = by_word(words, x)
    return unique, pack_bits(np.add.reduceat(x - centroids[words], starts, axis=0) > 0)


def ranking_map(db, queries, names, related) -> float:
    """mAP of whole-frame queries (their own image dropped) over per-image vectors."""
    aps = []
    for k, (qw, qv) in queries.items():
        scores = np.full(len(db), -1.0)
        for i, (dw, dv) in enumerate(db):
            if i == k:
                continue
            _, a, b = np.intersect1d(qw, dw, return_indices=True)
            scores[i] = selective_similarity(hamming(qv[a], dv[b]), 128, 3.0, 0.0).sum() / np.sqrt(
                len(qw) * len(dw))
        ranked = [names[i] for i in np.argsort(-scores, kind="stable") if i != k]
        hits = np.flatnonzero([r in related[names[k]] for r in ranked])
        aps.append(average_precision(hits, len(related[names[k]])))
    return 100 * float(np.mean(aps))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("image_dir")
    ap.add_argument("gnd")
    ap.add_argument("index_dir")
    ap.add_argument("--draws", type=int, default=5)
    ap.add_argument("--extra", action="append", default=[], metavar="CENTROIDS.npy|.npz")
    args = ap.parse_args(argv)
    _, related = sample_ground_truth(args.image_dir, args.gnd)
    index = Index.load(args.index_dir)
    store = index.feature_store()
    names = [n[:-4] for n in index.names]
    x = [rootsift(store.load(n)[1]) for n in index.names]
    everything = np.concatenate(x)
    k = index.vocabulary.size
    codebooks = {"the index's vocabulary": index.vocabulary.centroids}
    for path in args.extra:
        loaded = np.load(path)
        codebooks[Path(path).name] = loaded["centroids"] if path.endswith(".npz") else loaded
    for seed in range(1, args.draws + 1):
        km = faiss.Kmeans(everything.shape[1], k, niter=10, seed=seed,
                          max_points_per_centroid=len(everything) // k + 1)
        km.train(everything)
        codebooks[f"k-means seed {seed}"] = km.centroids
    scores = {"classicpr": [], "asmk package": []}
    for label, centroids in codebooks.items():
        centroids = np.asarray(centroids, np.float32)
        words = [nearest_words(f, centroids, 1)[:, 0] for f in x]
        embedding = HammingEmbedding.train(everything, np.concatenate(words), len(centroids),
                                           seed=0, bits=128)
        assigned = {i: nearest_words(x[i], centroids, 5).reshape(-1) for i in range(len(x))
                    if related[names[i]]}
        row = {}
        for kernel in scores:
            if kernel == "classicpr":
                db = [classicpr_vectors(f, w, embedding, "database") for f, w in zip(x, words)]
                queries = {i: classicpr_vectors(np.repeat(x[i], 5, axis=0), w, embedding, "query")
                           for i, w in assigned.items()}
            else:
                db = [package_vectors(f, w, centroids) for f, w in zip(x, words)]
                queries = {i: package_vectors(np.repeat(x[i], 5, axis=0), w, centroids)
                           for i, w in assigned.items()}
            row[kernel] = ranking_map(db, queries, names, related)
            scores[kernel].append(row[kernel])
        print(f"{label:24s} classicpr {row['classicpr']:5.1f}   asmk package {row['asmk package']:5.1f}",
              flush=True)
    for kernel, values in scores.items():
        print(f"{kernel}: mean {np.mean(values):.1f}, sd {np.std(values):.1f}, "
              f"range {min(values):.1f}-{max(values):.1f} over {len(values)} codebooks")


if __name__ == "__main__":
    main()
