"""Build ``prvideo``: video-object queries from other frames than the first, in the PROxford layout.

    python benchmarks/make_video_set.py ../shared/data/prmini-dev OUT --frame last|middle

prmini-dev queries each DAVIS video with its first frame. Here each video is queried with
another of its labelled frames instead (``last``: the last one; ``middle``: the middle
one of its labelled frames), so that the object is seen in another pose, place and size
than in prmini-dev's queries, and the other frames are reached backwards or both ways in
time. The query box is the bounding box of that frame's label, clipped to the image; the
query frame leaves the database (a query is never a database image). The positives are
the video's other labelled frames, with their prmini-dev labels (the object's mask in a
frame does not depend on the query): easy within 30 frames of the query frame, hard
beyond, as prmini-dev splits them. Every other prmini-dev database image stays, as a
distractor (planar scenes, landmarks, the other videos). Nothing is drawn at random.
"""
import argparse
import json
import pickle
import re
import shutil
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from classicpr.datasets import load_label_polygons, load_revisitop  # noqa: E402
from classicpr.io import image_size  # noqa: E402

EASY_WITHIN = 30  # frames


def frame_number(name: str) -> int:
    return int(re.search(r"_(\d+)$", name).group(1))


def make_video_set(prmini_root: Path, out: Path, frame: str = "last") -> dict:
    ds = load_revisitop(prmini_root, "prmini")
    labels = ds.load_labels()
    name = f"prvideo{frame}"
    data = out / "revisitop" / "data" / name
    jpg, label_dir = data / "jpg", out / "labels" / name
    for d in (jpg, label_dir):
        d.mkdir(parents=True, exist_ok=True)
    videos = []  # (prmini query, query frame id, the other frames' ids)
    for q, qname in enumerate(ds.qimlist):
        if not qname.startswith("davis_"):
            continue
        frames = sorted(list(ds.gnd[q]["easy"]) + list(ds.gnd[q]["hard"]),
                        key=lambda i: frame_number(ds.imlist[i]))
        if len(frames) < 2:
            continue
        chosen = frames[-1] if frame == "last" else frames[(len(frames) - 1) // 2]
        videos.append((q, chosen, [i for i in frames if i != chosen]))
    left_out = {chosen for _, chosen, _ in videos}
    kept = [i for i in range(len(ds.imlist)) if i not in left_out]
    new_id = {i: k for k, i in enumerate(kept)}
    for i in kept:
        shutil.copyfile(ds.image_dir / ds.db_file(i), jpg / ds.db_file(i))
    imlist = [ds.imlist[i] for i in kept]
    qimlist, gnd, label_paths = [], [], {}
    for q, chosen, others in videos:
        qpos = len(qimlist)
        qname = re.sub(r"_q$", "", ds.qimlist[q]) + f"_q{frame_number(ds.imlist[chosen]):05d}"
        qimlist.append(qname)
        shutil.copyfile(ds.image_dir / ds.db_file(chosen), jpg / f"{qname}.jpg")
        w, h = image_size(ds.image_dir / ds.db_file(chosen))
        pts = np.concatenate(load_label_polygons(labels[f"{q}_{chosen}"]))
        x1, y1 = np.clip(pts.min(0), 0, [w - 1, h - 1])
        x2, y2 = np.clip(pts.max(0), 0, [w - 1, h - 1])
        g = {"bbx": [float(x1), float(y1), float(x2), float(y2)], "easy": [], "hard": [],
             "junk": []}
        t0 = frame_number(ds.imlist[chosen])
        for i in others:
            j = new_id[i]
            g["easy" if abs(frame_number(ds.imlist[i]) - t0) <= EASY_WITHIN else "hard"].append(j)
            rel = f"labels/{name}/{qpos}_{j}.json"
            label = json.loads(Path(labels[f"{q}_{i}"]).read_text())
            (out / rel).write_text(json.dumps(label))
            label_paths[f"{qpos}_{j}"] = rel
        gnd.append(g)
    with open(data / f"gnd_{name}.pkl", "wb") as fh:
        pickle.dump({"imlist": imlist, "qimlist": qimlist, "gnd": gnd}, fh)
    np.save(out / f"{name}_pair2labelpath.npy", np.array(label_paths, dtype=object),
            allow_pickle=True)
    (out / "SOURCES.md").write_text(
        f"{name}: made by classicpr's benchmarks/make_video_set.py from prmini-dev "
        f"(--frame {frame}); see that script's docstring.\n")
    return {"name": name, "queries": len(qimlist), "database": len(imlist),
            "easy": sum(len(g["easy"]) for g in gnd), "hard": sum(len(g["hard"]) for g in gnd)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("prmini_root", help="the prmini-dev folder (PROxford layout)")
    ap.add_argument("out", help="output folder (holds revisitop/data/prvideoFRAME)")
    ap.add_argument("--frame", choices=("last", "middle"), default="last",
                    help="which labelled frame of each video queries it")
    args = ap.parse_args(argv)
    print(make_video_set(Path(args.prmini_root), Path(args.out), args.frame))


if __name__ == "__main__":
    main()
