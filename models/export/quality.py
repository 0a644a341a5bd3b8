"""`--quality`: the end-to-end figure of an exported (quantised) set.

Calibration prompts × seeds run through the whole text-to-image pipeline twice: the set's graphs
through the shipped engine (the CLI, `dist-cli/generate.mjs`, onnxruntime-node on the CPU) and the
fp32 torch modules of the same checkpoints through diffusers (KandinskyV22PriorPipeline, then
KandinskyV22Pipeline drawing from the same generator: what KandinskyV22CombinedPipeline does, and
the CLI's default seed mode). Both final pictures are 8-bit (diffusers' float output rounded as the
engine rounds it, `round(x · 255)`), and the figure compares them:

- `psnr`: 10 · log10(255² / MSE), the MSE over every pixel and RGB channel of every picture;
  capped at 100 dB (identical pictures have no finite PSNR and the manifest holds finite numbers);
- `ssim`: SSIM of Wang et al. 2004 (Gaussian window 11×11, σ 1.5, K1 0.01, K2 0.03, L 255, the
  window's valid positions only), computed per RGB channel and averaged over channels and pictures;
- `embeddingCosine`: the worst cosine, over the runs, between the prior's image embedding from the
  set's graphs and from torch.

    python models/export/quality.py SET_DIR --tiny [--write]
    python models/export/quality.py SET_DIR --prior DIR --decoder DIR [--write]

`--write` records the figure as the manifest's `quality` (models/CONTRACT.md) and changes no other
byte of it. It also saves the first calibration run (the first prompt at the first seed) as two
PNGs beside the manifest, `quality/reference.png` (fp32 diffusers) and `quality/picture.png` (the
set's, the CLI's pixels), and records them as `quality.sample` with their sizes and sha256, so the
model manager can show the difference the figure measures. The export tool runs the same with
`--quality`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
CLI = REPO / "dist-cli" / "generate.mjs"

# The calibration list: short, varied subjects (an animal, a landscape, a portrait, an object).
PROMPTS = [
    "a red cat, 4k photo",
    "a lighthouse on a cliff at sunset, oil painting",
    "portrait of an old fisherman, detailed",
]
SEEDS = [0, 42]
PSNR_CAP = 100.0
# The sample's bounds in the manifest (models/manifest.ts: MAX_SAMPLE_PROMPT_CHARS, MAX_SAMPLE_PICTURE_BYTES).
SAMPLE_PROMPT_CHARS = 500
SAMPLE_PICTURE_BYTES = 4 * 1024 * 1024
SAMPLE_FOLDER = "quality"


# ---------------------------------------------------------------------------------------------
# The figures
# ---------------------------------------------------------------------------------------------


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two 8-bit pictures (any shape, same shape), capped at PSNR_CAP."""
    if a.shape != b.shape:
        raise ValueError(f"psnr: shapes {a.shape} and {b.shape} differ")
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    if mse == 0.0:
        return PSNR_CAP
    return min(PSNR_CAP, 10.0 * math.log10(255.0**2 / mse))


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2
    g = np.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def _filter_valid(image: np.ndarray, window: np.ndarray) -> np.ndarray:
    """Separable 2-D correlation with a 1-D window, valid positions only (image H×W)."""
    n = window.size
    rows = sum(window[k] * image[:, k : image.shape[1] - n + 1 + k] for k in range(n))
    return sum(window[k] * rows[k : rows.shape[0] - n + 1 + k, :] for k in range(n))


