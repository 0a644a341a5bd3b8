"""`kandinsky_export.py --hub`: the published checkpoints, downloaded from the Hugging Face Hub.

Each repo is `owner/name` or `owner/name@revision` (a branch, tag or commit id). The tool asks the
Hub for the revision's file list, picks per model folder the weights it will read (safetensors
only: a single file or a sharded one with its index, the fp32 files or the `fp16` variant), and
downloads those files and the configs, tokenizer and scheduler beside them with `huggingface_hub`'s
snapshot_download into its usual cache (HF_HOME / HF_HUB_CACHE; HF_ENDPOINT and HF_TOKEN are
honoured). Every downloaded file is then checked against the size and, for LFS files, the sha256
the Hub lists. The export then reads the cached snapshot folders as it reads local checkpoints.

`--variant fp16` fetches the `fp16` files where a folder has them (half the download; the export
upcasts them to fp32); a folder without them falls back to its fp32 files, and a folder published
only as the fp16 variant is read as such without the flag. Each fallback is printed.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Tuple

# The repos kandinsky-community publishes, in the order --hub takes them.
DEFAULT_REPOS = {
    "prior": "kandinsky-community/kandinsky-2-2-prior",
    "decoder": "kandinsky-community/kandinsky-2-2-decoder",
    "inpaint": "kandinsky-community/kandinsky-2-2-decoder-inpaint",
    "controlnet_depth": "kandinsky-community/kandinsky-2-2-controlnet-depth",
}
ROLES = list(DEFAULT_REPOS)
DEFAULT_DEPTH_ESTIMATOR = "LiheYoung/depth-anything-small-hf"

# Which repo and model folder each exported component is read from ("" is the repo's root).
COMPONENT_FOLDERS = {
    "text_encoder": ("prior", "text_encoder"),
    "prior": ("prior", "prior"),
    "image_encoder": ("prior", "image_encoder"),
    "unet": ("decoder", "unet"),
    "movq_decoder": ("decoder", "movq"),
    "movq_encoder": ("decoder", "movq"),
    "unet_inpaint": ("inpaint", "unet"),
    "unet_depth": ("controlnet_depth", "unet"),
    "depth_estimator": ("depth_estimator", ""),
}
# Small files fetched from every pipeline repo: the tokenizer (the export copies it), the scheduler
# config and the pipeline's index.
PIPELINE_FILES = ["model_index.json", "scheduler/*.json"]
PRIOR_FILES = ["tokenizer/*"]
DEPTH_ESTIMATOR_FILES = ["config.json", "preprocessor_config.json"]

# Weight files as transformers and diffusers name them: model(.variant)(-0000k-of-0000n).safetensors,
# older variant shards model-0000k-of-0000n.variant.safetensors, and the shard index
# model.safetensors.index(.variant).json (diffusion_pytorch_model likewise).
_WEIGHT_NAMES = [
    re.compile(r"(?:model|diffusion_pytorch_model)(?:\.(?P<variant>[A-Za-z0-9_]+))?(?:-\d{5}-of-\d{5})?\.safetensors"),
    re.compile(r"(?:model|diffusion_pytorch_model)-\d{5}-of-\d{5}\.(?P<variant>[A-Za-z0-9_]+)\.safetensors"),
    re.compile(r"(?:model|diffusion_pytorch_model)\.safetensors\.index(?:\.(?P<variant>[A-Za-z0-9_]+))?\.json"),
]
_NOT_WEIGHTS = object()


def _weights_variant_of(name: str):
    """The variant (None: plain) of a weights or shard-index file name; _NOT_WEIGHTS otherwise."""
    for pattern in _WEIGHT_NAMES:
        match = pattern.fullmatch(name)
        if match:
            return match.group("variant")
    return _NOT_WEIGHTS
_REPO_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*")


@dataclass(frozen=True)
class RepoRef:
    repo_id: str
    revision: Optional[str]  # None: the default branch

    def __str__(self) -> str:
        return self.repo_id + (f"@{self.revision}" if self.revision else "")


def parse_repo(text: str) -> RepoRef:
    """`owner/name` or `owner/name@revision`; raises ValueError with what a repo id looks like."""
    repo_id, at, revision = text.strip().partition("@")
    if not _REPO_ID.fullmatch(repo_id) or (at and not revision) or ".." in repo_id or repo_id.endswith((".", "-")):
        raise ValueError(
            f"{text!r} is not a Hub repo id: give owner/name or owner/name@revision "
            f"(e.g. {DEFAULT_REPOS['prior']} or {DEFAULT_REPOS['prior']}@main)"
        )
    return RepoRef(repo_id, revision or None)


def weights_variant(files: Iterable[str], preferred: Optional[str]) -> Tuple[Optional[str], bool]:
    """(variant to read, found): the weights variant of one model folder, given the file names in it.
    `preferred` when the folder has it, else the plain (fp32) files, else the only variant there is;
    found is False when the folder has no safetensors weights at all."""
    variants = {_weights_variant_of(name) for name in files} - {_NOT_WEIGHTS}
    if not variants:
        return preferred, False
    if preferred in variants:
        return preferred, True
    if None in variants:
        return None, True
    return sorted(variants)[0], True  # None is not among them here


def local_weights_variant(folder, subfolder: str, preferred: Optional[str]) -> Optional[str]:
    """The `variant=` to give from_pretrained for a model folder on disk (see weights_variant)."""
    path = Path(folder) / subfolder
    names = [p.name for p in path.iterdir()] if path.is_dir() else []
    return weights_variant(names, preferred)[0]


def load_diffusers_model(cls, folder, subfolder: str, preferred: Optional[str]):
    """`cls.from_pretrained(folder, subfolder=..., variant=...)` with the variant the folder has.
    diffusers 0.31 reads sharded weights only through `accelerate` (a TypeError without it); where
    it is missing, the shards named by the index are loaded here into the model built from its
    config, every key required (strict)."""
    import importlib.util
    import json

    variant = local_weights_variant(folder, subfolder, preferred)
    index = Path(folder) / subfolder / f"diffusion_pytorch_model.safetensors.index{'.' + variant if variant else ''}.json"
    if not index.is_file() or importlib.util.find_spec("accelerate") is not None:
        return cls.from_pretrained(folder, subfolder=subfolder, variant=variant)
    from safetensors.torch import load_file

    model = cls.from_config(cls.load_config(folder, subfolder=subfolder))
    state = {}
    for shard in sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values())):
        state.update(load_file(str(Path(folder) / subfolder / shard)))
    model.load_state_dict(state, strict=True)
    return model


def _escape(name: str) -> str:
    """A file name as an fnmatch pattern that matches only itself."""
    return re.sub(r"([\[\]*?])", r"[\1]", name)


def _folder_files(files: Iterable[str], subfolder: str) -> List[str]:
    prefix = f"{subfolder}/" if subfolder else ""
    return [f[len(prefix) :] for f in files if f.startswith(prefix) and "/" not in f[len(prefix) :]]


def _weight_patterns(repo: RepoRef, files: List[str], subfolder: str, preferred: Optional[str]) -> Tuple[List[str], Optional[str]]:
    """The allow_patterns of one model folder's config and chosen weights, and the variant chosen."""
    names = _folder_files(files, subfolder)
    where = f"{repo}: {subfolder or 'the repo root'}/"
    if "config.json" not in names:
        raise SystemExit(f"{where} has no config.json; is {repo.repo_id} a diffusers/transformers checkpoint of Kandinsky 2.2?")
    variant, found = weights_variant(names, preferred)
    if not found:
        listed = ", ".join(sorted(names)) or "nothing"
        raise SystemExit(
            f"{where} has no .safetensors weights (it holds {listed}). The export reads safetensors only: "
            "pick a revision that has them (owner/name@revision)."
        )
    if variant != preferred:
        wanted = f"{preferred} weights" if preferred else "fp32 weights"
        got = f"the {variant} variant" if variant else "the fp32 weights"
        print(f"{where} has no {wanted}; reading {got}", flush=True)
    chosen = [name for name in names if _weights_variant_of(name) == variant]
    prefix = f"{subfolder}/" if subfolder else ""
    return [_escape(prefix + name) for name in ["config.json"] + sorted(chosen)], variant


