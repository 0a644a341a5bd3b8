"""kandinsky_export.py's deployer options: `--hub` (checkpoints from the Hugging Face Hub, hub.py),
`--variant fp16`, `--precisions` (a folder ready to host, hosting.py)."""

from __future__ import annotations

import argparse
from typing import Callable

import hosting
import hub


def add_arguments(parser: argparse.ArgumentParser, mode) -> None:
    """`--hub` joins the tool's mutually exclusive modes (`mode`); the rest are options."""
    mode.add_argument(
        "--hub",
        nargs="*",
        metavar="REPO",
        help="download the checkpoints from the Hugging Face Hub (HF_ENDPOINT, HF_TOKEN): up to four repo ids, "
        "owner/name[@revision], for the prior, decoder, inpaint and ControlNet-depth pipelines (the rest "
        "kandinsky-community's), then export every precision into --out, ready to host",
    )
    parser.add_argument(
        "--hub-depth-estimator",
        nargs="?",
        const=hub.DEFAULT_DEPTH_ESTIMATOR,
        metavar="REPO",
        help=f"with --hub: also export the depth estimator from this repo (default {hub.DEFAULT_DEPTH_ESTIMATOR})",
    )
    parser.add_argument(
        "--variant",
        choices=["fp16"],
        help="checkpoints: read (and with --hub download only) the fp16 weight files where a folder has them",
    )
    parser.add_argument(
        "--precisions",
        nargs="+",
        choices=hosting.ALL_PRECISIONS,
        help="checkpoints: export each of these (with --check) into one folder ready to host, manifest.json "
        f"opening the first (default with --hub: {' '.join(hosting.ALL_PRECISIONS)})",
    )


def check_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> bool:
    """Rejects combinations that make no sense before anything is downloaded or exported; returns
    whether the run makes a ready-to-host folder. Sets `--precision`'s default (fp32)."""
    from_hub = args.hub is not None
    ready = from_hub or args.precisions is not None
    if ready and args.precision:
        parser.error("--precision makes one export; a ready-to-host folder (--hub or --precisions) takes --precisions")
    args.precision = args.precision or "fp32"
    if args.precisions and not (args.prior or from_hub):
        parser.error("--precisions exports checkpoints: give --prior/--decoder folders or --hub")
    if args.variant and not (args.prior or from_hub):
        parser.error("--variant reads checkpoints: give --prior/--decoder folders or --hub")
    if args.hub_depth_estimator and not from_hub:
        parser.error("--hub-depth-estimator needs --hub")
    if from_hub:
        local = [args.decoder, args.decoder_inpaint, args.controlnet_depth, args.depth_estimator]
        if any(folder is not None for folder in local):
            parser.error("--decoder, --decoder-inpaint, --controlnet-depth and --depth-estimator are local folders; with --hub give repo ids")
        try:
            args.hub_repos = hub.resolve_repos(args.hub, args.hub_depth_estimator)
        except ValueError as error:
            parser.error(str(error))
    if ready:
        if args.out is None:
            parser.error("a ready-to-host folder needs --out (a new folder)")
        hosting.check_out_folder(args.out)
    return ready


def run(args: argparse.Namespace, export_set: Callable[[argparse.Namespace], None]) -> dict:
    """Downloads (with --hub), then exports every precision into the ready-to-host folder."""
    if args.hub is not None:
        import architectures as arch

        wanted = args.components or [spec.component for spec in arch.GRAPHS]
        folders = hub.download(args.hub_repos, wanted, args.variant)
        args.prior, args.decoder = folders["prior"], folders["decoder"]
        args.decoder_inpaint, args.controlnet_depth = folders["inpaint"], folders["controlnet_depth"]
        args.depth_estimator = folders.get("depth_estimator")
    args.precisions = args.precisions or hosting.ALL_PRECISIONS
    return hosting.export_ready_folder(args, export_set)