def ssim_channel(a: np.ndarray, b: np.ndarray, data_range: float = 255.0) -> float:
    """Mean SSIM (Wang et al. 2004) of two single-channel pictures H×W."""
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"ssim: need two H×W pictures of one shape, got {a.shape} and {b.shape}")
    window = _gaussian_window()
    if min(a.shape) < window.size:
        raise ValueError(f"ssim: pictures must be at least {window.size} pixels a side, got {a.shape}")
    x, y = a.astype(np.float64), b.astype(np.float64)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_x, mu_y = _filter_valid(x, window), _filter_valid(y, window)
    sxx = _filter_valid(x * x, window) - mu_x**2
    syy = _filter_valid(y * y, window) - mu_y**2
    sxy = _filter_valid(x * y, window) - mu_x * mu_y
    num = (2 * mu_x * mu_y + c1) * (2 * sxy + c2)
    den = (mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2)
    return float(np.mean(num / den))


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM of two 8-bit RGB pictures H×W×3: the mean of the three channels' SSIM."""
    if a.shape != b.shape or a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"ssim: need two H×W×3 pictures of one shape, got {a.shape} and {b.shape}")
    return float(np.mean([ssim_channel(a[:, :, c], b[:, :, c]) for c in range(3)]))


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine of two embeddings. A zero one has no direction: that is an error, not a cosine of 0
    (random weights whose prior post-processing scales by zero gave every embedding zero, and
    the figure silently no longer saw the prior)."""
    x, y = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    nx, ny = np.linalg.norm(x), np.linalg.norm(y)
    if not (nx > 0 and ny > 0):
        which = "the set's" if not nx > 0 else "the reference's"
        raise ValueError(f"{which} image embedding is zero (or not finite): the prior's output does not reach the picture")
    return float(x @ y / (nx * ny))


def to_uint8(image: np.ndarray) -> np.ndarray:
    """diffusers' float picture in [0, 1] as the engine's bytes: round(clamp(x) · 255)."""
    return np.round(np.clip(image.astype(np.float32), 0, 1) * 255).astype(np.uint8)


# ---------------------------------------------------------------------------------------------
# The two pipelines
# ---------------------------------------------------------------------------------------------


def run_engine(set_dir: Path, prompt: str, seed: int, steps: int, prior_steps: int, size: int, work: Path, threads: int = 1):
    """The set's graphs through the shipped CLI: (8-bit picture H×W×3, image embedding)."""
    from PIL import Image

    if not CLI.is_file():
        raise SystemExit(f"{CLI} is missing: build the CLI first (npm run generate -- --help builds it)")
    out, embeds = work / "engine.png", work / "engine.json"
    command = [
        "node", str(CLI), "--model", str(set_dir), "--prompt", prompt, "--seed", str(seed),
        "--size", f"{size}x{size}", "--steps", str(steps), "--prior-steps", str(prior_steps),
        "--guidance", "4", "--prior-guidance", "4", "--threads", str(threads), "--out", str(out), "--embeds-out", str(embeds),
    ]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"the CLI failed on {set_dir}:\n{done.stderr[-4000:]}")
    picture = np.asarray(Image.open(out).convert("RGB"))
    traced = json.loads(embeds.read_text(encoding="utf-8"))
    return picture, np.asarray(traced["data"], dtype=np.float32).reshape(traced["dims"])


