"""One command from checkpoints to a folder ready to host (`kandinsky_export.py --hub ... --out DIR`,
or `--prior DIR --decoder DIR --precisions ... --out DIR`).

Exports the set once per precision, with `--check`, into DIR/.staging/, joins the exports with
publish_variants (manifest.json opens the first precision and lists the others as variants with
their check figures), gathers every export's check report into DIR/check_report.json, writes
DIR/HOSTING.md (what a host must send and how to upload) and removes the staging folder.

Exports made before, one precision per folder, become a ready folder the same way (standard
library only):

    python3 models/export/hosting.py --out site/kandinsky-2.2 out/kandinsky-2.2-fp32 out/kandinsky-2.2-fp16 ...
"""

from __future__ import annotations

import argparse
import copy
import json
import shutil
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

import publish_variants

# Every precision the export tool writes; the first is the one manifest.json opens (every adapter
# runs fp32), the app picks among the rest by their check figures (workers/precision.ts).
ALL_PRECISIONS = ["fp32", "fp16", "int8", "int4", "int4c6"]
STAGING = ".staging"


def check_out_folder(out: Path) -> None:
    """The ready folder is written whole: refuse one that already holds something."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise SystemExit(f"--out {out}: not an empty folder; give a new folder (the ready-to-host set is written whole)")


def export_ready_folder(args: argparse.Namespace, export_set: Callable[[argparse.Namespace], None]) -> dict:
    """Runs export_set once per precision and publishes the ready folder; returns a summary
    {precision: {"seconds", "bytes", "files"}}."""
    out: Path = args.out
    precisions: List[str] = args.precisions
    check_out_folder(out)
    staging = out / STAGING
    exports, summary = [], {}
    for precision in precisions:
        run = copy.copy(args)
        run.precision, run.out, run.check, run.clean = precision, staging / precision, True, True
        print(f"--- {precision} ---", flush=True)
        started = time.time()
        export_set(run)
        summary[precision] = {"seconds": time.time() - started}
        exports.append(run.out)
    for precision, row in publish_ready(exports, out).items():
        summary[precision].update(row)
    shutil.rmtree(staging)
    for precision, row in summary.items():
        print(f"{precision:>7}: {row['bytes'] / 1e6:10.2f} MB in {row['files']} files, exported in {row['seconds']:.1f} s")
    print(f"ready to host: {out} (manifest.json, {len(precisions) - 1} variant manifest(s), HOSTING.md)")
    return summary


def publish_ready(exports: List[Path], out: Path) -> Dict[str, dict]:
    """Joins exports (one precision each, the first opened) into `out` with their check reports and
    HOSTING.md; returns {precision: {"bytes", "files"}}."""
    opened = publish_variants.publish(exports, out)
    reports, summary = {}, {}
    for folder in exports:
        manifest = _manifest(folder)
        precision = publish_variants._precision(manifest, folder)
        report_path = folder / "check_report.json"
        reports[precision] = json.loads(report_path.read_text(encoding="utf-8")) if report_path.exists() else {}
        files = [f for c in manifest["components"].values() for f in c["files"]]
        summary[precision] = {"bytes": sum(f["bytes"] for f in files), "files": len(files)}
    (out / "check_report.json").write_text(json.dumps(reports, indent=2) + "\n", encoding="utf-8")
    (out / "HOSTING.md").write_text(hosting_notes(opened, out), encoding="utf-8")
    return summary


def _manifest(folder: Path) -> dict:
    return json.loads((folder / "manifest.json").read_text(encoding="utf-8"))


def _precision_rows(opened: dict, out: Path) -> List[str]:
    manifests: Dict[str, dict] = {"manifest.json": opened}
    for variant in opened.get("variants", []):
        manifests[variant["manifest"]] = _manifest_named(out, variant["manifest"])
    rows = []
    for name, manifest in manifests.items():
        precision = publish_variants._precision(manifest, out)
        total = sum(f["bytes"] for c in manifest["components"].values() for f in c["files"])
        t2i = publish_variants.text_to_image_bytes(manifest)
        cosine = publish_variants.text_to_image_check_cosine(manifest)
        figure = f"{cosine:.6f}" if cosine is not None else "–"
        rows.append(f"| `{name}` | {precision} | {t2i / 1e6:,.1f} MB | {total / 1e6:,.1f} MB | {figure} |")
    return rows


def _manifest_named(out: Path, name: str) -> dict:
    return json.loads((out / name).read_text(encoding="utf-8"))


def hosting_notes(opened: dict, out: Path) -> str:
    """HOSTING.md: what is in the folder, the headers a host must send, and how to upload it."""
    rows = "\n".join(_precision_rows(opened, out))
    return f"""# Hosting this model set

This folder is a Kandinsky Web model set, ready to upload as it is: `{opened["name"]}`
(`{opened["modelId"]}`), exported by `models/export/kandinsky_export.py`. Keep its layout: the
manifests name every file by its path relative to them, with its size and sha256, and the app
verifies every byte it stores.

| manifest | precision | text → image download | all components | `--check` cosine (text → image, worst) |
| --- | --- | --- | --- | --- |
{rows}

`manifest.json` is what people open; the app reads its `variants` and downloads only the precision
it chooses for the GPU. `check_report.json` holds every graph's export check (max abs error and
cosine against PyTorch, per output); `HOSTING.md` is this page. Neither is read by the app.

