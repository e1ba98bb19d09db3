"""``classicpr serve INDEX``: a local page to ask a query by drawing a box.

A person picks a database image or uploads a photo, drags a box on it, and sees the
ranked results with their masks and inlier counts, and can download the masks (a zip of
PNGs). The page is one HTML file with a little JavaScript and no external assets; it calls
the JSON routes below, which do what ``classicpr query`` does (:func:`run_query`).

Built on Flask (a small, well-kept WSGI library: routing, uploads with a size limit,
a development server that is enough for one person on their own machine;
``pip install "classicpr[web]"``). The server binds to 127.0.0.1 unless told otherwise.
Queries run one at a time in a background thread, each writing into its own job record,
so concurrent requests queue instead of sharing state; the page polls the job and shows
its stage while it runs.

Routes: ``GET /`` the page; ``GET /images`` database image list; ``GET /image/<i>`` a
database image; ``POST /upload`` an image file -> ``{"upload": token}``; ``POST /query``
``{"image": i | "upload": token, "box": [x1, y1, x2, y2]}`` -> ``{"job": id}``;
``GET /job/<id>`` status and results; ``GET /job/<id>/overlay/<rank>``,
``/job/<id>/mask/<rank>``, ``/job/<id>/masks.zip``.
"""
from __future__ import annotations

import io
import threading
import uuid
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Dict, Optional

import cv2
import numpy as np

from .config import Config
from .errors import ClassicPRError, ImageReadError
from .index import Index
from .io import PathLike, read_image, read_image_at_size, resize_by
from .pipeline import few_features_warning, run_query
from .regions import validate_box
from .viz import overlay

#: Longest side of the images the page shows (results and the query canvas).
DISPLAY_SIDE = 640
#: Height of the database images' thumbnails on the page, in pixels.
THUMBNAIL_HEIGHT = 64


def _encode(image: np.ndarray, ext: str = ".png") -> bytes:
    ok, buf = cv2.imencode(ext, image)
    if not ok:
        raise ClassicPRError("could not encode an image for the page")
    return buf.tobytes()


def _display(image: np.ndarray) -> np.ndarray:
    f = min(1.0, DISPLAY_SIDE / max(image.shape[:2]))
    return resize_by(image, f) if f < 1 else image