class TorchPipelines:
    """The fp32 diffusers pipelines of the checkpoints the set was exported from, built on the first
    reference asked for (a run whose references are all cached loads no torch module) and kept until
    `release()`. Each reference (picture, embedding) is kept per run (prompt, seed, steps, prior
    steps, size): the torch side is deterministic, so a search's probes and a table's variants
    compute it once. With `cache_dir` the references are also kept on disk, under `label` (which
    weights), for the next process: one full-size fp32 reference costs minutes."""

    def __init__(self, build: Callable[[], tuple], label: str, cache_dir: Optional[Path] = None):
        self._build, self.label, self.cache_dir = build, label, cache_dir
        self._pipes: Optional[tuple] = None
        self._references: Dict[tuple, tuple] = {}
        self.computed = 0  # references computed by torch in this process (not read from a cache)

    @classmethod
    def tiny(
        cls, tokenizer_dir: Path, size: str = "tiny", realistic: bool = False, cache_dir: Optional[Path] = None
    ) -> "TorchPipelines":
        """The seeded random modules of the tiny (or full-size) architecture, as exported (with
        realistic_weights.py's statistics where the set was exported with them)."""

        def build():
            from diffusers import KandinskyV22Pipeline, KandinskyV22PriorPipeline

            from architectures import build_component
            from recording import TinyModules
            from tiny_tokenizer import load_reference_tokenizer

            from realistic_weights import realistic as make_realistic

            def module(name: str):
                built = build_component(name, size)
                return make_realistic(built, f"{name}.") if realistic else built

            names = ("text_encoder", "image_encoder", "prior", "unet", "movq")
            modules = TinyModules(**{name: module(name) for name in names})
            tokenizer = load_reference_tokenizer(tokenizer_dir)
            return (
                KandinskyV22PriorPipeline(**modules.prior_components(tokenizer)),
                KandinskyV22Pipeline(**modules.decoder_components()),
            )

        return cls(build, f"random-{size}{'-realistic' if realistic else ''}", cache_dir)

    @classmethod
    def pretrained(cls, prior_dir: Path, decoder_dir: Path, cache_dir: Optional[Path] = None) -> "TorchPipelines":
        def build():
            try:
                import refenv_compat  # noqa: F401  (this project's machines: patches AddedToken, see TESTING.md)
            except ImportError:
                pass
            import torch
            from diffusers import KandinskyV22Pipeline, KandinskyV22PriorPipeline

            return (
                KandinskyV22PriorPipeline.from_pretrained(prior_dir, torch_dtype=torch.float32),
                KandinskyV22Pipeline.from_pretrained(decoder_dir, torch_dtype=torch.float32),
            )

        label = "pretrained-" + hashlib.sha256(f"{Path(prior_dir).resolve()}|{Path(decoder_dir).resolve()}".encode()).hexdigest()[:16]
        return cls(build, label, cache_dir)

    def release(self) -> None:
        """Drops the torch modules (the references stay): the memory goes back before the next set loads."""
        self._pipes = None
        import gc

        gc.collect()

    def _cache_path(self, run: tuple) -> Optional[Path]:
        if self.cache_dir is None:
            return None
        digest = hashlib.sha256(json.dumps([self.label, *run]).encode("utf-8")).hexdigest()[:24]
        return self.cache_dir / f"{self.label}-{digest}.npz"

    def run(self, prompt: str, seed: int, steps: int, prior_steps: int, size: int):
        """(8-bit picture H×W×3, image embedding): prior then decoder on one generator."""
        key = (prompt, seed, steps, prior_steps, size)
        if key in self._references:
            return self._references[key]
        path = self._cache_path(key)
        if path is not None and path.is_file():
            with np.load(path) as stored:
                reference = (stored["picture"], stored["embeds"])
        else:
            reference = self._compute(*key)
            self.computed += 1
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                partial = path.with_suffix(".partial.npz")
                np.savez(partial, picture=reference[0], embeds=reference[1])
                partial.replace(path)
        self._references[key] = reference
        return reference

    def _compute(self, prompt: str, seed: int, steps: int, prior_steps: int, size: int):
        import torch

        if self._pipes is None:
            self._pipes = self._build()
        prior_pipe, decoder_pipe = self._pipes
        for pipe in self._pipes:
            pipe.set_progress_bar_config(disable=True)
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            prior = prior_pipe(
                prompt=prompt, num_inference_steps=prior_steps, guidance_scale=4.0, generator=generator,
                output_type="pt", return_dict=False,
            )
            image = decoder_pipe(
                image_embeds=prior[0], negative_image_embeds=prior[1], width=size, height=size,
                num_inference_steps=steps, guidance_scale=4.0, generator=generator, output_type="np",
            ).images
        return to_uint8(image[0]), prior[0].float().numpy()


