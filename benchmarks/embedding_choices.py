"""ASMK* image mAP on prmini-dev by signature length and by where the Hamming-embedding
medians are learned (all database features, or a random share of them).

Usage (INDEX built by ``classicpr evaluate ../shared/data/prmini-dev --name prmini
--index-dir INDEX``)::

    python benchmarks/embedding_medians.py ../shared/data/prmini-dev INDEX
"""
import sys

import numpy as np

from classicpr.config import RetrievalConfig
from classicpr.datasets import load_revisitop
from classicpr.embedding import HammingEmbedding
from classicpr.features import rootsift
from classicpr.index import Index
from classicpr.invfile import InvertedFile
from classicpr.metrics import image_map
from classicpr.pipeline import extract_query


def main(root: str, index_dir: str) -> None:
    ds = load_revisitop(root, "prmini")
    index = Index.load(index_dir)
    vocab, store, cfg = index.vocabulary, index.feature_store(), RetrievalConfig()
    db = []
    for name in index.names:
        kp, desc, size = store.load(name)
        x = rootsift(desc)
        db.append((x, vocab.assign(x), kp, size))
    queries = []
    for q in range(len(ds.qimlist)):
        f = extract_query(index, ds.image_dir / ds.query_file(q), ds.query_box(q))
        x = rootsift(f.descriptors)
        queries.append((x, vocab.assign_multiple(x, cfg.query_assignments)))
    all_x = np.concatenate([d[0] for d in db])
    all_w = np.concatenate([d[1] for d in db])
    rng = np.random.default_rng(1)
    for bits in (64, 128):
        for share in (0.5, 0.9, 1.0):
            keep = rng.random(len(all_x)) < share
            emb = HammingEmbedding.train(all_x[keep], all_w[keep], vocab.size, 0, bits)
            inv = InvertedFile.from_images(vocab.size, [d[1] for d in db], [d[2] for d in db],
                                           [d[3] for d in db],
                                           [emb.signatures(d[0], d[1]) for d in db])
            ranks = []
            for x, near in queries:
                s = inv.query_asmk(*emb.aggregate(x, near), cfg.alpha, cfg.tau)
                ranks.append(np.lexsort((np.arange(len(s)), -s)))
            m = image_map(np.array(ranks).T, ds.gnd)["mAP"]
            print(f"{bits} bits, medians on {100 * share:.0f} % of the database features: "
                  f"mAP {m['medium']:.1f} / {m['hard']:.1f}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
