"""``classicpr bench``: speed and memory of every stage, on databases of growing size.

Databases are made of real photographs turned into distinct distractors (random crop,
flip, rescale to 640-1024 px, colour and gamma change), so they look and cost like photos.
Sources: the photos bundled with scikit-image, or any folder given with ``--photos``.
For every size N (each in a fresh subprocess, so peak RSS is its own) the bench builds an
index with a vocabulary trained once per run, then times queries (boxes on database
images) split into retrieval, verification of the top 100 and masks of the top 20, plus the
exhaustive recipe (verify every database image). It also compares, on the same images,
index building with n_jobs = 1 against a bare loop of OpenCV SIFT (the physical floor) and
n_jobs = 2 against n_jobs = 1, beside the same bare loop split over 2 processes (what the
machine itself gives to perfectly parallel work). Medians over repeats; JSON and a table.
"""
from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import cv2
import numpy as np

from .blas import environment
from .io import atomic_write, list_images, write_json


def _source_photos(photos: Optional[Sequence[str]]) -> List[np.ndarray]:
    out = []
    if photos:
        for folder in photos:
            for name in list_images(folder):
                img = cv2.imread(str(Path(folder) / name), cv2.IMREAD_COLOR)
                if img is not None:
                    out.append(img)
    else:
        from skimage import data
        for name in ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry",
                     "hubble_deep_field", "camera", "horse", "coins", "page", "moon"):
            img = getattr(data, name)()
            if img.dtype != np.uint8:
                img = (255 * (img / max(img.max(), 1))).astype(np.uint8)
            img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR) if img.ndim == 2 else cv2.cvtColor(img[..., :3], cv2.COLOR_RGB2BGR)
            out.append(img)
    if not out:
        raise ValueError("no source photos for the bench")
    return out


def make_distractors(folder, n: int, seed: int = 0, photos: Optional[Sequence[str]] = None) -> List[str]:
    """Write ``n`` distinct photo-like JPEGs ``d_00000.jpg ...`` (kept if already there)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"d_{i:05d}.jpg" for i in range(n)]
    todo = [i for i, nm in enumerate(names) if not (folder / nm).is_file()]
    if not todo:
        return names
    sources = _source_photos(photos)
    for i in todo:
        rng = np.random.default_rng([seed, i])
        img = sources[int(rng.integers(len(sources)))]
        h, w = img.shape[:2]
        frac = rng.uniform(0.5, 1.0)
        ch, cw = max(32, int(h * np.sqrt(frac))), max(32, int(w * np.sqrt(frac)))
        y0, x0 = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
        crop = img[y0:y0 + ch, x0:x0 + cw]
        if rng.random() < 0.5:
            crop = cv2.flip(crop, 1)
        side = rng.uniform(640, 1024)
        f = side / max(crop.shape[:2])
        crop = cv2.resize(crop, None, fx=f, fy=f, interpolation=cv2.INTER_CUBIC if f > 1 else cv2.INTER_AREA)
        hsv = cv2.cvtColor(crop, cv2.COLOR_BGR2HSV).astype(np.float32)
        hsv[..., 0] = (hsv[..., 0] + rng.uniform(-12, 12)) % 180
        hsv[..., 1] *= rng.uniform(0.7, 1.3)
        crop = cv2.cvtColor(np.clip(hsv, 0, 255).astype(np.uint8), cv2.COLOR_HSV2BGR)
        gamma = rng.uniform(0.7, 1.4)
        crop = (255 * (crop / 255.0) ** gamma).astype(np.uint8)
        ok, buf = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(80, 96))])
        with atomic_write(folder / names[i]) as fh:
            fh.write(buf.tobytes())
    return names


def _peak_rss_mb() -> float:
    self_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    child_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(self_kb, child_kb) / 1024.0


def bare_sift_seconds(paths: Sequence[Path], max_side: int = 1024) -> float:
    """A bare single-threaded loop of imread + resize + OpenCV SIFT: the physical floor."""
    cv2.setNumThreads(1)
    sift = cv2.SIFT_create(nfeatures=4000)
    t0 = time.perf_counter()
    for p in paths:
        g = cv2.imread(str(p), cv2.IMREAD_GRAYSCALE)
        f = max_side / max(g.shape)
        if f < 1:
            g = cv2.resize(g, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
        sift.detectAndCompute(g, None)
    return time.perf_counter() - t0


def _bare_sift_share(args) -> float:
    paths, max_side = args
    return bare_sift_seconds(paths, max_side)


def bare_sift_parallel_seconds(paths: Sequence[Path], n_procs: int = 2, max_side: int = 1024) -> float:
    """The same bare SIFT loop split over ``n_procs`` processes (after a warm-up): what
    this machine's cores give to perfectly parallel OpenCV work, the ceiling for n_jobs."""
    import multiprocessing
    shares = [(list(paths[k::n_procs]), max_side) for k in range(n_procs)]
    with multiprocessing.get_context("spawn").Pool(n_procs) as pool:
        pool.map(_bare_sift_share, [(s[:2], max_side) for s, _ in shares])  # start-up, imports
        t0 = time.perf_counter()
        pool.map(_bare_sift_share, shares)
        return time.perf_counter() - t0