class QueryService:
    """The state behind the page: the index, uploads and query jobs (thread-safe).

    Parameters
    ----------
    index : Index
    config : Config
    top : int
        Results shown per query.
    n_jobs : int
        Cores for one query.
    """

    def __init__(self, index: Index, config: Config = Config(), top: int = 10, n_jobs: int = 1):
        self.index, self.config, self.top, self.n_jobs = index, config, top, n_jobs
        self.uploads: Dict[str, np.ndarray] = {}
        self.jobs: Dict[str, dict] = {}
        self.lock = threading.Lock()
        self.executor = ThreadPoolExecutor(max_workers=1)

    def add_upload(self, data: bytes) -> str:
        """Decode an uploaded file; ClassicPRError if it is not an image."""
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
        if image is None:
            raise ClassicPRError("the uploaded file is not an image OpenCV can read "
                                 "(JPEG, PNG, TIFF, BMP, WebP)")
        token = uuid.uuid4().hex
        with self.lock:
            self.uploads[token] = image
        return token

    def query_image(self, image_id: Optional[int], upload: Optional[str]) -> np.ndarray:
        if upload is not None:
            with self.lock:
                image = self.uploads.get(str(upload))
            if image is None:
                raise ClassicPRError("unknown upload; upload the image again")
            return image
        if image_id is None or not 0 <= int(image_id) < len(self.index.names):
            raise ClassicPRError(f"image must be a database index in [0, {len(self.index.names)})")
        image, _ = read_image(self.index.image_path(int(image_id)), gray=False)
        return image

    def submit(self, image_id: Optional[int], upload: Optional[str], box) -> str:
        """Validate and queue a query; returns its job id."""
        image = self.query_image(image_id, upload)
        try:
            box = validate_box(np.asarray(box, np.float64), (image.shape[1], image.shape[0]))
        except (ValueError, TypeError) as exc:
            raise ClassicPRError(f"bad box: {exc}") from None
        job_id = uuid.uuid4().hex[:12]
        with self.lock:
            self.jobs[job_id] = {"status": "queued", "stage": "", "results": [], "warnings": [],
                                 "error": "", "files": {}}
        self.executor.submit(self._run, job_id, image, box)
        return job_id

    def _set(self, job_id: str, **values) -> None:
        with self.lock:
            self.jobs[job_id].update(values)

    def _run(self, job_id: str, image: np.ndarray, box: np.ndarray) -> None:
        try:
            self._set(job_id, status="running")
            timing: dict = {}
            results = run_query(self.index, image, box, self.config, top=self.top,
                                n_jobs=self.n_jobs, timing=timing,
                                progress=lambda stage: self._set(job_id, stage=stage))
            warning = few_features_warning(int(timing["count_query_features"]),
                                           self.config.verify.min_inliers)
            warnings = [warning] if warning else []
            rows, files = [], {}
            for rank, r in enumerate(results, 1):
                row = {"rank": rank, "image": r.name, "score": round(r.score, 4),
                       "inliers": r.inliers, "verified": r.verified, "mask": r.mask is not None,
                       "relay": None if r.relay is None else self.index.names[r.relay],
                       "neighbour": (None if r.neighbour is None
                                     else self.index.names[r.neighbour])}
                if r.mask is not None:
                    w, h = self.index.image_size(r.image_id)
                    try:
                        db = read_image_at_size(self.index.image_path(r.image_id), (w, h))
                    except ImageReadError as exc:  # moved or deleted since indexing
                        warnings.append(f"{exc}: its mask is drawn on grey")
                        db = np.full((h, w, 3), 128, np.uint8)
                    files[f"overlay/{rank}"] = _encode(_display(overlay(
                        db, r.mask, r.polygon, label=r.caption(rank))), ".jpg")
                    files[f"mask/{rank}"] = _encode(r.mask.astype(np.uint8) * 255)
                rows.append(row)
            self._set(job_id, status="done", stage="", results=rows, warnings=warnings,
                      files=files)
        except Exception as exc:  # shown on the page; the server keeps running
            self._set(job_id, status="error", error=f"{type(exc).__name__}: {exc}")

    def job(self, job_id: str) -> Optional[dict]:
        with self.lock:
            job = self.jobs.get(job_id)
            return None if job is None else {k: v for k, v in job.items() if k != "files"}

    def job_file(self, job_id: str, name: str) -> Optional[bytes]:
        with self.lock:
            job = self.jobs.get(job_id)
            return None if job is None else job["files"].get(name)

    def masks_zip(self, job_id: str) -> Optional[bytes]:
        with self.lock:
            job = self.jobs.get(job_id)
            if job is None:
                return None
            masks = {k: v for k, v in job["files"].items() if k.startswith("mask/")}
            names = {r["rank"]: r["image"] for r in job["results"]}
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            for key, data in sorted(masks.items(), key=lambda kv: int(kv[0].split("/")[1])):
                rank = int(key.split("/")[1])
                zf.writestr(f"{rank:03d}_{Path(names[rank]).stem}.png", data)
        return buf.getvalue()


