"""The asmk package (PyPI asmk 0.1.1, jenicek/asmk) against classicpr's ASMK*, on the same
features: image mAP and time.

The package pickles its state and is not one of classicpr's dependencies, so it runs in
its own environment; the features go across in one .npz::

    # 1. classicpr's environment: the index's RootSIFT (database) and in-box query features
    python benchmarks/asmk_package.py export ../shared/data/prmini-dev prmini INDEX feats.npz
    # 2. an environment with `pip install asmk faiss-cpu pyyaml` (and its C extension built)
    python benchmarks/asmk_package.py run feats.npz asmk_ranks.npz
    # 3. classicpr's environment: mAP of both, and classicpr's own retrieval time
    python benchmarks/asmk_package.py score ../shared/data/prmini-dev prmini INDEX feats.npz asmk_ranks.npz

On the RParis6k sample (``rparis_sample.py``'s ground truth: every present image with a
related one queries the others with its whole frame), against the index that
``rparis_pipeline.py`` builds on all 31 images (WORK/full)::

    python benchmarks/asmk_package.py export-rparis ../shared/data/rparis6k-sample/jpg ../shared/data/revisitop/gnd_rparis6k.pkl WORK/full feats.npz
    ASMK_ENV/bin/python benchmarks/asmk_package.py run feats.npz asmk_ranks.npz
    python benchmarks/asmk_package.py score-rparis ../shared/data/rparis6k-sample/jpg ../shared/data/revisitop/gnd_rparis6k.pkl feats.npz asmk_ranks.npz

There each query's own image is dropped from the ranking: without idf an image's score
does not depend on the others, so this is the ranking of an index without it.

Settings are the package's published ASMK* ones: binary signatures, alpha 3, tau 0, no
idf, multiple assignment 5 on the query side only; its codebook has as many words as the
index's vocabulary and is trained (faiss k-means) on all database descriptors.
"""
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # rparis_sample


def export(root, name, index_dir, out):
    from classicpr.datasets import load_revisitop
    from classicpr.features import rootsift
    from classicpr.index import Index
    from classicpr.pipeline import extract_query
    ds = load_revisitop(root, name)
    index = Index.load(index_dir)
    store = index.feature_store()
    db = [rootsift(store.load(n)[1]) for n in index.names]
    queries = [rootsift(extract_query(index, ds.image_dir / ds.query_file(q), ds.query_box(q)).descriptors)
               for q in range(len(ds.qimlist))]
    np.savez(out, db=np.concatenate(db), db_ids=np.repeat(np.arange(len(db)), [len(d) for d in db]),
             queries=np.concatenate(queries),
             query_ids=np.repeat(np.arange(len(queries)), [len(x) for x in queries]),
             words=index.vocabulary.size, n_db=len(db))


def export_rparis(image_dir, gnd, index_dir, out):
    from classicpr.features import rootsift
    from classicpr.index import Index
    from rparis_sample import sample_ground_truth
    _, related = sample_ground_truth(image_dir, gnd)
    index = Index.load(index_dir)
    store = index.feature_store()
    db = [rootsift(store.load(n)[1]) for n in index.names]
    queries = [k for k, n in enumerate(index.names) if related[n[:-4]]]
    np.savez(out, db=np.concatenate(db), db_ids=np.repeat(np.arange(len(db)), [len(d) for d in db]),
             queries=np.concatenate([db[k] for k in queries]),
             query_ids=np.repeat(np.arange(len(queries)), [len(db[k]) for k in queries]),
             query_images=np.array(queries), names=np.array(index.names),
             words=index.vocabulary.size, n_db=len(db))


def score_rparis(image_dir, gnd, features, asmk_ranks):
    from rparis_sample import query_ap, sample_ground_truth
    _, related = sample_ground_truth(image_dir, gnd)
    f, a = np.load(features), np.load(asmk_ranks)
    names = [str(n)[:-4] for n in f["names"]]
    aps = [query_ap([names[i] for i in a["ranks"][:, j]], names[k], related)
           for j, k in enumerate(f["query_images"])]
    print(f"asmk package: mAP {100 * np.mean(aps):.1f} over {len(aps)} queries, "
          f"query median {1000 * np.median(a['query_s']):.1f} ms")


def run(features, out):
    from asmk import asmk_method
    f = np.load(features)
    params = {"index": {"gpu_id": None},
              "train_codebook": {"codebook": {"size": int(f["words"])}},
              "build_ivf": {"kernel": {"binary": True}, "ivf": {"use_idf": False},
                            "quantize": {"multiple_assignment": 1}, "aggregate": {}},
              "query_ivf": {"quantize": {"multiple_assignment": 5}, "aggregate": {},
                            "search": {"topk": None},
                            "similarity": {"similarity_threshold": 0.0, "alpha": 3.0}}}
    method = asmk_method.ASMKMethod.initialize_untrained(params)
    t0 = time.perf_counter()
    method = method.train_codebook(f["db"])
    t1 = time.perf_counter()
    method = method.build_ivf(f["db"], f["db_ids"])
    t2 = time.perf_counter()
    times = []
    ranks = []
    for q in np.unique(f["query_ids"]):
        sel = f["query_ids"] == q
        t = time.perf_counter()
        _, _, r, _ = method.query_ivf(f["queries"][sel], f["query_ids"][sel])
        times.append(time.perf_counter() - t)
        ranks.append(r[0])
    np.savez(out, ranks=np.array(ranks).T, codebook_s=t1 - t0, ivf_s=t2 - t1,
             query_s=np.array(times), centroids=np.asarray(method.codebook.centroids, np.float32))
    print(f"asmk package: codebook {t1 - t0:.1f} s, ivf {t2 - t1:.1f} s, "
          f"query median {1000 * np.median(times):.1f} ms")


def score(root, name, index_dir, features, asmk_ranks):
    from classicpr.config import RetrievalConfig
    from classicpr.datasets import load_revisitop
    from classicpr.index import Index
    from classicpr.metrics import image_map
    ds = load_revisitop(root, name)
    index = Index.load(index_dir)
    f, a = np.load(features), np.load(asmk_ranks)
    emb, vocab, cfg = index.vocabulary.embedding, index.vocabulary, RetrievalConfig()
    ranks, times = [], []
    for q in range(len(ds.qimlist)):
        x = f["queries"][f["query_ids"] == q]
        t = time.perf_counter()
        words, vectors = emb.aggregate(x, vocab.assign_multiple(x, cfg.query_assignments))
        ids, _ = index.retrieve_asmk(words, vectors, cfg.alpha, cfg.tau)
        times.append(time.perf_counter() - t)
        ranks.append(ids)
    mine = image_map(np.array(ranks).T, ds.gnd)["mAP"]
    theirs = image_map(a["ranks"], ds.gnd)["mAP"]
    print(f"classicpr ASMK*: mAP {mine['medium']:.1f} / {mine['hard']:.1f}, "
          f"query median {1000 * np.median(times):.1f} ms (multiple assignment, aggregation, scoring)")
    print(f"asmk package:    mAP {theirs['medium']:.1f} / {theirs['hard']:.1f}, "
          f"query median {1000 * np.median(a['query_s']):.1f} ms; "
          f"codebook {float(a['codebook_s']):.1f} s, ivf {float(a['ivf_s']):.1f} s")


if __name__ == "__main__":
    {"export": export, "run": run, "score": score, "export-rparis": export_rparis,
     "score-rparis": score_rparis}[sys.argv[1]](*sys.argv[2:])