def _one_size(image_dir: Path, names: List[str], vocab_path: Path, work: Path, n_queries: int,
              n_jobs: Optional[int], exhaustive_queries: int) -> dict:
    """Build and query one database (runs in its own process)."""
    from .config import Config
    from .index import Index
    from .pipeline import QUERY_STAGES, run_query
    from .vocabulary import Vocabulary
    vocab = Vocabulary.load(vocab_path)
    t0 = time.perf_counter()
    index = Index.build(image_dir, work / "index", names=names, vocabulary=vocab,
                        n_jobs=n_jobs, progress=False)
    build = time.perf_counter() - t0
    rss_build = _peak_rss_mb()
    n_desc = int(index.invfile.offsets[-1])
    rng = np.random.default_rng(0)
    qids = rng.choice(len(names), min(n_queries, len(names)), replace=False)
    stages = QUERY_STAGES[1:]  # the query's own SIFT left out
    splits: Dict[str, list] = {k: [] for k in stages + (
        "synthesis", "masks_grabcut", "retrieval_bow", "verification_hamming",
        "verification_ratio_plain")}
    for q in qids:
        w, h = index.invfile.sizes[q]
        box = (0.25 * w, 0.25 * h, 0.75 * w, 0.75 * h)
        img = str(image_dir / names[q])
        for mask in ("projected", "grabcut"):
            t: Dict[str, float] = {}
            run_query(index, img, box, Config().updated({"mask.method": mask, "mask.top": 20}),
                      n_jobs=n_jobs, timing=t)
            if mask == "projected":
                for k in stages:
                    splits[k].append(t[k])
                splits["synthesis"].append(t["synthesis_s"])  # part of verification
            else:
                splits["masks_grabcut"].append(t["masks"])
        # scorings and correspondences side by side (plain verification: no view synthesis)
        for key, updates in (("retrieval_bow", {"retrieval.scoring": "bow"}),
                             ("verification_hamming", {"verify.method": "hamming"}),
                             ("verification_ratio_plain", {})):
            t = {}
            run_query(index, img, box, Config().updated({"mask.method": "projected", "mask.top": 20,
                                                         "verify.synthesis_candidates": 0,
                                                         **updates}), n_jobs=n_jobs, timing=t)
            splits[key].append(t["retrieval" if key.startswith("retrieval") else "verification"])
    exhaustive = []
    for q in qids[:exhaustive_queries]:
        w, h = index.invfile.sizes[q]
        t = {}
        run_query(index, str(image_dir / names[q]), (0.25 * w, 0.25 * h, 0.75 * w, 0.75 * h),
                  Config.preset("paper").updated({"mask.top": 20}), n_jobs=n_jobs, timing=t)
        exhaustive.append(sum(t[k] for k in stages))
    med = {k: 1000 * float(np.median(v)) for k, v in splits.items()}
    disk = (work / "index" / "index.npz").stat().st_size
    features_disk = sum(p.stat().st_size for p in (work / "index" / "features").glob("**/*.npz"))
    inv = index.invfile.nbytes()
    return {
        "n": len(index.names), "extract_ms_per_image": 1000 * index.timing["features_s"] / len(names),
        "assign_descriptors_per_s": n_desc / max(index.timing["assign_index_s"], 1e-9),
        "index_build_s": build, "features_per_image": n_desc / len(index.names),
        "index_bytes_per_image": sum(inv.values()) / len(index.names),
        "index_bytes_per_image_disk": (disk - vocab.centroids.nbytes) / len(index.names),
        "index_parts_bytes_per_image": {k: v / len(index.names) for k, v in inv.items()},
        "features_bytes_per_image_disk": features_disk / len(index.names),
        "query_ms": {"retrieval": med["retrieval"], "retrieval_bow": med["retrieval_bow"],
                     "verification": med["verification"],
                     "verification_ratio_plain": med["verification_ratio_plain"],
                     "verification_hamming_plain": med["verification_hamming"],
                     "of_which_view_synthesis": med["synthesis"],
                     "masks": med["masks"], "masks_grabcut": med["masks_grabcut"],
                     "relay": med["relay"], "neighbours": med["neighbours"],
                     "total": sum(med[k] for k in stages)},
        "exhaustive_ms_per_query": 1000 * float(np.median(exhaustive)) if exhaustive else None,
        "peak_rss_mb": _peak_rss_mb(), "peak_rss_build_mb": rss_build,
    }