def plan_downloads(
    repos: Dict[str, RepoRef], listings: Dict[str, List[str]], components: Iterable[str], preferred: Optional[str]
) -> Dict[str, List[str]]:
    """{role: allow_patterns} for the components wanted, from each repo's file list."""
    patterns: Dict[str, List[str]] = {role: [] for role in repos}
    for role in repos:
        if role == "depth_estimator":
            patterns[role] += DEPTH_ESTIMATOR_FILES
        else:
            patterns[role] += PIPELINE_FILES + (PRIOR_FILES if role == "prior" else [])
    seen = set()
    for component in components:
        role, subfolder = COMPONENT_FOLDERS[component]
        if role not in repos or (role, subfolder) in seen:
            continue
        seen.add((role, subfolder))
        # The depth estimator's loader reads plain weights (depth-anything-small-hf has no variant).
        wanted = None if role == "depth_estimator" else preferred
        patterns[role] += _weight_patterns(repos[role], listings[role], subfolder, wanted)[0]
    return patterns


def _hub_errors():
    from huggingface_hub.utils import GatedRepoError, RepositoryNotFoundError, RevisionNotFoundError

    return RepositoryNotFoundError, RevisionNotFoundError, GatedRepoError


def _repo_info(api, repo: RepoRef, endpoint: str):
    import requests

    not_found, no_revision, gated = _hub_errors()
    try:
        return api.model_info(repo.repo_id, revision=repo.revision, files_metadata=True)
    except gated as error:
        raise SystemExit(f"{repo}: a gated repo; accept its terms on the Hub and set HF_TOKEN ({error.response.status_code})")
    except no_revision:
        raise SystemExit(f"{repo}: no revision {repo.revision!r} on {endpoint}; give a branch, tag or commit id that exists")
    except not_found:
        raise SystemExit(
            f"{repo}: repository not found on {endpoint} (check the id; a private repo needs HF_TOKEN set to a token that can read it)"
        )
    except requests.HTTPError as error:
        response = error.response
        status = response.status_code if response is not None else "no status"
        reason = response.headers.get("X-Error-Message", "") if response is not None else str(error)
        raise SystemExit(
            f"{repo}: {endpoint} answered {status} {reason}; a 401 or 403 means HF_TOKEN is missing, wrong or cannot read this repo"
        )
    except requests.RequestException as error:
        raise SystemExit(f"{repo}: cannot reach {endpoint} ({type(error).__name__}); check the network or HF_ENDPOINT")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_snapshot(repo: RepoRef, folder: Path, siblings: dict, patterns: List[str]) -> Tuple[int, int]:
    """Checks every file the patterns select against the Hub's listing; returns (files, bytes)."""
    from huggingface_hub.utils import filter_repo_objects

    count = total = 0
    for name in filter_repo_objects(list(siblings), allow_patterns=patterns):
        path = folder / name
        sibling = siblings[name]
        if not path.is_file():
            raise SystemExit(f"{repo}: {name} is listed but was not downloaded into {folder}")
        size = path.stat().st_size
        if sibling.size is not None and size != sibling.size:
            raise SystemExit(f"{repo}: {name} has {size} bytes, the Hub lists {sibling.size}; delete {path} and run again")
        if sibling.lfs is not None:
            got = _sha256(path)
            if got != sibling.lfs.sha256:
                raise SystemExit(
                    f"{repo}: {name} has sha256 {got}, the Hub lists {sibling.lfs.sha256}; delete {path} and run again"
                )
        count += 1
        total += size
    return count, total


