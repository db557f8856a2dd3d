"""scBasset training speed: Swift (`singlecell scbasset train`) vs scvi-tools SCBASSET, same run.

    swift build -c release --product singlecell
    bench/scbasset/run [--epochs 4] [--cells 600] [--peaks 800] [--threads 2]

Data: the SIMULATED scATAC set of Genomics.SimulatedATAC on the shipped hg19 chr22 piece
(`singlecell scbasset simulate`, 300-bp peaks, 1344-bp windows), written once to a temporary h5ad that both
sides read. Settings on both sides: scvi-tools' network (tower 288, 323, 362, 406, 456, 512 by its
step-wise rounding, its padded pooling and channel-major flatten, so the FLOPs are identical),
batch size 128, Adam(0.01, betas 0.95/0.9995), 90 % train / 10 % validation, no early stopping,
training AUROC per minibatch, the same number of libtorch threads. Each side's epoch times (training + validation pass) are
measured in-process; the first epoch (warm-up) is dropped; medians are printed with the ratio
scvi-tools / Swift (above 1 means Swift is faster), and the achieved convolution+dense GFLOP/s
(forward 2·N·Cout·Cin·K·Lout; a training step counts 3× forward, 2× for the stem whose input needs
no gradient; the validation pass counts 1× forward).

Both sides run under GLIBC_TUNABLES=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=… unless
--default-malloc: the Swift CLI sets the same through mallopt (Runtime.retainFreedMemory), and
giving it to scvi-tools too keeps the comparison about the models, not about glibc's handling of
the 100-MB activations (without it each step re-faults them; about a fifth of an epoch).

With --ceiling the same run also times every convolution of one training step (batch 128) alone
in PyTorch (conv_ceiling.py: forward + input and weight gradients, the faster of [N, C, L] conv1d
and channels-last conv2d per layer, fastest of 3), the practical libtorch ceiling: an epoch can not
be faster than its convolutions, and those run at that rate at best.
"""

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
TOWER = [288, 323, 362, 406, 456, 512]
MALLOC_TUNABLES = "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=68719476736"


def flops_per_region(seq_len=1344, training=True):
    """2·MACs of the convolutions and the bottleneck dense layer for one region: forward, or a
    training step (3× forward: output, input gradient, weight gradient; the stem 2×)."""
    stem_factor, factor = (2, 3) if training else (1, 1)
    total = 0.0
    length = seq_len
    # stem: 4 -> 288, k 17, at full length, then pool 3 (padded: floor((L + 2 - 3) / 3) + 1)
    total += stem_factor * 2 * 288 * 4 * 17 * length
    length = (length + 2 - 3) // 3 + 1
    channels = 288
    for width in TOWER:
        total += factor * 2 * width * channels * 5 * length
        channels = width
        length //= 2
    total += factor * 2 * 256 * channels * 1 * length  # pointwise
    total += factor * 2 * 32 * 256 * length  # bottleneck dense
    return total


def run_swift(binary, h5ad, out, epochs, threads, seed, device, env):
    config = {
        "vocab_size": 4, "sequence_length": 1344, "tower_channels": TOWER, "pooling": "scvi-tools",
        "flatten": "channel-major",
    }
    config_path = out / "network.json"
    config_path.write_text(json.dumps(config))
    cmd = [binary, "scbasset", "train", str(h5ad), "-o", str(out / "swift"), "--max-epochs", str(epochs),
           "--no-early-stopping", "--threads", str(threads), "--seed", str(seed), "--network-config", str(config_path), "--device", device]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env)
    metrics = json.loads((out / "swift" / "metrics.json").read_text())
    return metrics["seconds_per_epoch"], metrics.get("validation_auroc")