def run_bench(sizes: Sequence[int], out_json: Optional[str] = None, work_dir: Optional[str] = None,
              photos: Optional[Sequence[str]] = None, n_jobs: Optional[int] = None,
              n_queries: int = 5, exhaustive_queries: int = 1, overhead_images: int = 100,
              repeats: int = 3, vocab_size: int = 4096, seed: int = 0) -> dict:
    """Run the whole bench; returns (and optionally writes) its JSON (see :func:`format_table`)."""
    from .features import FeatureConfig, FeatureStore, extract_to_store
    from .index import Index, train_vocabulary
    from .vocabulary import Vocabulary
    work = Path(work_dir or tempfile.mkdtemp(prefix="classicpr-bench-"))
    image_dir = work / "images"
    names = make_distractors(image_dir, max(max(sizes), overhead_images), seed, photos)
    # one vocabulary per run, trained on up to 500 images (as a real vocabulary is trained
    # once, on other data); its cost is reported, not counted in index building
    vocab_path = work / f"vocab_{vocab_size}.npz"
    t0 = time.perf_counter()
    if not vocab_path.is_file():
        store = FeatureStore(work / "vocab_features", FeatureConfig())
        done, _ = extract_to_store(image_dir, names[:500], store, n_jobs, progress=False)
        train_vocabulary(store, done, vocab_size, seed, n_jobs).save(vocab_path)
    vocab_s = time.perf_counter() - t0
    result = {"sizes": list(sizes), "results": {}, "vocabulary": {"size": vocab_size, "train_s": vocab_s}}
    for n in sizes:
        size_dir = work / f"n{n}"
        cmd = [sys.executable, "-c", "import json,sys; from classicpr.bench import _child; _child()"]
        payload = json.dumps({"image_dir": str(image_dir), "names": names[:n], "vocab": str(vocab_path),
                              "work": str(size_dir), "n_queries": n_queries, "n_jobs": n_jobs,
                              "exhaustive_queries": exhaustive_queries})
        import shutil
        shutil.rmtree(size_dir, ignore_errors=True)
        proc = subprocess.run(cmd, input=payload, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"bench at size {n} failed:\n{proc.stderr[-2000:]}")
        result["results"][str(n)] = json.loads(proc.stdout.strip().splitlines()[-1])
        shutil.rmtree(size_dir / "index" / "features", ignore_errors=True)
    # overheads, side by side on the same images
    paths = [image_dir / nm for nm in names[:overhead_images]]
    vocab = Vocabulary.load(vocab_path)
    bare, bare2, one, two = [], [], [], []
    import shutil
    for r in range(repeats):
        bare.append(bare_sift_seconds(paths))
        bare2.append(bare_sift_parallel_seconds(paths, 2))
        for jobs, sink in ((1, one), (2, two)):
            d = work / f"overhead_{jobs}"
            shutil.rmtree(d, ignore_errors=True)
            t0 = time.perf_counter()
            Index.build(image_dir, d, names=names[:overhead_images], vocabulary=vocab,
                        n_jobs=jobs, progress=False)
            sink.append(time.perf_counter() - t0)
    result["bare_sift_s"] = float(np.median(bare))
    result["index_build_1_job_s"] = float(np.median(one))
    result["index_build_2_jobs_s"] = float(np.median(two))
    result["build_overhead_vs_bare_sift"] = float(np.median(one) / np.median(bare))
    result["speedup_2_jobs"] = float(np.median(one) / np.median(two))
    # the machine's own ceiling: the bare loop in 2 processes (shared VMs give less than 2x)
    result["bare_sift_2_procs_s"] = float(np.median(bare2))
    result["hardware_speedup_2"] = float(np.median(bare) / np.median(bare2))
    result["build_overhead_per_run"] = [float(a / b) for a, b in zip(one, bare)]
    result["speedup_2_jobs_per_run"] = [float(a / b) for a, b in zip(one, two)]
    result["hardware_speedup_2_per_run"] = [float(a / b) for a, b in zip(bare, bare2)]
    result["environment"] = environment()
    if out_json:
        write_json(out_json, result)
    return result


