"""Export time, peak memory and bytes per precision of the deployer's path on the tiny checkpoints.

    . /tmp/refenv/env.sh && /usr/bin/python3 models/export/measure_export.py [--precisions fp32 fp16 ...]

Builds the tiny Hub-layout checkpoints (tiny_checkpoints.py), serves them from the mock Hub
(mock_hub.py, LFS files redirected to a second port) and runs `kandinsky_export.py --hub ...
--precisions P --out DIR` once per precision, each in its own process, as a deployer would run the
whole set in one. Per precision it prints the wall time (download, export, --check, publishing),
the peak resident memory (wait4's ru_maxrss of the export process, which on Linux is the larger of
its own and that of its waited-for children: the --check runner, node) and the bytes of the ready
folder's files: the whole set and the text-to-image download. The first run also downloads;
later runs find the files in the cache. Figures, not pass/fail.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import hosting  # noqa: E402
import mock_hub  # noqa: E402
import publish_variants  # noqa: E402


def measure(precisions, work: Path) -> list:
    subprocess.run([sys.executable, str(HERE / "tiny_checkpoints.py"), str(work / "repos")], check=True, stdout=subprocess.DEVNULL)
    import tiny_checkpoints

    urls, servers = mock_hub.serve(work / "repos", redirect=True)
    repos = [tiny_checkpoints.REPOS[role] for role in ("prior", "decoder", "inpaint", "controlnet_depth")]
    env = {**os.environ, "HF_HUB_OFFLINE": "0", "TRANSFORMERS_OFFLINE": "0", "HF_ENDPOINT": urls["endpoint"], "HF_HOME": str(work / "hf")}
    rows = []
    try:
        for precision in precisions:
            out = work / f"ready-{precision}"
            command = [
                sys.executable, str(HERE / "kandinsky_export.py"), "--hub", *repos,
                "--hub-depth-estimator", tiny_checkpoints.REPOS["depth_estimator"],
                "--precisions", precision, "--size-range", "64-512", "--shard-mb", "1", "--out", str(out),
            ]  # fmt: skip
            started = time.monotonic()
            child = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            _, status, usage = os.wait4(child.pid, 0)
            seconds = time.monotonic() - started
            if os.waitstatus_to_exitcode(status) != 0:
                raise SystemExit(f"{precision}: the export failed:\n{child.stderr.read().decode()[-3000:]}")
            manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
            total = sum(f["bytes"] for c in manifest["components"].values() for f in c["files"])
            rows.append(
                {
                    "precision": precision,
                    "seconds": round(seconds, 1),
                    "peakRssMiB": round(usage.ru_maxrss / 1024, 1),
                    "bytes": total,
                    "textToImageBytes": publish_variants.text_to_image_bytes(manifest),
                    "cpuSeconds": round(usage.ru_utime + usage.ru_stime, 1),
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    finally:
        for server in servers:
            server.shutdown()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description="Measure the --hub export of the tiny checkpoints per precision")
    parser.add_argument("--precisions", nargs="+", choices=hosting.ALL_PRECISIONS, default=hosting.ALL_PRECISIONS)
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kandinsky-measure-export-") as work:
        rows = measure(args.precisions, Path(work))
    print("\n| precision | wall time | CPU time | peak RSS (export) | whole set | text → image |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for row in rows:
        print(
            f"| {row['precision']} | {row['seconds']} s | {row['cpuSeconds']} s | {row['peakRssMiB']} MiB | "
            f"{row['bytes'] / 1e6:.2f} MB | {row['textToImageBytes'] / 1e6:.2f} MB |"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
