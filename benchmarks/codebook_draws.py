"""ASMK* rankings over several codebook draws: classicpr's kernel against the asmk
package's, with the same codebooks.

    python benchmarks/codebook_draws.py rparis ../shared/data/rparis6k-sample/jpg \
        ../shared/data/revisitop/gnd_rparis6k.pkl WORK/full [--draws 5] [--extra C.npz ...]
    python benchmarks/codebook_draws.py revisitop ../shared/data/prmini-dev prmini INDEX \
        [--draws 5] [--extra C.npz ...]

``rparis``: WORK/full is the index ``rparis_pipeline.py`` builds on all 31 images; queries
are whole frames with their own image dropped from the ranking, scored as
``rparis_sample.py``. ``revisitop``: a benchmark and its index (``classicpr evaluate
--index-dir INDEX``); queries are the features in the query boxes, scored by revisitop's
mAP (medium / hard). The index's vocabulary is one codebook, each ``--extra`` file another ((k, 128) float32 centroids in a .npy, or the
``centroids`` of a .npz such as the ranks file of ``asmk_package.py run``: the package's), and ``--draws`` more are trained here with
the package's recipe (faiss k-means, 10 iterations, all descriptors, seeds 1, 2, ...).
For each codebook the per-word medians of the Hamming embedding are learned on all the
database's descriptors, as the index does; query features count in their 5 nearest words.

Kernels, both ASMK* with alpha 3, tau 0 and 128-bit vectors:

* classicpr: the query's vector in a word is the sign of its features' summed projected
  residuals, a database image's the majority of its features' signatures;
* asmk package: the sign of the summed residuals ``x - c`` in RootSIFT's own 128
  dimensions, on both sides;
* classicpr, summed on both sides: classicpr's, with a database image's vector taken as
  the query's is (``HammingEmbedding.aggregate`` of its raw descriptors) instead of the
  majority of its features' signatures.
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
from rparis_sample import query_ap, sample_ground_truth  # noqa: E402


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
    """ASMK* vectors of one image: (distinct words, (U, 2) uint64). The query's are
    ``HammingEmbedding.aggregate``'s (``words`` (N, 5)), a database image's the majority
    of its features' signatures (``words`` (N,))."""
    if side == "query":
        return embedding.aggregate(x, words)
    words, x, starts, unique = by_word(words, x)
    counts = np.diff(np.r_[starts, len(words)])
    return unique, majority_signatures(embedding.signatures(x, words), starts, counts)


def package_vectors(x, words, centroids):
    words, x, starts, unique = by_word(words, x)
    return unique, pack_bits(np.add.reduceat(x - centroids[words], starts, axis=0) > 0)


def asmk_scores(query, db) -> np.ndarray:
    """ASMK* similarity (alpha 3, tau 0) of one query's vectors with each image's."""
    qw, qv = query
    scores = np.zeros(len(db))
    for i, (dw, dv) in enumerate(db):
        _, a, b = np.intersect1d(qw, dw, return_indices=True)
        scores[i] = selective_similarity(hamming(qv[a], dv[b]), 128, 3.0, 0.0).sum() / np.sqrt(
            len(qw) * len(dw))
    return scores


class RParisSample:
    """Whole-frame queries of the RParis6k sample, their own image dropped."""

    def __init__(self, image_dir, gnd, index_dir):
        _, self.related = sample_ground_truth(image_dir, gnd)
        self.index = Index.load(index_dir)
        store = self.index.feature_store()
        self.names = [n[:-4] for n in self.index.names]
        self.db = [rootsift(store.load(n)[1]) for n in self.index.names]
        self.queries = {i: self.db[i] for i, n in enumerate(self.names) if self.related[n]}

    def score(self, ranked_scores) -> str:
        aps = []
        for k, scores in ranked_scores.items():
            scores = scores.copy()
            scores[k] = -np.inf
            ranked = [self.names[i] for i in np.argsort(-scores, kind="stable")]
            aps.append(query_ap(ranked, self.names[k], self.related))
        return f"{100 * np.mean(aps):.1f}"


class Revisitop:
    """In-box queries of a benchmark in the revisitop layout."""

    def __init__(self, root, name, index_dir):
        from classicpr.datasets import load_revisitop
        from classicpr.pipeline import extract_query
        self.ds = load_revisitop(Path(root), name)
        self.index = Index.load(index_dir)
        store = self.index.feature_store()
        self.db = [rootsift(store.load(n)[1]) for n in self.index.names]
        self.queries = {q: rootsift(extract_query(self.index, self.ds.image_dir / self.ds.query_file(q),
                                                  self.ds.query_box(q)).descriptors)
                        for q in range(len(self.ds.qimlist))}

    def score(self, ranked_scores) -> str:
        from classicpr.metrics import image_map
        ranks = np.array([np.argsort(-ranked_scores[q], kind="stable")
                          for q in range(len(self.ds.qimlist))]).T
        m = image_map(ranks, self.ds.gnd)["mAP"]
        return f"{m['medium']:.1f} / {m['hard']:.1f}"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("kind", choices=("rparis", "revisitop"))
    ap.add_argument("args", nargs=3, help="rparis: IMAGE_DIR GND INDEX; revisitop: ROOT NAME INDEX")
    ap.add_argument("--draws", type=int, default=5)
    ap.add_argument("--extra", action="append", default=[], metavar="CENTROIDS.npy|.npz")
    args = ap.parse_args(argv)
    data = (RParisSample if args.kind == "rparis" else Revisitop)(*args.args)
    index, x = data.index, data.db
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
    scores = {"classicpr": [], "asmk package": [], "classicpr, summed on both sides": []}
    for label, centroids in codebooks.items():
        centroids = np.asarray(centroids, np.float32)
        words = [nearest_words(f, centroids, 1)[:, 0] for f in x]
        embedding = HammingEmbedding.train(everything, np.concatenate(words), len(centroids),
                                           seed=0, bits=128)
        assigned = {q: (f, nearest_words(f, centroids, 5)) for q, f in data.queries.items()}
        row = {}
        for kernel in scores:
            if kernel.startswith("classicpr"):
                db = [embedding.aggregate(f, w) if kernel.endswith("both sides") else
                      classicpr_vectors(f, w, embedding, "database") for f, w in zip(x, words)]
                queries = {q: classicpr_vectors(f, w, embedding, "query")
                           for q, (f, w) in assigned.items()}
            else:
                db = [package_vectors(f, w, centroids) for f, w in zip(x, words)]
                queries = {q: package_vectors(np.repeat(f, 5, axis=0), w.reshape(-1), centroids)
                           for q, (f, w) in assigned.items()}
            row[kernel] = data.score({q: asmk_scores(v, db) for q, v in queries.items()})
            scores[kernel].append([float(v) for v in row[kernel].split(" / ")])
        print(f"{label:24s} " + "   ".join(f"{kernel} {row[kernel]:>13s}" for kernel in scores),
              flush=True)
    for kernel, values in scores.items():
        v = np.array(values)
        print(f"{kernel}: mean {' / '.join(f'{m:.1f}' for m in v.mean(0))}, "
              f"sd {' / '.join(f'{d:.1f}' for d in v.std(0))}, over {len(v)} codebooks")


if __name__ == "__main__":
    main()