def create_app(index_dir: PathLike, config: Config = Config(), top: int = 10, n_jobs: int = 1,
               max_upload_mb: float = 20.0, image_dir: Optional[PathLike] = None):
    """The Flask application serving the page for an index folder (its database images in
    ``image_dir`` if given, see :meth:`Index.load`)."""
    try:
        from flask import Flask, Response, jsonify, request
    except ImportError:
        raise ClassicPRError("classicpr serve needs Flask: pip install 'classicpr[web]'") from None
    service = QueryService(Index.load(index_dir, image_dir), config, top, n_jobs)
    app = Flask("classicpr")
    app.config["MAX_CONTENT_LENGTH"] = int(max_upload_mb * 1024 * 1024)
    app.extensions["classicpr"] = service

    def error(message: str, status: int = 400):
        return jsonify({"error": message}), status

    @app.errorhandler(413)
    def too_large(_):
        return error(f"the upload is larger than {max_upload_mb:g} MB", 413)

    @app.get("/")
    def page():
        return Response(PAGE, mimetype="text/html")

    @app.get("/images")
    def images():
        return jsonify([{"id": i, "name": n} for i, n in enumerate(service.index.names)])

    def jpeg(image_id: Optional[int], token: Optional[str], max_height: Optional[int] = None):
        try:
            img = service.query_image(image_id, token)
        except ClassicPRError as exc:
            return error(str(exc), 404)
        if max_height is not None and img.shape[0] > max_height:
            img = resize_by(img, max_height / img.shape[0])
        return Response(_encode(img, ".jpg"), mimetype="image/jpeg")

    @app.get("/image/<int:image_id>")
    def image(image_id: int):
        return jpeg(image_id, None)

    @app.get("/thumb/<int:image_id>")
    def thumbnail(image_id: int):
        """A database image THUMBNAIL_HEIGHT pixels high (at twice that for sharp screens),
        so that the page does not load every image at full size."""
        return jpeg(image_id, None, 2 * THUMBNAIL_HEIGHT)

    @app.get("/upload/<token>")
    def uploaded(token: str):
        return jpeg(None, token)

    @app.post("/upload")
    def upload():
        f = request.files.get("file")
        if f is None:
            return error("no file in the upload")
        try:
            return jsonify({"upload": service.add_upload(f.read())})
        except ClassicPRError as exc:
            return error(str(exc))

    @app.post("/query")
    def query():
        body = request.get_json(silent=True) or {}
        try:
            return jsonify({"job": service.submit(body.get("image"), body.get("upload"),
                                                  body.get("box"))})
        except ClassicPRError as exc:
            return error(str(exc))

    @app.get("/job/<job_id>")
    def job(job_id: str):
        state = service.job(job_id)
        return jsonify(state) if state is not None else error("unknown job", 404)

    @app.get("/job/<job_id>/<kind>/<int:rank>")
    def job_file(job_id: str, kind: str, rank: int):
        data = service.job_file(job_id, f"{kind}/{rank}")
        if data is None:
            return error("no such file", 404)
        return Response(data, mimetype="image/jpeg" if kind == "overlay" else "image/png")

    @app.get("/job/<job_id>/masks.zip")
    def masks_zip(job_id: str):
        data = service.masks_zip(job_id)
        if data is None:
            return error("unknown job", 404)
        return Response(data, mimetype="application/zip", headers={
            "Content-Disposition": f"attachment; filename=classicpr-masks-{job_id}.zip"})

    return app


def serve(index_dir: PathLike, host: str = "127.0.0.1", port: int = 8000, **kwargs) -> None:
    """Run the page's server until interrupted (``kwargs`` go to :func:`create_app`)."""
    app = create_app(index_dir, **kwargs)
    print(f"classicpr: serving {index_dir} on http://{host}:{port}/ (Ctrl-C to stop)")
    app.run(host=host, port=port, threaded=True, use_reloader=False)


PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>classicpr</title>
<style>
body{font-family:sans-serif;margin:1.5em;color:#222}
#thumbs{display:flex;flex-wrap:wrap;gap:4px;max-height:150px;overflow:auto}
#thumbs img{height:64px;cursor:pointer;border:2px solid transparent}
#thumbs img.sel{border-color:#1f77b4}
#stage{position:relative;display:inline-block;margin-top:8px}
#canvas{border:1px solid #999;cursor:crosshair;max-width:100%}
#results{display:flex;flex-wrap:wrap;gap:10px}
.res{border:1px solid #ccc;padding:4px;font-size:13px}.res img{display:block;max-width:300px}
#message{color:#b00;font-weight:bold}#status{color:#555}
</style></head><body>
<h1>classicpr: draw a box around an object</h1>
<p>Pick a database image or upload a photo, drag a box around the object, then Search.</p>
<div id="thumbs"></div>
<p><input type="file" id="file" accept="image/*"> <button id="search" disabled>Search</button>
<span id="status"></span></p>
<p id="message"></p>
<div id="stage"><canvas id="canvas" width="10" height="10"></canvas></div>
<p id="download"></p>
<div id="results"></div>
<script>
const cv = document.getElementById('canvas'), ctx = cv.getContext('2d');
let img = new Image(), source = null, scale = 1, box = null, drag = null;
function msg(t){ document.getElementById('message').textContent = t || ''; }
function status(t){ document.getElementById('status').textContent = t || ''; }
function draw(){
  ctx.drawImage(img, 0, 0, cv.width, cv.height);
  if (box){ ctx.strokeStyle = '#00ff00'; ctx.lineWidth = 3;
    ctx.strokeRect(box[0], box[1], box[2] - box[0], box[3] - box[1]); }
}
function load(url, src){
  img = new Image();
  img.onload = () => { scale = Math.min(1, 800 / Math.max(img.width, img.height));
    cv.width = Math.round(img.width * scale); cv.height = Math.round(img.height * scale);
    box = null; source = src; draw(); document.getElementById('search').disabled = true; };
  img.src = url;
}
fetch('/images').then(r => r.json()).then(list => {
  const t = document.getElementById('thumbs');
  list.forEach(it => { const im = document.createElement('img'); im.src = '/thumb/' + it.id;
    im.title = it.name; im.dataset.id = it.id;
    im.onclick = () => { document.querySelectorAll('#thumbs img').forEach(e => e.classList.remove('sel'));
      im.classList.add('sel'); msg(''); load('/image/' + it.id, {image: it.id}); };
    t.appendChild(im); });
});
document.getElementById('file').onchange = ev => {
  const f = ev.target.files[0]; if (!f) return;
  const fd = new FormData(); fd.append('file', f); status('uploading...');
  fetch('/upload', {method: 'POST', body: fd}).then(r => r.json()).then(j => {
    status(''); if (j.error){ msg(j.error); return; } msg('');
    load('/upload/' + j.upload, {upload: j.upload}); }).catch(e => msg(String(e)));
};
function pos(ev){ const r = cv.getBoundingClientRect();
  return [(ev.clientX - r.left) * cv.width / r.width, (ev.clientY - r.top) * cv.height / r.height]; }
cv.onmousedown = ev => { drag = pos(ev); };
cv.onmousemove = ev => { if (!drag) return; const p = pos(ev);
  box = [Math.min(drag[0], p[0]), Math.min(drag[1], p[1]), Math.max(drag[0], p[0]), Math.max(drag[1], p[1])]; draw(); };
cv.onmouseup = ev => { drag = null; document.getElementById('search').disabled = !(box && source); };
document.getElementById('search').onclick = () => {
  if (!box || !source) return;
  const body = Object.assign({box: box.map(v => v / scale)}, source);
  msg(''); document.getElementById('results').innerHTML = ''; document.getElementById('download').innerHTML = '';
  fetch('/query', {method: 'POST', headers: {'Content-Type': 'application/json'}, body: JSON.stringify(body)})
    .then(r => r.json()).then(j => { if (j.error){ msg(j.error); return; } poll(j.job, Date.now()); });
};
function poll(id, t0){
  fetch('/job/' + id).then(r => r.json()).then(j => {
    const s = ((Date.now() - t0) / 1000).toFixed(0);
    if (j.status === 'queued' || j.status === 'running'){
      status(j.status + (j.stage ? ': ' + j.stage : '') + ' (' + s + ' s)'); setTimeout(() => poll(id, t0), 400); return; }
    status(''); if (j.status === 'error'){ msg(j.error); return; }
    if (j.warnings.length) msg(j.warnings.join(' '));
    document.getElementById('download').innerHTML = '<a id="zip" href="/job/' + id + '/masks.zip">download the masks (zip of PNGs)</a>';
    const out = document.getElementById('results');
    j.results.forEach(r => { const d = document.createElement('div'); d.className = 'res';
      d.innerHTML = (r.mask ? '<img class="overlay" src="/job/' + id + '/overlay/' + r.rank + '">' : '')
        + '#' + r.rank + ' ' + r.image + '<br>inliers ' + r.inliers + (r.verified ? (r.relay ? ' (verified through ' + r.relay + ')' : ' (verified)') : (r.neighbour ? ' (same scene as ' + r.neighbour + ', not localised)' : ''))
        + ' score ' + r.score + (r.mask ? ' <a href="/job/' + id + '/mask/' + r.rank + '">mask</a>' : '');
      out.appendChild(d); });
  }).catch(e => msg(String(e)));
}
</script></body></html>
"""
