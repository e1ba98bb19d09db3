"""Image mAP on the RParis6k images at hand (../shared/data/rparis6k-sample), by scoring.

None of RParis6k's 70 query images is in the sample, so every present image queries the
others (whole image, itself excluded); its positives are the present images that the
official ground truth (gnd_rparis6k.pkl) lists as easy or hard positives of a query in
common with it. Usage::

    python benchmarks/rparis_sample.py ../shared/data/rparis6k-sample/jpg \
        ../shared/data/revisitop/gnd_rparis6k.pkl /tmp/rparis-sample-index [SIGNATURE_BITS]
"""
import pickle
import sys
from pathlib import Path
from typing import Dict, List, Sequence, Set, Tuple

import numpy as np

from classicpr.config import RetrievalConfig
from classicpr.index import Index
from classicpr.metrics import average_precision
from classicpr.pipeline import extract_query, retrieval_query, retrieve


def sample_ground_truth(image_dir: str, gnd_path: str) -> Tuple[List[str], Dict[str, Set[str]]]:
    """The ground truth's images present in ``image_dir`` (sorted names, no extension),
    and for each the present images that are a positive of a query in common with it."""
    with open(gnd_path, "rb") as fh:
        gnd = pickle.load(fh)
    present = {p.stem for p in Path(image_dir).glob("*.jpg")}
    names = sorted(n for n in gnd["imlist"] if n in present)
    pos = {gnd["imlist"].index(n): n for n in names}
    groups = [{pos[i] for i in list(g["easy"]) + list(g["hard"]) if i in pos} for g in gnd["gnd"]]
    related = {n: set().union(*[g for g in groups if n in g]) - {n} for n in names}
    return names, related


def query_ap(ranked: Sequence[str], query: str, related: Dict[str, Set[str]]) -> float:
    """Average precision of a ranking of image names (no extension) for the sample image
    ``query``, itself left out, against its ``related`` images
    (:func:`sample_ground_truth`)."""
    hits = np.flatnonzero([r in related[query] for r in ranked if r != query])
    return average_precision(hits, len(related[query]))


def main(image_dir: str, gnd_path: str, index_dir: str, bits: str = "64") -> None:
    names, related = sample_ground_truth(image_dir, gnd_path)
    index = Index.build(image_dir, index_dir, names=[n + ".jpg" for n in names], n_jobs=2,
                        progress=False, signature_bits=int(bits))
    for scoring in ("bow", "asmk"):
        aps = []
        for n in names:
            if not related[n]:
                continue
            cfg = RetrievalConfig(scoring=scoring)
            query = extract_query(index, Path(image_dir) / (n + ".jpg"))
            ids, _ = retrieve(index, retrieval_query(index, query, cfg), cfg)
            aps.append(query_ap([index.names[i][:-4] for i in ids], n, related))
        print(f"{scoring}: mAP {100 * np.mean(aps):.1f} over {len(aps)} queries")


if __name__ == "__main__":
    main(*sys.argv[1:5])