def download(repos: Dict[str, RepoRef], components: Iterable[str], preferred: Optional[str]) -> Dict[str, Path]:
    """Downloads what the components need from each repo; returns {role: snapshot folder}."""
    from huggingface_hub import HfApi, constants, snapshot_download

    endpoint = constants.ENDPOINT
    if constants.HF_HUB_OFFLINE:
        raise SystemExit("--hub downloads, but HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) is set: unset it, or export from local folders with --prior/--decoder")
    api = HfApi()
    infos = {role: _repo_info(api, repo, endpoint) for role, repo in repos.items()}
    siblings = {role: {s.rfilename: s for s in info.siblings or []} for role, info in infos.items()}
    patterns = plan_downloads(repos, {role: list(files) for role, files in siblings.items()}, list(components), preferred)
    folders = {}
    for role, repo in repos.items():
        info = infos[role]
        # Pinned to the commit the listing came from, so the files and the listing agree.
        folder = Path(snapshot_download(repo.repo_id, revision=info.sha, allow_patterns=patterns[role]))
        count, total = verify_snapshot(repo, folder, siblings[role], patterns[role])
        print(f"{str(repo):>50}: commit {info.sha[:12]}, {count} files, {total / 1e6:.2f} MB verified -> {folder}", flush=True)
        folders[role] = folder
    return folders


def resolve_repos(positional: List[str], depth_estimator: Optional[str]) -> Dict[str, RepoRef]:
    """--hub's arguments (up to four repo ids, the rest default) as {role: RepoRef}."""
    if len(positional) > len(ROLES):
        raise ValueError(f"--hub takes at most {len(ROLES)} repo ids (prior, decoder, inpaint, controlnet-depth); got {len(positional)}")
    texts = list(positional) + [DEFAULT_REPOS[role] for role in ROLES[len(positional) :]]
    repos = {role: parse_repo(text) for role, text in zip(ROLES, texts)}
    if depth_estimator:
        repos["depth_estimator"] = parse_repo(depth_estimator)
    return repos
