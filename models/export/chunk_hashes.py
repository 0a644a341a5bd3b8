"""Adds per-chunk sha256s (`chunks: {bytes, sha256[]}`) to every file of a manifest.json.

The store verifies a file with chunk hashes chunk by chunk as it arrives (native SHA-256, in
parallel with the download) and refetches only a bad chunk; see models/CONTRACT.md, "Manifest".
Only manifest.json is rewritten; the files it lists are read, never changed. Each file's whole
sha256 is checked on the way, so a manifest that doesn't match its files is refused.

  python models/export/chunk_hashes.py models/fixtures/tiny/manifest.json [--chunk-bytes 4194304]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

DEFAULT_CHUNK_BYTES = 4 * 1024 * 1024  # the store's DEFAULT_CHUNK_BYTES
GRANULE_BYTES = 64 * 1024
MAX_CHUNK_BYTES = 64 * 1024 * 1024


def file_chunk_hashes(path: Path, chunk_bytes: int) -> tuple[str, list[str]]:
    """The whole file's sha256 and one sha256 per `chunk_bytes` chunk (the last may be shorter)."""
    whole = hashlib.sha256()
    chunks: list[str] = []
    with path.open("rb") as f:
        while True:
            block = f.read(chunk_bytes)
            if not block:
                break
            whole.update(block)
            chunks.append(hashlib.sha256(block).hexdigest())
    return whole.hexdigest(), chunks


def add_chunk_hashes(manifest_path: Path, chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> None:
    if chunk_bytes <= 0 or chunk_bytes % GRANULE_BYTES or chunk_bytes > MAX_CHUNK_BYTES:
        raise ValueError(f"chunk size must be a positive multiple of {GRANULE_BYTES} up to {MAX_CHUNK_BYTES}")
    root = manifest_path.parent
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    for component in manifest["components"].values():
        for entry in component["files"]:
            path = root / entry["path"]
            if path.stat().st_size != entry["bytes"]:
                raise ValueError(f"{entry['path']}: {path.stat().st_size} bytes, the manifest says {entry['bytes']}")
            whole, chunks = file_chunk_hashes(path, chunk_bytes)
            if whole != entry["sha256"]:
                raise ValueError(f"{entry['path']}: sha256 {whole}, the manifest says {entry['sha256']}")
            entry["chunks"] = {"bytes": chunk_bytes, "sha256": chunks}
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("manifest", type=Path)
    parser.add_argument("--chunk-bytes", type=int, default=DEFAULT_CHUNK_BYTES)
    args = parser.parse_args(argv)
    add_chunk_hashes(args.manifest, args.chunk_bytes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