def measure(
    set_dir: Path,
    torch_pipes: TorchPipelines,
    prompts: Sequence[str] = PROMPTS,
    seeds: Sequence[int] = SEEDS,
    steps: int = 10,
    prior_steps: int = 10,
    size: int = 64,
    log: Callable[[str], None] = print,
    threads: int = 1,
) -> dict:
    """The figure of the set in `set_dir` (its manifest's `quality`), the time each side took, and
    under `first` the first run's prompt, seed and two 8-bit pictures (for `write_sample`; not JSON).
    Every engine run comes first, then the torch references: the CLI's sessions and the torch
    modules are never in memory together (at full size each holds 12 to 20 GB)."""
    runs = [(prompt, seed) for prompt in prompts for seed in seeds]
    engine_side = []
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="kandinsky-quality-") as tmp:
        for prompt, seed in runs:
            engine_side.append(run_engine(set_dir, prompt, seed, steps, prior_steps, size, Path(tmp), threads))
    engine_s = time.time() - started
    started = time.time()
    torch_side = [torch_pipes.run(prompt, seed, steps, prior_steps, size) for prompt, seed in runs]
    torch_s = time.time() - started
    pairs, cosines = [], []
    for (prompt, seed), (got, got_embeds), (want, want_embeds) in zip(runs, engine_side, torch_side):
        if got.shape != want.shape:
            raise ValueError(f"picture sizes differ: engine {got.shape}, torch {want.shape}")
        pairs.append((got, want))
        cosines.append(cosine(got_embeds, want_embeds))
        log(
            f"  {prompt[:40]!r:>44} seed {seed}: PSNR {psnr(got, want):6.2f} dB, SSIM {ssim(got, want):.4f}, "
            f"embedding cosine {cosines[-1]:.6f}"
        )
    engine = np.stack([g for g, _ in pairs])
    reference = np.stack([w for _, w in pairs])
    figure = {
        "psnr": round(psnr(engine, reference), 3),
        "ssim": round(max(-1.0, min(1.0, float(np.mean([ssim(g, w) for g, w in pairs])))), 5),
        "embeddingCosine": max(-1.0, min(1.0, round(min(cosines), 7))),
        "prompts": len(prompts),
        "seeds": len(seeds),
        "steps": steps,
        "priorSteps": prior_steps,
        "size": size,
    }
    got, want = pairs[0]
    first = {"prompt": prompts[0], "seed": seeds[0], "reference": want, "picture": got}
    return {"quality": figure, "engineSeconds": engine_s, "torchSeconds": torch_s, "runs": len(pairs), "first": first}


# ---------------------------------------------------------------------------------------------
# The manifest
# ---------------------------------------------------------------------------------------------


def _dumps(manifest: dict) -> str:
    return json.dumps(manifest, indent=2) + "\n"


def write_quality(manifest_path: Path, quality: dict) -> None:
    """Sets the manifest's `quality` and changes no other byte (the export tool's own format)."""
    text = manifest_path.read_text(encoding="utf-8")
    manifest = json.loads(text)
    if _dumps(manifest) != text:
        raise SystemExit(f"{manifest_path}: not in the export tool's format; write its quality by hand")
    manifest["quality"] = quality  # a new key goes last; an old one is replaced where it stands
    manifest_path.write_text(_dumps(manifest), encoding="utf-8")


