"""Record torch's CPU random streams and diffusers' schedulers as test fixtures for workers/engine.

Run (see /work/shared/TESTING.md for the reference environment):

    . /work/refenv/env.sh && /usr/bin/python3 models/export/reference_schedulers.py

Writes models/fixtures/schedulers/: JSON metadata plus little-endian float32 .npy tensors, < 1 MB in total.
Every expected value the TypeScript tests use comes from this script; nothing is typed in by hand.

Scheduler cases follow the Kandinsky 2.2 pipelines' call conventions (diffusers 0.31.0):
- the prior draws its initial latents from the same generator the UnCLIP scheduler then uses for its
  per-step noise, and passes prev_timestep = timesteps[i + 1] (None at the last step);
- the decoder draws its initial latents, then DDPM draws one noise tensor per step from that generator;
  the UNet predicts 8 channels but, with the decoder's variance_type "fixed_small", the pipeline drops
  the variance half before step(), so the scheduler sees 4-channel noise predictions.
Model outputs are stand-ins drawn from a separate generator (they are inputs here, not under test).
"""

import json
import math
import os
import sys

import numpy as np
import torch

from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler, UnCLIPScheduler
from diffusers.utils.torch_utils import randn_tensor

torch.set_num_threads(1)

OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "schedulers")

# kandinsky-community/kandinsky-2-2-prior scheduler/scheduler_config.json (also diffusers' tiny prior tests).
PRIOR_CONFIG = {
    "_class_name": "UnCLIPScheduler",
    "clip_sample": True,
    "clip_sample_range": 10.0,
    "num_train_timesteps": 1000,
    "prediction_type": "sample",
    "variance_type": "fixed_small_log",
}

# kandinsky-community/kandinsky-2-2-decoder scheduler/scheduler_config.json, verbatim: no variance_type
# (so DDPM's default "fixed_small") and no timestep_spacing (so "leading"); set_alpha_to_one is a DDIM
# field that DDPM ignores but that DDIM picks up when built from this config.
DECODER_CONFIG = {
    "_class_name": "DDPMScheduler",
    "num_train_timesteps": 1000,
    "beta_schedule": "linear",
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "clip_sample": False,
    "set_alpha_to_one": False,
    "steps_offset": 1,
    "prediction_type": "epsilon",
    "thresholding": False,
}

NOISE_SEED = 20240607  # the "pipeline" generator: initial latents and per-step scheduler noise
MODEL_OUTPUT_SEED = 7  # stand-in model outputs


def save_npy(name, array, dtype=np.float32):
    np.save(os.path.join(OUT_DIR, name), np.ascontiguousarray(np.asarray(array, dtype=dtype)))


def public_config(scheduler):
    """The scheduler's full resolved config, as a manifest built from it would carry.

    Non-finite numbers (DPM-Solver's lambda_min_clipped = -inf) become null: JSON has no infinity, and
    null means "the default" to the TypeScript schedulers, which is what diffusers resolved them to here.
    """
    config = {}
    for key, value in dict(scheduler.config).items():
        if key.startswith("_"):
            continue
        config[key] = None if isinstance(value, float) and not math.isfinite(value) else value
    return config


# ---------------------------------------------------------------------------------------------- RNG

RNG_SEEDS = [0, 1, 42, 5, 2**32 + 5, 2**53 - 1, 2**63 + 12345, 2**64 - 1, -1]
SINGLE_SHAPES = [[1], [3], [15], [16], [17], [31], [32], [33], [1, 4, 8, 8], [2, 4, 8, 16], [1000]]
# Sequences on one generator: the small-draw cache must survive (and be ignored by) large draws.
SEQUENCES = [
    [("randn", [32]), ("randn", [1, 4, 8, 8]), ("randn", [5]), ("randn", [5])],
    [("randn", [5]), ("randn", [32]), ("randn", [5]), ("randn", [1]), ("randn", [1])],
    [("randn", [1]), ("randn", [1]), ("randn", [1]), ("randn", [2, 8])],
    [("randn", [15]), ("randn", [16]), ("randn", [3]), ("rand", [7]), ("randn", [1])],
    [("rand", [20]), ("randn", [3]), ("rand", [3]), ("randn", [40])],
    # Prior-then-decoder order at tiny sizes: latents (1, 32), 3 step noises, decoder latents (1, 4, 8, 8).
    [("randn", [1, 32]), ("randn", [1, 32]), ("randn", [1, 32]), ("randn", [1, 32]), ("randn", [1, 4, 8, 8])],
]