def run_scvi(h5ad, epochs, threads, seed, device):
    import anndata as ad
    import lightning.pytorch as pl
    import numpy as np
    import scvi
    import torch

    torch.set_num_threads(threads)
    scvi.settings.seed = seed
    cells = ad.read_h5ad(h5ad)
    cells.varm["dna_code"] = np.asarray(cells.varm["dna_code"]).astype(np.int64)
    regions = cells.transpose()
    scvi.external.SCBASSET.setup_anndata(regions, dna_code_key="dna_code")
    model = scvi.external.SCBASSET(regions)

    class EpochTimer(pl.Callback):
        def __init__(self):
            self.starts = []

        def on_train_epoch_start(self, trainer, module):
            self.starts.append(time.perf_counter())

        def on_train_end(self, trainer, module):
            self.starts.append(time.perf_counter())

    timer = EpochTimer()
    model.train(max_epochs=epochs, batch_size=128, early_stopping=False, accelerator="cpu" if device == "cpu" else "gpu", callbacks=[timer],
                enable_progress_bar=False, logger=False, enable_model_summary=False)
    return [b - a for a, b in zip(timer.starts, timer.starts[1:])]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default=str(ROOT / ".build/release/singlecell"))
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--cells", type=int, default=600)
    parser.add_argument("--peaks", type=int, default=800)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--default-malloc", action="store_true",
                        help="run scvi-tools without the glibc malloc tunables (Swift sets them itself)")
    parser.add_argument("--ceiling", action="store_true",
                        help="also time each convolution of a training step alone (libtorch ceiling)")
    args = parser.parse_args()
    if not args.default_malloc and os.environ.get("GLIBC_TUNABLES") != MALLOC_TUNABLES:
        # glibc reads its tunables at start-up: re-run this script with them.
        os.environ["GLIBC_TUNABLES"] = MALLOC_TUNABLES
        os.execv(sys.executable, [sys.executable] + sys.argv)
    env = dict(os.environ)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        h5ad = tmp / "simulated.h5ad"
        subprocess.run([args.binary, "scbasset", "simulate", "-o", str(h5ad), "--cells", str(args.cells),
                        "--peaks", str(args.peaks), "--peak-width", "300", "--genome", str(ROOT / "data/atac/hg19_chr22_20-21Mb.fa"),
                        "--motifs", str(ROOT / "data/atac/motifs.jaspar")], check=True, stdout=subprocess.DEVNULL)
        swift, swift_auroc = run_swift(args.binary, h5ad, tmp, args.epochs, args.threads, args.seed, args.device, env)
        scvi_times = run_scvi(h5ad, args.epochs, args.threads, args.seed, args.device)

    swift_median = statistics.median(swift[1:] or swift)
    scvi_median = statistics.median(scvi_times[1:] or scvi_times)
    n_train = -(-9 * args.peaks // 10)
    flops = flops_per_region() * n_train + flops_per_region(training=False) * (args.peaks - n_train)
    print(f"data: {args.cells} simulated cells x {args.peaks} peaks, 1344 bp; {args.epochs} epochs; {args.threads} threads; "
          f"{args.device}; malloc: {'glibc defaults for scvi-tools' if args.default_malloc else MALLOC_TUNABLES}")
    print(f"swift epochs (s): {', '.join(f'{t:.2f}' for t in swift)}")
    print(f"scvi-tools epochs (s): {', '.join(f'{t:.2f}' for t in scvi_times)}")
    print(f"median seconds/epoch: swift {swift_median:.3f}, scvi-tools {scvi_median:.3f}")
    print(f"ratio scvi-tools / swift: {scvi_median / swift_median:.2f}x")
    print(f"GFLOP per epoch (conv + dense; {n_train} training regions x 3 fwd, {args.peaks - n_train} validation x 1): "
          f"{flops / 1e9:.1f}; achieved: swift {flops / swift_median / 1e9:.1f} GFLOP/s, scvi-tools "
          f"{flops / scvi_median / 1e9:.1f} GFLOP/s (the issue's floor: ~215 GFLOP/s, target 215/1.3 = 165)")
    if args.ceiling and args.device == "cpu":
        sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
        from conv_ceiling import step_ceiling
        rows, step_flops, best = step_ceiling(args.threads)
        print(f"libtorch conv ceiling, one training step of 128 regions at {args.threads} threads "
              "(GFLOP/s per layer, conv1d | channels-last conv2d):")
        for name, gflop, rates in rows:
            print(f"  {name:10} {gflop:7.1f} GFLOP  " + "  ".join(f"{m} {r:6.1f}" for m, r in rates.items()))
        ceiling = step_flops / best / 1e9
        print(f"  all convolutions: {ceiling:.1f} GFLOP/s at best -> an epoch of these FLOPs takes at least "
              f"{flops / ceiling / 1e9:.2f} s; swift reaches {flops / swift_median / 1e9 / ceiling:.0%} of it")
    if swift_auroc is not None:
        print(f"swift held-out AUROC after {args.epochs} epochs: {swift_auroc:.3f}")


if __name__ == "__main__":
    sys.exit(main())
