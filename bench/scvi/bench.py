"""scVI training benchmark: swift-singlecell (`singlecell scvi train`) against scvi-tools 1.4.2,
same data, same settings, same run.

    swift build -c release --product singlecell
    /root/fixenv/bin/python bench/scvi/bench.py [--speed-epochs 12] [--quality-epochs 100]

Data: ../shared/data/pbmc_frozen_sorted_5k.h5ad (5,036 real 10x PBMCs, two batches), reduced to
the 2,000 seurat_v3 highly variable genes (scanpy, on counts, batch-aware), counts in X.

Settings on both sides: scVI defaults (1 hidden layer of 128, 10 latent, zinb, gene
dispersion, observed library size), batch_key "batch", batch size 128, Adam lr 1e-3 / eps
0.01 / weight decay 1e-6, KL warm-up 400 epochs, train_size 0.9 with seed 0, validation
after every epoch (scvi-tools: check_val_every_n_epoch=1; its default skips it). Both sides
draw the same train/validation split (swift-singlecell reproduces numpy's RandomState
permutation), so the held-out cells are the same.

1. Speed: `--speed-epochs` epochs with 1 and with 2 threads; the median seconds per epoch
   (first epoch excluded) on each side and the ratio scvi-tools / Swift. Also the model's
   FLOPs per epoch against the ~245 GFLOP/s f32 matmul floor of 2 cores.
2. Quality: `--quality-epochs` epochs (with `--quality-threads`, default 2); the held-out (validation)
   reconstruction loss of the last epoch on each side, and the relative difference.
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
DATA = ROOT.parent / "shared" / "data" / "pbmc_frozen_sorted_5k.h5ad"

SCVI_SCRIPT = r"""
import json, sys, time
import torch
torch.set_num_threads(int(sys.argv[2]))
import anndata as ad, scvi
from lightning.pytorch.callbacks import Callback
scvi.settings.seed = 0
scvi.settings.dl_num_workers = 0

class EpochTimer(Callback):
    def __init__(self): self.times = []
    def on_train_epoch_start(self, trainer, module): self.start = time.perf_counter()
    def on_validation_epoch_end(self, trainer, module):
        if not trainer.sanity_checking: self.times.append(time.perf_counter() - self.start)

adata = ad.read_h5ad(sys.argv[1])
scvi.model.SCVI.setup_anndata(adata, batch_key="batch")
model = scvi.model.SCVI(adata)
timer = EpochTimer()
start = time.perf_counter()
model.train(max_epochs=int(sys.argv[3]), batch_size=128, accelerator="cpu", devices=1,
            enable_progress_bar=False, callbacks=[timer], early_stopping=False, check_val_every_n_epoch=1)