def record_rng():
    cases = []
    chunks = []
    offset = 0

    def draw(generator, op, shape):
        nonlocal offset
        if op == "randn":
            values = torch.randn(shape, generator=generator, dtype=torch.float32)
        else:
            values = torch.rand(shape, generator=generator, dtype=torch.float32)
        flat = values.reshape(-1).numpy()
        chunks.append(flat)
        entry = {"op": op, "shape": shape, "offset": offset}
        offset += flat.size
        return entry

    for seed in RNG_SEEDS:
        for shape in SINGLE_SHAPES:
            g = torch.Generator().manual_seed(seed)
            cases.append({"seed": str(seed), "draws": [draw(g, "randn", shape)]})
        for sequence in SEQUENCES:
            g = torch.Generator().manual_seed(seed)
            cases.append({"seed": str(seed), "draws": [draw(g, op, shape) for op, shape in sequence]})

    # diffusers' randn_tensor with a list of generators: each batch item is its own (1, ...) draw.
    list_cases = []
    for shape, seeds in [([3, 4, 2, 2], [0, 1, 2]), ([2, 3], [42, 43]), ([2, 32], [7, 8]), ([1, 4, 2, 2], [9])]:
        generators = [torch.Generator().manual_seed(s) for s in seeds]
        values = randn_tensor(tuple(shape), generator=generators, dtype=torch.float32).reshape(-1).numpy()
        chunks.append(values)
        list_cases.append({"seeds": [str(s) for s in seeds], "shape": shape, "offset": offset})
        offset += values.size

    # The default generator state (torch.Generator() without manual_seed).
    default_values = torch.randn(20, generator=torch.Generator()).numpy()
    chunks.append(default_values)
    default_case = {"shape": [20], "offset": offset}
    offset += default_values.size

    save_npy("torch_rng.npy", np.concatenate(chunks))
    meta = {
        "torch_version": torch.__version__,
        "values_file": "torch_rng.npy",
        "cases": cases,
        "generator_list_cases": list_cases,
        "default_generator_case": default_case,
    }
    with open(os.path.join(OUT_DIR, "torch_rng.json"), "w") as f:
        json.dump(meta, f, indent=1, allow_nan=False)


# ---------------------------------------------------------------------------------------- schedulers


def model_outputs_for(steps, shape, scale):
    g = torch.Generator().manual_seed(MODEL_OUTPUT_SEED)
    return [torch.randn(shape, generator=g) * scale for _ in range(steps)]


def save_case(name, meta, tensors):
    meta = dict(meta)
    meta["tensors"] = {}
    for key, value in tensors.items():
        file_name = f"{name}.{key}.npy"
        save_npy(file_name, torch.stack(value).numpy() if isinstance(value, list) else value.numpy())
        meta["tensors"][key] = file_name
    with open(os.path.join(OUT_DIR, f"{name}.json"), "w") as f:
        json.dump(meta, f, indent=1, allow_nan=False)
    return name


def record_prior_case(name, steps, batch):
    scheduler = UnCLIPScheduler.from_config(PRIOR_CONFIG)
    scheduler.set_timesteps(steps)
    timesteps = scheduler.timesteps
    shape = (batch, 32)
    generator = torch.Generator().manual_seed(NOISE_SEED)
    latents = randn_tensor(shape, generator=generator, dtype=torch.float32) * scheduler.init_noise_sigma
    initial = latents.clone()
    # "sample" prediction clipped at +-10: scale so some stand-in outputs exceed the clip range.
    outputs = model_outputs_for(len(timesteps), shape, 6.0)
    prev_samples, originals = [], []
    for i, t in enumerate(timesteps):
        prev_timestep = None if i + 1 == timesteps.shape[0] else timesteps[i + 1]
        out = scheduler.step(outputs[i], timestep=t, sample=latents, generator=generator, prev_timestep=prev_timestep)
        latents = out.prev_sample
        prev_samples.append(latents)
        originals.append(out.pred_original_sample)
    meta = {
        "scheduler": "UnCLIPScheduler",
        "config": public_config(scheduler),
        "num_inference_steps": steps,
        "shape": list(shape),
        "noise_seed": str(NOISE_SEED),
        "timesteps": timesteps.tolist(),
        "init_noise_sigma": float(scheduler.init_noise_sigma),
    }
    return save_case(
        name,
        meta,
        {
            "initial_latents": initial,
            "model_outputs": outputs,
            "prev_samples": prev_samples,
            "pred_original_samples": originals,
        },
    )


