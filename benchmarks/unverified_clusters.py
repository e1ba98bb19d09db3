"""Would Hamming-filtered word correspondences localise objects on unverified images?

    python benchmarks/unverified_clusters.py ../shared/data/prmini-dev prmini INDEX

For every query with an object segment and every image of its top 100 that verification
leaves without a region, the query's object features are matched to the image through
shared words with close signatures (``verify.method="hamming"``'s correspondences) and
Hough-voted as for a verified image (:func:`classicpr.objects.hough_localise`). Prints,
for positives and for negatives, how many images get a cluster of at least 3 votes.
"""
import sys
from collections import Counter

from classicpr import Config, Index
from classicpr.datasets import load_revisitop
from classicpr.objects import hough_localise
from classicpr.pipeline import _max_bits, extract_query, query_object_segment, run_query
from classicpr.verify import hamming_correspondences


def main(root, name, index_dir):
    ds = load_revisitop(root, name)
    index = Index.load(index_dir)
    config = Config().updated({"retrieval.expansion": "none"})
    clusters, images = Counter(), Counter()
    for q in range(len(ds.qimlist)):
        path, box = str(ds.image_dir / ds.query_file(q)), ds.query_box(q)
        query = extract_query(index, path, box)
        segment, cue, _ = query_object_segment(path, query, config.mask)
        if cue is None:
            continue
        positives = set(ds.gnd[q]["easy"]) | set(ds.gnd[q]["hard"])
        junk = set(ds.gnd[q].get("junk", []))
        for r in run_query(index, path, box, config, top=100):
            if r.localised or r.image_id in junk:
                continue
            cand = index.candidate(r.image_id)
            qi, di = hamming_correspondences(query.words, query.signatures, cand.words,
                                             cand.signatures, _max_bits(config.verify, cand))
            on = cue.on_object[qi]
            loc = hough_localise(query.keypoints, cand.keypoints, qi[on], di[on], cue.box, 3)
            kind = "positive" if r.image_id in positives else "negative"
            images[kind] += 1
            clusters[kind] += loc is not None
    for kind in ("positive", "negative"):
        print(f"unverified {kind}s: {images[kind]}, with a cluster of >= 3 votes: {clusters[kind]}")


if __name__ == "__main__":
    main(*sys.argv[1:4])