## What the host must send

The app runs on its own origin and fetches these files from yours, so your host must allow that
(CORS); it resumes interrupted downloads with `Range` requests.

- `Access-Control-Allow-Origin`: the app's origin (or `*` for a public set), on every file,
  including error and `206` responses.
- `Access-Control-Expose-Headers: Content-Length, Content-Range, Accept-Ranges, ETag`: without
  them the browser hides the sizes and ranges from the app.
- `Access-Control-Allow-Headers: Range` and `Access-Control-Allow-Methods: GET, HEAD` in answer
  to preflight `OPTIONS` requests.
- Range support: `Accept-Ranges: bytes`, and `206 Partial Content` with `Content-Range` for
  `Range: bytes=N-`. A host without it still works, but an interrupted file starts again.
- No compression of the binary files (`.onnx`, `.onnx.data-*`, `.bin`): a `Content-Encoding` on
  the fly changes the byte counts that ranges and sizes refer to. Serve them as
  `application/octet-stream`, the manifests as `application/json`.
- A redirect (as the Hugging Face Hub sends, to its content host) is fine if the origin it leads to
  sends the same headers. The app's page must allow both origins to be fetched (its CSP).
- Caching: `manifest*.json` with `Cache-Control: no-cache` (revalidated), the other files may be
  cached long. When you publish a new export, put it under a new path rather than overwriting files
  in place: a file that changes under a cached name fails verification until the cache expires.

Check a host with curl (expect `206`, `Content-Range` and `Access-Control-Allow-Origin`):

```sh
curl -sI -H 'Origin: https://your.app.example' -H 'Range: bytes=0-0' https://your.host/kandinsky-2.2/manifest.json
```

## Upload it

**A Hugging Face Hub model repo** (sends CORS and Range itself; LFS files redirect to its content
host):

```sh
huggingface-cli upload YOUR-NAME/kandinsky-2.2-web . . --repo-type model      # run inside this folder
# or, in Python: huggingface_hub.HfApi().upload_folder(folder_path=".", repo_id="YOUR-NAME/kandinsky-2.2-web")
```

The app then opens `YOUR-NAME/kandinsky-2.2-web` (or `…@revision`), or the URL
`https://huggingface.co/YOUR-NAME/kandinsky-2.2-web/resolve/main/manifest.json`.

**A static web server** — copy the folder under the site (any sub-path), e.g. nginx:

```nginx
location /kandinsky-2.2/ {{
    add_header Access-Control-Allow-Origin "*" always;
    add_header Access-Control-Expose-Headers "Content-Length, Content-Range, Accept-Ranges, ETag" always;
    add_header Access-Control-Allow-Headers "Range" always;
    if ($request_method = OPTIONS) {{ return 204; }}
    gzip off;
    types {{ application/json json; application/octet-stream onnx bin; }}
    default_type application/octet-stream;
}}
```

nginx answers `Range` for static files by itself. The app is then pointed at
`https://your.host/kandinsky-2.2/manifest.json`.

**Object storage** (S3, R2, GCS) — upload the folder and set the bucket's CORS rules.

```sh
aws s3 sync . s3://YOUR-BUCKET/kandinsky-2.2/ --exclude "*" --include "*.json" --content-type application/json
aws s3 sync . s3://YOUR-BUCKET/kandinsky-2.2/ --exclude "*.json" --content-type application/octet-stream
aws s3api put-bucket-cors --bucket YOUR-BUCKET --cors-configuration file://cors.json
# Cloudflare R2: the same commands with --endpoint-url https://ACCOUNT_ID.r2.cloudflarestorage.com
```

`cors.json` for S3 and R2:

```json
{{
  "CORSRules": [
    {{
      "AllowedOrigins": ["https://your.app.example"],
      "AllowedMethods": ["GET", "HEAD"],
      "AllowedHeaders": ["Range"],
      "ExposeHeaders": ["Content-Length", "Content-Range", "Accept-Ranges", "ETag"],
      "MaxAgeSeconds": 3600
    }}
  ]
}}
```

Google Cloud Storage: `gcloud storage rsync --recursive . gs://YOUR-BUCKET/kandinsky-2.2` and
`gcloud storage buckets update gs://YOUR-BUCKET --cors-file=gcs-cors.json`, with

```json
[
  {{
    "origin": ["https://your.app.example"],
    "method": ["GET", "HEAD"],
    "responseHeader": ["Content-Length", "Content-Range", "Accept-Ranges", "ETag", "Range"],
    "maxAgeSeconds": 3600
  }}
]
```
"""


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description="Join exports of one set (one precision each) into a folder ready to host")
    parser.add_argument("exports", nargs="+", type=Path, help="export folders; the first is the one manifest.json opens")
    parser.add_argument("--out", type=Path, required=True, help="a new folder: the set to host")
    args = parser.parse_args(argv)
    check_out_folder(args.out)
    for precision, row in publish_ready(args.exports, args.out).items():
        print(f"{precision:>7}: {row['bytes'] / 1e6:10.2f} MB in {row['files']} files")
    print(f"ready to host: {args.out} (manifest.json, {len(args.exports) - 1} variant manifest(s), HOSTING.md)")


if __name__ == "__main__":
    main()