def record_decoder_case(name, scheduler, steps, shape, strength=None, model_output_channels=None, step_kwargs=None):
    """Decoder loop as KandinskyV22Pipeline / Img2ImgPipeline run it (strength given: img2img)."""
    scheduler.set_timesteps(steps)
    timesteps = scheduler.timesteps
    generator = torch.Generator().manual_seed(NOISE_SEED)
    meta = {
        "scheduler": type(scheduler).__name__,
        "config": public_config(scheduler),
        "num_inference_steps": steps,
        "shape": list(shape),
        "noise_seed": str(NOISE_SEED),
        "all_timesteps": timesteps.tolist(),
        "init_noise_sigma": float(scheduler.init_noise_sigma),
        "step_kwargs": step_kwargs or {},
    }
    tensors = {}
    if strength is None:
        latents = randn_tensor(shape, generator=generator, dtype=torch.float32) * scheduler.init_noise_sigma
    else:
        # KandinskyV22Img2ImgPipeline.get_timesteps, then prepare_latents' add_noise at the first kept step.
        init_timestep = min(int(steps * strength), steps)
        t_start = max(steps - init_timestep, 0)
        timesteps = scheduler.timesteps[t_start:]
        # The Kandinsky img2img pipeline never calls set_begin_index: DPM-Solver finds its step index by
        # looking the first timestep up in its schedule.
        image_latents = model_outputs_for(1, shape, 1.0)[0] * 0.5 + 0.25
        latent_timestep = timesteps[:1].repeat(shape[0])
        noise = randn_tensor(shape, generator=generator, dtype=torch.float32)
        latents = scheduler.add_noise(image_latents, noise, latent_timestep)
        meta["strength"] = strength
        tensors["image_latents"] = image_latents
        tensors["added_noise"] = noise
    meta["timesteps"] = timesteps.tolist()
    tensors["initial_latents"] = latents.clone()
    channels = model_output_channels or shape[1]
    outputs = model_outputs_for(len(timesteps), (shape[0], channels, *shape[2:]), 1.0)
    if channels != shape[1]:
        # learned_range reads its variance half as a fraction in [-1, 1].
        outputs = [torch.cat([o[:, : shape[1]], torch.tanh(o[:, shape[1] :])], dim=1) for o in outputs]
    prev_samples = []
    for i, t in enumerate(timesteps):
        latents = scheduler.step(outputs[i], t, latents, generator=generator, **(step_kwargs or {}))[0]
        prev_samples.append(latents)
    tensors["model_outputs"] = outputs
    tensors["prev_samples"] = prev_samples
    return save_case(name, meta, tensors)


def record_schedule_tables():
    """alphas_cumprod for each config: pins the float32 schedule arithmetic before any step runs."""
    tables = {
        "prior": UnCLIPScheduler.from_config(PRIOR_CONFIG),
        "decoder": DDPMScheduler.from_config(DECODER_CONFIG),
    }
    meta = {}
    for key, scheduler in tables.items():
        save_npy(f"schedule_{key}.betas.npy", scheduler.betas.numpy())
        save_npy(f"schedule_{key}.alphas_cumprod.npy", scheduler.alphas_cumprod.numpy())
        meta[key] = {
            "config": public_config(scheduler),
            "betas": f"schedule_{key}.betas.npy",
            "alphas_cumprod": f"schedule_{key}.alphas_cumprod.npy",
        }
    with open(os.path.join(OUT_DIR, "schedule_tables.json"), "w") as f:
        json.dump(meta, f, indent=1, allow_nan=False)


