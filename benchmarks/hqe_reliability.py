"""Which images Hamming query expansion trusts, and the ranking it gives, by the
fraction of close correspondences an image needs.

    python benchmarks/hqe_reliability.py ../shared/data/prmini-dev prmini INDEX [INDEX ...]
        [--fractions 0,0.1,0.2,0.3]

For every index (e.g. one with the default vocabulary and one built with
``classicpr index ... --vocab-size 1024``) and every ``retrieval.hqe_min_fraction``: the
image mAP (medium / hard) of the ranking alone (``--shortlist 0 --expansion hqe``), how
many images were found reliable over all queries, and how many of those are negatives
of their query (neither positive nor junk). The first line per index is the ranking
without expansion.
"""
import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from classicpr import Config, Index  # noqa: E402
from classicpr.datasets import load_revisitop  # noqa: E402
from classicpr.metrics import image_map  # noqa: E402
from classicpr.pipeline import (extract_query, reliable_images, retrieval_query,  # noqa: E402
                                retrieve)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root")
    ap.add_argument("name")
    ap.add_argument("indexes", nargs="+")
    ap.add_argument("--fractions", default="0,0.1,0.2,0.3")
    args = ap.parse_args(argv)
    ds = load_revisitop(args.root, args.name)
    fractions = [float(f) for f in args.fractions.split(",")]
    for path in args.indexes:
        index = Index.load(path, image_dir=ds.image_dir)
        config = Config()
        queries = [extract_query(index, ds.image_dir / ds.query_file(q), ds.query_box(q))
                   for q in range(len(ds.qimlist))]
        ranked_as = [retrieval_query(index, query, config.retrieval) for query in queries]
        first = [retrieve(index, r, config.retrieval)[0] for r in ranked_as]
        print(f"{path} ({index.vocabulary.size} words)")
        m = image_map(np.stack(first, axis=1), ds.gnd)["mAP"]
        print(f"  no expansion: mAP {m['medium']:.1f} / {m['hard']:.1f}")
        for fraction in fractions:
            cfg = config.updated({"retrieval.hqe_min_fraction": fraction})
            ranks, n_reliable, n_negative = [], 0, 0
            for q, (query, r, ids) in enumerate(zip(queries, ranked_as, first)):
                reliable = [i for i, _ in reliable_images(index, query, ids, cfg)]
                ok = set(ds.gnd[q]["easy"] + ds.gnd[q]["hard"] + ds.gnd[q]["junk"])
                n_reliable += len(reliable)
                n_negative += sum(i not in ok for i in reliable)
                expansion = [(c.words, c.signatures) for c in map(index.candidate, reliable)]
                ranks.append(retrieve(index, r, cfg.retrieval, expansion)[0] if expansion else ids)
            m = image_map(np.stack(ranks, axis=1), ds.gnd)["mAP"]
            print(f"  hqe_min_fraction {fraction:g}: mAP {m['medium']:.1f} / {m['hard']:.1f}, "
                  f"{n_reliable} reliable images, {n_negative} of them negatives")


if __name__ == "__main__":
    main()