def _child() -> None:
    args = json.loads(sys.stdin.read())
    res = _one_size(Path(args["image_dir"]), args["names"], Path(args["vocab"]), Path(args["work"]),
                    args["n_queries"], args["n_jobs"], args["exhaustive_queries"])
    print(json.dumps(res))


def format_table(result: dict) -> str:
    """The bench JSON as a plain-text table."""
    lines = [f"{'images':>7} {'extract ms/img':>14} {'build s':>8} {'KB/img':>7} {'retr ms':>8} "
             f"{'verif ms':>8} {'views ms':>8} {'masks ms':>8} {'relay ms':>8} {'nbrs ms':>8} "
             f"{'total ms':>8} {'exhaust ms':>10} {'peak MB':>8} {'build MB':>8}"]
    for n in result["sizes"]:
        r = result["results"][str(n)]
        q = r["query_ms"]
        ex = r["exhaustive_ms_per_query"]
        lines.append(f"{n:>7} {r['extract_ms_per_image']:>14.1f} {r['index_build_s']:>8.1f} "
                     f"{r['index_bytes_per_image'] / 1024:>7.1f} {q['retrieval']:>8.1f} "
                     f"{q['verification']:>8.1f} {q.get('of_which_view_synthesis', float('nan')):>8.1f} "
                     f"{q['masks']:>8.1f} {q.get('relay', float('nan')):>8.1f} "
                     f"{q.get('neighbours', float('nan')):>8.1f} {q['total']:>8.1f} "
                     f"{(ex if ex is not None else float('nan')):>10.0f} {r['peak_rss_mb']:>8.0f} "
                     f"{r['peak_rss_build_mb']:>8.0f}")
    lines.append(f"{'images':>7} {'asmk ms':>8} {'bow ms':>8} {'ratio ms':>8} {'hamming ms':>10} "
                 f"{'index KB/img':>12} {'features KB/img':>15}   (plain verification, no views)")
    for n in result["sizes"]:
        r = result["results"][str(n)]
        q = r["query_ms"]
        lines.append(f"{n:>7} {q['retrieval']:>8.1f} {q.get('retrieval_bow', float('nan')):>8.1f} "
                     f"{q.get('verification_ratio_plain', float('nan')):>8.1f} "
                     f"{q.get('verification_hamming_plain', float('nan')):>10.1f} "
                     f"{r['index_bytes_per_image'] / 1024:>12.1f} "
                     f"{r.get('features_bytes_per_image_disk', float('nan')) / 1024:>15.1f}")
    lines.append(f"index build, n_jobs=1 vs bare OpenCV SIFT loop: "
                 f"{result['build_overhead_vs_bare_sift']:.2f}x; n_jobs=2 speedup: {result['speedup_2_jobs']:.2f}x "
                 f"(the bare loop in 2 processes: {result['hardware_speedup_2']:.2f}x)")
    return "\n".join(lines)