total = time.perf_counter() - start
history = model.history
print(json.dumps({
    "epoch_seconds": timer.times, "train_seconds": total,
    "reconstruction_loss_validation": float(history["reconstruction_loss_validation"].iloc[-1, 0]),
    "elbo_validation": float(history["elbo_validation"].iloc[-1, 0]),
    "n_validation": int(len(model.validation_indices)),
}))
"""


def prepare(tmp):
    import scanpy as sc

    adata = sc.read_h5ad(DATA)
    sc.pp.highly_variable_genes(adata, flavor="seurat_v3", n_top_genes=2000, batch_key="batch", subset=True)
    path = tmp / "pbmc5k_hvg2000.h5ad"
    adata.write_h5ad(path)
    return path, adata.n_obs, adata.n_vars


# The singlecell CLI keeps freed memory (mallopt, see Runtime.retainFreedMemory); scvi-tools
# runs with the same glibc setting so that allocation policy is not part of the comparison.
MALLOC_TUNABLES = "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=68719476736"


def run_scvi_tools(path, threads, epochs):
    env = dict(os.environ, GLIBC_TUNABLES=MALLOC_TUNABLES)
    out = subprocess.run([sys.executable, "-c", SCVI_SCRIPT, str(path), str(threads), str(epochs)],
                         check=True, capture_output=True, text=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_swift(binary, path, threads, epochs, tmp):
    outdir = tmp / f"swift-{threads}-{epochs}"
    subprocess.run([binary, "scvi", "train", str(path), "-o", str(outdir), "--batch-key", "batch",
                    "--max-epochs", str(epochs), "--threads", str(threads), "--seed", "0", "--quiet"],
                   check=True, capture_output=True, text=True)
    metrics = json.loads((outdir / "metrics.json").read_text())
    return metrics


def flops_per_epoch(n_genes, n_train, n_validation, n_batch=2, hidden=128, latent=10):
    """Matmul FLOPs of the layers scVI runs by default (the library encoder is skipped with the
    observed library size): 2·in·out per cell forward; a training step adds the weight gradient
    (2·in·out) and the input gradient (2·in·out) of every layer but the first."""
    layers = [(n_genes, hidden), (hidden, latent), (hidden, latent),            # z encoder
              (latent + n_batch, hidden), (hidden, n_genes), (hidden, n_genes)]  # decoder: scale, dropout
    forward = sum(2 * i * o for i, o in layers)
    first = 2 * n_genes * hidden
    return (3 * forward - first) * n_train + forward * n_validation


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default=str(ROOT / ".build" / "release" / "singlecell"))
    parser.add_argument("--speed-epochs", type=int, default=12)
    parser.add_argument("--quality-epochs", type=int, default=100)
    parser.add_argument("--quality-threads", type=int, default=2)
    parser.add_argument("--skip-speed", action="store_true")
    args = parser.parse_args()
    if not DATA.exists():
        sys.exit(f"{DATA} is missing: run bench/data/make_bench_counts.py first")

    with tempfile.TemporaryDirectory() as name:
        tmp = pathlib.Path(name)
        path, n_cells, n_genes = prepare(tmp)
        print(f"data: {n_cells} cells x {n_genes} genes (pbmc_frozen_sorted_5k, 2,000 HVGs), batch size 128")
        n_validation = n_cells - -(-9 * n_cells // 10)
        flops = flops_per_epoch(n_genes, n_cells - n_validation, n_validation)
        results = {"n_cells": n_cells, "n_genes": n_genes, "flops_per_epoch": flops, "speed": {}}
        for threads in () if args.skip_speed else (1, 2):
            ref = run_scvi_tools(path, threads, args.speed_epochs)
            ours = run_swift(args.binary, path, threads, args.speed_epochs, tmp)
            ref_epoch = statistics.median(ref["epoch_seconds"][1:])
            our_epoch = statistics.median(ours["epoch_seconds"][1:])
            results["speed"][threads] = {"scvi_tools": ref_epoch, "swift": our_epoch, "ratio": ref_epoch / our_epoch}
            print(f"{threads} thread(s): scvi-tools {ref_epoch:.3f} s/epoch, swift {our_epoch:.3f} s/epoch, "
                  f"ratio {ref_epoch / our_epoch:.2f}x; swift {flops / our_epoch / 1e9:.1f} GFLOP/s "
                  f"({flops / 1e9:.1f} GFLOP/epoch, floor {flops / 245e9:.3f} s at 245 GFLOP/s)")

        ref = run_scvi_tools(path, args.quality_threads, args.quality_epochs)
        ours = run_swift(args.binary, path, args.quality_threads, args.quality_epochs, tmp)
        ref_rec, our_rec = ref["reconstruction_loss_validation"], ours["reconstruction_loss_validation"]
        results["quality"] = {"epochs": args.quality_epochs, "scvi_tools": ref_rec, "swift": our_rec,
                              "relative_difference": (our_rec - ref_rec) / ref_rec,
                              "scvi_tools_train_seconds": ref["train_seconds"], "swift_train_seconds": ours["train_seconds"]}
        print(f"held-out reconstruction loss after {args.quality_epochs} epochs ({ref['n_validation']} cells): "
              f"scvi-tools {ref_rec:.2f}, swift {our_rec:.2f} ({100 * (our_rec - ref_rec) / ref_rec:+.2f}%); "
              f"total training time scvi-tools {ref['train_seconds']:.1f} s, swift {ours['train_seconds']:.1f} s")
        print(json.dumps(results))


if __name__ == "__main__":
    main()