def record_timestep_tables():
    """Timesteps alone, cheap to record for many step counts, spacings and img2img strengths."""
    counts = [1, 2, 3, 4, 7, 10, 25, 50, 100, 999, 1000]
    decoder = DDPMScheduler.from_config(DECODER_CONFIG).config
    linear = {"beta_start": 0.00085, "beta_end": 0.012}
    schedulers = {
        "unclip": lambda: UnCLIPScheduler.from_config(PRIOR_CONFIG),
        "ddpm": lambda: DDPMScheduler.from_config(DECODER_CONFIG),
        "ddpm_trailing": lambda: DDPMScheduler.from_config(DECODER_CONFIG, timestep_spacing="trailing"),
        "ddpm_linspace": lambda: DDPMScheduler.from_config(DECODER_CONFIG, timestep_spacing="linspace"),
        "ddim": lambda: DDIMScheduler.from_config(decoder),
        "ddim_trailing": lambda: DDIMScheduler.from_config(decoder, timestep_spacing="trailing"),
        "dpmpp_2m": lambda: DPMSolverMultistepScheduler.from_config(decoder),
        "dpmpp_2m_leading": lambda: DPMSolverMultistepScheduler(**linear, timestep_spacing="leading", steps_offset=1),
        "dpmpp_2m_trailing": lambda: DPMSolverMultistepScheduler(**linear, timestep_spacing="trailing"),
        "dpmpp_2m_lambda_clipped": lambda: DPMSolverMultistepScheduler(**linear, lambda_min_clipped=-2.5),
    }
    table = {"schedulers": {}, "img2img": []}
    for key, make in schedulers.items():
        entry = {"config": public_config(make()), "timesteps": {}}
        for n in counts:
            if key == "unclip" and n == 1:
                continue  # UnCLIP divides by n - 1
            scheduler = make()
            scheduler.set_timesteps(n)
            entry["timesteps"][str(n)] = scheduler.timesteps.tolist()
        table["schedulers"][key] = entry
    for n, strength in [(4, 0.5), (25, 0.3), (10, 1.0), (2, 0.75), (50, 0.85), (7, 0.01), (100, 0.333), (3, 0.0)]:
        s = DDPMScheduler.from_config(DECODER_CONFIG)
        s.set_timesteps(n)
        init_timestep = min(int(n * strength), n)
        t_start = max(n - init_timestep, 0)
        table["img2img"].append(
            {
                "num_inference_steps": n,
                "strength": strength,
                "timesteps": s.timesteps[t_start:].tolist(),
                "steps": n - t_start,
            }
        )
    with open(os.path.join(OUT_DIR, "timesteps.json"), "w") as f:
        json.dump(table, f, allow_nan=False)


def record_npy_samples():
    """Small arrays of each dtype the engine's .npy reader supports, written by numpy itself."""
    samples = [
        ("npy_f4_2x3.npy", np.array([[1.5, -2.25, 3.0e-8], [np.inf, -0.0, 65504.0]], dtype="<f4"), None),
        ("npy_f4_scalar.npy", np.array(0.125, dtype="<f4"), None),
        ("npy_f4_empty.npy", np.zeros((0, 3), dtype="<f4"), None),
        ("npy_i8_3.npy", np.array([2**40 + 3, -5, 2**62], dtype="<i8"), None),
        ("npy_i4_2x2.npy", np.array([[-(2**31), 7], [0, 2**31 - 1]], dtype="<i4"), None),
        ("npy_b1_4.npy", np.array([True, False, False, True]), None),
        ("npy_f4_v2.npy", np.arange(6, dtype="<f4").reshape(3, 2) / 4, (2, 0)),
        ("npy_f4_fortran.npy", np.asfortranarray(np.arange(6, dtype="<f4").reshape(2, 3)), None),
        ("npy_f8_2.npy", np.array([1.0, 2.0], dtype="<f8"), None),
    ]
    meta = []
    for file_name, array, version in samples:
        with open(os.path.join(OUT_DIR, file_name), "wb") as f:
            np.lib.format.write_array(f, array, version=version)
        values = array.reshape(-1).tolist() if array.dtype != np.int64 else [str(v) for v in array.reshape(-1)]
        meta.append(
            {
                "file": file_name,
                "dtype": array.dtype.str,
                "shape": list(array.shape),
                "fortran_order": bool(array.flags.f_contiguous and not array.flags.c_contiguous),
                # Python's json writes inf as Infinity: strings keep the file standard JSON.
                "values": [v if isinstance(v, (str, bool)) or math.isfinite(v) else repr(v) for v in values],
            }
        )
    with open(os.path.join(OUT_DIR, "npy_samples.json"), "w") as f:
        json.dump(meta, f, indent=1, allow_nan=False)