def write_sample(set_dir: Path, first: dict, log: Callable[[str], None] = print) -> Optional[dict]:
    """Saves the first run's two pictures as PNGs in `set_dir/quality/` and returns the manifest's
    `quality.sample` for them (paths relative to the set's folder, sizes, sha256); None, saving
    nothing, when the run can't be a sample (a prompt over the manifest's bound, too large a PNG)."""
    from PIL import Image

    if not 0 < len(first["prompt"]) <= SAMPLE_PROMPT_CHARS:
        log(f"  no sample pictures: the first prompt is not 1-{SAMPLE_PROMPT_CHARS} characters")
        return None
    folder = set_dir / SAMPLE_FOLDER
    folder.mkdir(exist_ok=True)
    sample = {"prompt": first["prompt"], "seed": int(first["seed"])}
    for key in ("reference", "picture"):
        path = folder / f"{key}.png"
        Image.fromarray(np.ascontiguousarray(first[key]), "RGB").save(path, format="PNG", optimize=True)
        data = path.read_bytes()
        if len(data) > SAMPLE_PICTURE_BYTES:
            log(f"  no sample pictures: {path} is {len(data)} bytes, over {SAMPLE_PICTURE_BYTES}")
            for written in folder.glob("*.png"):
                written.unlink()
            return None
        sample[key] = {
            "path": f"{SAMPLE_FOLDER}/{key}.png",
            "bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
        }
    return sample


def record(set_dir: Path, result: dict, log: Callable[[str], None] = print) -> dict:
    """Writes `result`'s figure, with the first run's sample pictures, into the set's manifest.json;
    returns the `quality` written."""
    quality = dict(result["quality"])
    sample = write_sample(set_dir, result["first"], log)
    if sample is not None:
        quality["sample"] = sample
    write_quality(set_dir / "manifest.json", quality)
    return quality


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quality-prompts", nargs="+", help=f"calibration prompts (default: {len(PROMPTS)} built in)")
    parser.add_argument("--quality-seeds", nargs="+", type=int, help=f"seeds per prompt (default {SEEDS})")
    parser.add_argument("--quality-steps", type=int, default=None, help="decoder steps (default 10; 25 full size)")
    parser.add_argument("--quality-prior-steps", type=int, default=None, help="prior steps (default 10; 25 full size)")
    parser.add_argument("--quality-size", type=int, default=None, help="picture side in pixels (default 64; 512 full size)")
    parser.add_argument(
        "--quality-threads", type=int, default=1, help="threads of the CLI and of torch (default 1: steady timings)"
    )
    parser.add_argument(
        "--quality-reference-cache", type=Path,
        help="keep the fp32 torch references (pictures, embeddings) in this folder and reuse them: a full-size "
        "reference costs minutes; the files are named by the weights and the run (delete them when the "
        "checkpoints change in place)",
    )


def settings_from(args, full: bool) -> dict:
    return {
        "prompts": args.quality_prompts or PROMPTS,
        "seeds": args.quality_seeds or SEEDS,
        "steps": args.quality_steps or (25 if full else 10),
        "prior_steps": args.quality_prior_steps or (25 if full else 10),
        "size": args.quality_size or (512 if full else 64),
        "threads": args.quality_threads,
    }


def add_weights_arguments(parser: argparse.ArgumentParser) -> None:
    """The torch side's weights: the random ones a set was exported from, or diffusers folders."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--tiny", action="store_true", help="the tiny random weights (--tiny-random, --random-weights tiny)")
    source.add_argument("--full-size", action="store_true", help="the full-size random weights (--random-weights full-size)")
    source.add_argument("--prior", type=Path, help="diffusers folder of kandinsky-2-2-prior (with --decoder)")
    parser.add_argument("--decoder", type=Path, help="diffusers folder of kandinsky-2-2-decoder")
    parser.add_argument(
        "--realistic", action="store_true", help="with --tiny / --full-size: the -realistic random weights (realistic_weights.py)"
    )


def torch_pipelines_from(args: argparse.Namespace, parser: argparse.ArgumentParser) -> "TorchPipelines":
    """The fp32 torch pipelines add_weights_arguments' flags name."""
    if args.prior is not None and args.decoder is None:
        parser.error("--prior needs --decoder")
    if not 1 <= args.quality_threads <= 256:
        parser.error(f"--quality-threads must be 1 to 256, got {args.quality_threads}")
    size = "full" if args.full_size else "tiny"
    return _pipelines(args, args.prior is not None, args.set / "tokenizer", size, args.realistic)


