"""Joins exports of one model set at several precisions into one folder to host (models/CONTRACT.md,
"Precision variants"). Standard library only: it reads and writes manifests and places files.

    python models/export/publish_variants.py --out site/kandinsky-2.2 \
        out/kandinsky-2.2-fp32 out/kandinsky-2.2-fp16 out/kandinsky-2.2-int8 out/kandinsky-2.2-int4c6

Each argument is a folder the export tool wrote (manifest.json beside its files). The first becomes
`manifest.json`, the one users open; each other becomes `manifest.<precision>.json`, listed in the
first's `variants` with its text-to-image download, its worst `--check` cosine and its end-to-end
`quality` (`--quality`) where the export measured them, which the app
reads to pick a precision before downloading anything (workers/precision.ts). Every export's files
(its quality sample pictures too) go to a subfolder named after its precision, and its manifest's
paths (and its `variants` entry's sample) say so; a variant's `modelId`
gains `-<precision>`, so the store keeps each precision's files apart. Files are hard-linked where
the file system allows, else copied; hashes are not recomputed (the export tool wrote them).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path
from typing import List, Optional


def _load(folder: Path) -> dict:
    path = folder / "manifest.json"
    if not path.is_file():
        raise SystemExit(f"{folder}: no manifest.json (give folders the export tool wrote)")
    return json.loads(path.read_text(encoding="utf-8"))


def _precision(manifest: dict, folder: Path) -> str:
    found = {c["precision"] for c in manifest["components"].values() if c.get("kind") == "onnx"}
    if len(found) != 1:
        raise SystemExit(f"{folder}: its graphs are {sorted(found) or 'missing'}, not one precision")
    return found.pop()


def _required_features(manifest: dict) -> List[str]:
    features = set()
    for component in manifest["components"].values():
        features.update(component.get("requiredFeatures", []))
    return sorted(features)


def text_to_image_bytes(manifest: dict) -> int:
    """The bytes of every file of the components a set needs for text to image (not optional)."""
    return sum(f["bytes"] for c in manifest["components"].values() if not c["optional"] for f in c["files"])


def text_to_image_check_cosine(manifest: dict) -> Optional[float]:
    """The worst `check` cosine of the set's text-to-image graphs; None unless every one has one."""
    cosines = []
    for component in manifest["components"].values():
        if component["optional"] or component.get("kind") != "onnx":
            continue
        if "check" not in component:
            return None
        cosines.append(component["check"]["cosine"])
    return min(cosines) if cosines else None


def _place(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        target.unlink()
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def _moved(manifest: dict, folder: Path, out: Path, prefix: str) -> dict:
    """The manifest with every file under `prefix/`, the files placed there: its components' files
    and its `quality.sample` pictures (`--quality`'s first run), whose paths are relative to the
    manifest's folder, which for every published manifest is `out`."""
    moved = json.loads(json.dumps(manifest))
    entries = [entry for component in moved["components"].values() for entry in component["files"]]
    sample = moved.get("quality", {}).get("sample")
    if sample is not None:
        entries += [sample["reference"], sample["picture"]]
    for entry in entries:
        _place(folder / entry["path"], out / prefix / entry["path"])
        entry["path"] = f"{prefix}/{entry['path']}"
    return moved


def publish(folders: List[Path], out: Path) -> dict:
    """Writes the joined set into `out`; returns the opened manifest."""
    loaded = [(folder, _load(folder)) for folder in folders]
    precisions = [_precision(manifest, folder) for folder, manifest in loaded]
    if len(set(precisions)) != len(precisions):
        raise SystemExit(f"two exports of the same precision: {precisions}")
    out.mkdir(parents=True, exist_ok=True)
    (main_folder, main), main_precision = loaded[0], precisions[0]
    opened = _moved(main, main_folder, out, main_precision)
    opened.pop("variants", None)
    variants = []
    for (folder, manifest), precision in zip(loaded[1:], precisions[1:]):
        variant = _moved(manifest, folder, out, precision)
        variant.pop("variants", None)
        if not variant["modelId"].endswith(f"-{precision}"):
            variant["modelId"] = f"{variant['modelId']}-{precision}"[:100]
        name = f"manifest.{precision}.json"
        (out / name).write_text(json.dumps(variant, indent=2) + "\n", encoding="utf-8")
        entry = {
            "precision": precision,
            "manifest": name,
            "requiredFeatures": _required_features(manifest),
            "textToImageBytes": text_to_image_bytes(manifest),
        }
        cosine = text_to_image_check_cosine(manifest)
        if cosine is not None:
            entry["checkCosine"] = cosine
        if "quality" in variant:  # the --quality figure (and its sample, moved): the app chooses by it
            entry["quality"] = variant["quality"]
        variants.append(entry)
    if variants:
        opened["variants"] = variants
    (out / "manifest.json").write_text(json.dumps(opened, indent=2) + "\n", encoding="utf-8")
    return opened


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description="Join precision exports of one set into one hosted folder")
    parser.add_argument("exports", nargs="+", type=Path, help="export folders; the first is the one users open")
    parser.add_argument("--out", type=Path, required=True, help="the folder to host")
    args = parser.parse_args(argv)
    if any(args.out.resolve() == folder.resolve() for folder in args.exports):
        raise SystemExit("--out must be a new folder, not one of the exports")
    opened = publish(args.exports, args.out)
    for variant in [{"precision": "(opened)", "manifest": "manifest.json"}] + opened.get("variants", []):
        cosine = variant.get("checkCosine")
        print(
            f"{variant['manifest']:>26}: {variant['precision']:>8}"
            + (f", text to image {variant['textToImageBytes'] / 1e9:.2f} GB" if "textToImageBytes" in variant else "")
            + (f", --check cosine {cosine:.6f}" if cosine is not None else "")
            + (f", PSNR {variant['quality']['psnr']:.2f} dB" if "quality" in variant else "")
        )


if __name__ == "__main__":
    main()
