"""Training throughput: images per second of the real AMFL step (G + D update, eq. 5-7).

Times what the trainer runs per batch, on random 128 x 128 batches, for the paper-size
generator and the small preset: ``amfl.training.step.AdversarialStep`` plus the
``LossTracker`` that sums its losses on the device and checks them for NaN every
``LOSS_CHECK_INTERVAL`` steps and at the end (the trainer's only host syncs). Runs on
whatever Accelerate picks (a GPU if present).

    python benchmarks/bench_training.py                          # both presets, fp32
    python benchmarks/bench_training.py --mixed_precision bf16 --channels_last --batch_size 64
    python benchmarks/bench_training.py --presets amfl-small --discriminator_width 16 \
        --batch_size 16 --steps 12 [--channels_last]           # the bundled model's CPU run
    python benchmarks/bench_training.py --presets amfl-small --discriminator_width 16 \
        --batch_size 16 --steps 12 --channels_last --no-gan --size 96   # generator alone, 96 x 96
    python benchmarks/bench_training.py --presets amfl-small --base_width 16 --batch_size 16 \
        --steps 12 --channels_last --no-gan                     # a wider small generator

``--no-gan`` times the generator-only step (the trainer's ``--no-gan``); ``--size`` the side of
the square training crops; ``--base_width`` overrides the presets' base width (the trainer's
``--base_width``).
"""

import argparse
import time

import torch
from accelerate import Accelerator

from amfl.losses import create_loss
from amfl.models import create_discriminator, create_model
from amfl.training.step import AdversarialStep, LossTracker

PRESETS = ("amfl-paper", "amfl-small")


def images_per_second(
    accelerator: Accelerator, preset: str, batch_size: int, steps: int, warmup: int, channels_last: bool,
    discriminator_width: int | None, size: int, base_width: int | None = None,
) -> float:
    """Training images per second; ``discriminator_width`` None times the generator alone."""
    torch.manual_seed(0)
    networks = [create_model(preset, **({} if base_width is None else {"base_width": base_width}))]
    if discriminator_width is not None:
        networks.append(create_discriminator(base_width=discriminator_width))
    if channels_last:
        networks = [network.to(memory_format=torch.channels_last) for network in networks]
    optimizers = [torch.optim.Adam(m.parameters(), lr=2e-4, betas=(0.5, 0.999)) for m in networks]
    prepared = accelerator.prepare(*networks, *optimizers)
    networks, optimizers = prepared[: len(networks)], prepared[len(networks) :]
    step = AdversarialStep(
        accelerator, networks[0], optimizers[0], create_loss("lovasz"),
        networks[1] if len(networks) > 1 else None, optimizers[1] if len(optimizers) > 1 else None,
        channels_last=channels_last,
    )
    images = torch.rand(batch_size, 1, size, size, device=accelerator.device)
    labels = torch.randint(0, 4, (batch_size, size, size), device=accelerator.device)
    for _ in range(warmup):
        step(images, labels)
    _synchronise(accelerator)
    started = time.perf_counter()
    tracker = LossTracker(accelerator, "the benchmark")
    for _ in range(steps):
        tracker.add(step(images, labels))
    tracker.finish()
    _synchronise(accelerator)
    return steps * batch_size / (time.perf_counter() - started)


def _synchronise(accelerator: Accelerator) -> None:
    if accelerator.device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=list(PRESETS), choices=PRESETS)
    parser.add_argument("--batch_size", type=int, default=None, help="default: 64 on a GPU, 8 on the CPU")
    parser.add_argument("--steps", type=int, default=None, help="timed steps (default: 20 on a GPU, 3 on the CPU)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument("--mixed_precision", choices=("no", "fp16", "bf16"), default="no")
    parser.add_argument("--channels_last", action="store_true")
    parser.add_argument("--discriminator_width", type=int, default=64, help="the PatchGAN's first width")
    parser.add_argument("--gan", action=argparse.BooleanOptionalAction, default=True,
                        help="time the adversarial step (--no-gan: the generator alone)")
    parser.add_argument("--size", type=int, default=128, help="side of the square training crops, pixels (multiple of 16)")
    parser.add_argument("--base_width", type=int, default=None, help="override the presets' generator base width f(0)")
    args = parser.parse_args()
    if args.base_width is not None and args.base_width < 1:
        parser.error(f"--base_width must be at least 1; got {args.base_width}")
    if args.size < 16 or args.size % 16:
        parser.error(f"--size must be a multiple of 16 of at least 16; got {args.size}")
    accelerator = Accelerator(mixed_precision=args.mixed_precision)
    on_gpu = accelerator.device.type == "cuda"
    batch_size = args.batch_size or (64 if on_gpu else 8)
    steps = args.steps or (20 if on_gpu else 3)
    if on_gpu:
        torch.backends.cudnn.benchmark = True
        device = torch.cuda.get_device_name()
    else:
        # bfloat16 runs fast only where the CPU has bfloat16 instructions (AVX-512 BF16, AMX):
        # the capability ATen dispatches to says which kind of CPU the figures come from.
        device = f"CPU ({torch.backends.cpu.get_cpu_capability()}), {torch.get_num_threads()} threads"
    print(
        f"device: {device}; batch {batch_size}; {args.mixed_precision}; channels_last {args.channels_last}; "
        f"{f'discriminator width {args.discriminator_width}' if args.gan else 'no GAN'}; {args.size} x {args.size}"
        f"{'' if args.base_width is None else f'; generator base width {args.base_width}'}"
    )
    for preset in args.presets:
        rate = images_per_second(
            accelerator, preset, batch_size, steps, args.warmup, args.channels_last,
            args.discriminator_width if args.gan else None, args.size, args.base_width,
        )
        updated = "G + D update" if args.gan else "G update"
        print(f"{preset}: {rate:.1f} images/s, {rate / batch_size:.2f} steps/s ({updated} + loss check)")


if __name__ == "__main__":
    main()