def main():
    os.makedirs(OUT_DIR, exist_ok=True)
    for name in os.listdir(OUT_DIR):
        os.remove(os.path.join(OUT_DIR, name))
    record_rng()
    record_npy_samples()
    record_schedule_tables()
    record_timestep_tables()

    cases = []
    for steps in [2, 4, 25]:
        cases.append(record_prior_case(f"unclip_prior_{steps}", steps, batch=1))
    cases.append(record_prior_case("unclip_prior_batch2_4", 4, batch=2))

    latent_shape = (1, 4, 4, 4)
    ddpm_config = DDPMScheduler.from_config(DECODER_CONFIG).config
    for steps in [2, 4, 25]:
        cases.append(record_decoder_case(f"ddpm_decoder_{steps}", DDPMScheduler.from_config(DECODER_CONFIG), steps, latent_shape))
    cases.append(
        record_decoder_case("ddpm_decoder_batch2_3", DDPMScheduler.from_config(DECODER_CONFIG), 3, (2, 4, 4, 4))
    )
    cases.append(
        record_decoder_case(
            "ddpm_learned_range_4",
            DDPMScheduler.from_config(DECODER_CONFIG, variance_type="learned_range"),
            4,
            latent_shape,
            model_output_channels=8,
        )
    )
    for variance_type in ["fixed_small_log", "fixed_large"]:
        cases.append(
            record_decoder_case(
                f"ddpm_{variance_type}_4",
                DDPMScheduler.from_config(DECODER_CONFIG, variance_type=variance_type),
                4,
                latent_shape,
            )
        )
    cases.append(
        record_decoder_case(
            "ddpm_img2img_10_0.5", DDPMScheduler.from_config(DECODER_CONFIG), 10, latent_shape, strength=0.5
        )
    )
    for steps in [2, 4, 25]:
        cases.append(record_decoder_case(f"ddim_decoder_{steps}", DDIMScheduler.from_config(ddpm_config), steps, latent_shape))
    cases.append(
        record_decoder_case(
            "ddim_eta_clipped_5",
            DDIMScheduler.from_config(ddpm_config, clip_sample=True, clip_sample_range=1.5),
            5,
            latent_shape,
            step_kwargs={"eta": 0.7, "use_clipped_model_output": True},
        )
    )
    for steps in [2, 4, 25]:
        cases.append(
            record_decoder_case(
                f"dpmpp_2m_decoder_{steps}", DPMSolverMultistepScheduler.from_config(ddpm_config), steps, latent_shape
            )
        )
    cases.append(
        record_decoder_case(
            "dpmpp_2m_linspace_20",
            DPMSolverMultistepScheduler(beta_start=0.00085, beta_end=0.012),
            20,
            latent_shape,
        )
    )
    cases.append(
        record_decoder_case(
            "dpmpp_2m_heun_sigma_min_trailing_16",
            DPMSolverMultistepScheduler(
                beta_start=0.00085,
                beta_end=0.012,
                solver_type="heun",
                final_sigmas_type="sigma_min",
                lower_order_final=False,
                timestep_spacing="trailing",
            ),
            16,
            latent_shape,
        )
    )
    cases.append(
        record_decoder_case(
            "dpmpp_2m_img2img_10_0.6",
            DPMSolverMultistepScheduler.from_config(ddpm_config),
            10,
            latent_shape,
            strength=0.6,
        )
    )
    with open(os.path.join(OUT_DIR, "cases.json"), "w") as f:
        json.dump({"cases": cases, "prior_config": PRIOR_CONFIG, "decoder_config": DECODER_CONFIG}, f, indent=1)

    total = sum(os.path.getsize(os.path.join(OUT_DIR, n)) for n in os.listdir(OUT_DIR))
    print(f"wrote {len(os.listdir(OUT_DIR))} files, {total} bytes to {os.path.normpath(OUT_DIR)}", file=sys.stderr)


if __name__ == "__main__":
    main()