def _pipelines(args: argparse.Namespace, pretrained: bool, tokenizer_dir: Path, size: str, realistic: bool) -> "TorchPipelines":
    """The torch side at `--quality-threads`, caching in `--quality-reference-cache`: the
    checkpoints args.prior/args.decoder, or the random weights of `size`."""
    import torch

    torch.set_num_threads(args.quality_threads)
    cache = args.quality_reference_cache
    if pretrained:
        return TorchPipelines.pretrained(args.prior, args.decoder, cache)
    return TorchPipelines.tiny(tokenizer_dir, size, realistic, cache)


def reference_command(args: argparse.Namespace, cache: Path) -> List[str]:
    """This script's command line that computes the torch references add_weights_arguments' and
    add_arguments' flags in `args` name into `cache` and exits (`--references-only`): run as its own
    process, the torch modules' memory goes back to the system when it ends."""
    command = [sys.executable, str(HERE / "quality.py"), str(args.set)]
    if args.prior is not None:
        command += ["--prior", str(args.prior), "--decoder", str(args.decoder)]
    else:
        command += ["--full-size" if args.full_size else "--tiny"] + (["--realistic"] if args.realistic else [])
    for flag, value in (("--quality-prompts", args.quality_prompts), ("--quality-seeds", args.quality_seeds)):
        if value:
            command += [flag, *map(str, value)]
    for flag, value in (
        ("--quality-steps", args.quality_steps),
        ("--quality-prior-steps", args.quality_prior_steps),
        ("--quality-size", args.quality_size),
        ("--quality-threads", args.quality_threads),
    ):
        if value is not None:
            command += [flag, str(value)]
    return command + ["--quality-reference-cache", str(cache), "--references-only"]


def export_pipelines(args: argparse.Namespace, set_dir: Path) -> "TorchPipelines":
    """The export tool's torch side: the checkpoints it read, or the random weights it exported."""
    size = "full" if args.size == "full" else "tiny"
    return _pipelines(args, args.size == "pretrained", set_dir / "tokenizer", size, getattr(args, "realistic", False))


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description="End-to-end quality of an exported set against fp32 torch")
    parser.add_argument("set", type=Path, help="the exported set's folder (manifest.json beside its files)")
    add_weights_arguments(parser)
    parser.add_argument("--write", action="store_true", help="record the figure in the set's manifest.json")
    parser.add_argument("--json", type=Path, help="also write the figure and timings to this file")
    parser.add_argument(
        "--references-only", action="store_true",
        help="compute the torch references into --quality-reference-cache and stop (no set is run)",
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    pipes = torch_pipelines_from(args, parser)
    settings = settings_from(args, full=args.full_size or args.prior is not None)
    if args.references_only:
        if args.quality_reference_cache is None:
            parser.error("--references-only needs --quality-reference-cache")
        for prompt in settings["prompts"]:
            for seed in settings["seeds"]:
                pipes.run(prompt, seed, settings["steps"], settings["prior_steps"], settings["size"])
        print(f"{pipes.computed} references computed into {args.quality_reference_cache}")
        return
    started = time.time()
    result = measure(args.set, pipes, **settings)
    result["seconds"] = round(time.time() - started, 1)
    figure = result["quality"]
    print(
        f"{args.set}: PSNR {figure['psnr']:.2f} dB, SSIM {figure['ssim']:.4f}, embedding cosine "
        f"{figure['embeddingCosine']:.6f} ({result['runs']} runs, {result['seconds']} s: engine "
        f"{result['engineSeconds']:.1f} s, torch {result['torchSeconds']:.1f} s, {pipes.computed} references computed)"
    )
    if args.write:
        result["quality"] = record(args.set, result)
    if args.json:
        printable = {key: value for key, value in result.items() if key != "first"}
        args.json.write_text(json.dumps(printable, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
