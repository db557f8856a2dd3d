"""Reads bench/gpu/run's OUT on the CPU machine and prints the GPU checks' figures.

    python3 bench/gpu/compare.py OUT .build-gpu/carry/cpu_embed.h5ad

Needs numpy and h5py only."""
import csv
import json
import os
import sys

import h5py
import numpy as np


def embedding(path):
    with h5py.File(path, "r") as f:
        return np.asarray(f["obsm"]["X_scGPT"], dtype=np.float64)


def metrics(folder):
    path = os.path.join(folder, "metrics.json")
    return json.load(open(path)) if os.path.exists(path) else None


def history(folder):
    path = os.path.join(folder, "history.csv")
    return list(csv.DictReader(open(path))) if os.path.exists(path) else None


out, cpu_path = sys.argv[1], sys.argv[2]
print(open(os.path.join(out, "machine.txt")).read().strip())
print(open(os.path.join(out, "steps.tsv")).read().strip())
cpu = embedding(cpu_path)
for p in ("fp32", "bf16"):
    path = os.path.join(out, f"embed_{p}.h5ad")
    if os.path.exists(path):
        gpu = embedding(path)
        cos = (gpu * cpu).sum(1) / np.linalg.norm(gpu, axis=1) / np.linalg.norm(cpu, axis=1)
        print(f"embed {p} on CUDA vs CPU fp32: max |diff| {np.abs(gpu - cpu).max():.2e}, min cosine {cos.min():.5f}, cells {len(cos)}")
for p in ("bf16", "bf16_cudnn", "fp32"):  # bf16_cudnn: SINGLECELL_CUDNN_ATTENTION=1
    m = metrics(os.path.join(out, f"annotate_{p}"))
    if m:
        keys = ["median_step_tokens_per_second", "tokens_per_second", "epoch_seconds", "accuracy", "macro_f1", "train_loss", "validation_loss"]
        print(f"annotate {p}: " + ", ".join(f"{k} {m[k]}" for k in keys if k in m))
for p in ("bf16", "bf16_cudnn", "fp32"):
    m = metrics(os.path.join(out, f"pretrain_both_{p}"))
    if m:
        print(f"pretrain both {p}: " + ", ".join(f"{k} {m.get(k)}" for k in ["steps", "median_step_tokens_per_second", "epoch_seconds", "train_loss"]))
m = metrics(os.path.join(out, "integrate_auto"))
if m:
    print("integrate (auto = fp32): " + ", ".join(f"{k} {m.get(k)}" for k in ["median_step_tokens_per_second", "epoch_seconds", "total", "bio_conservation", "batch_correction"]))
# One rank on NCCL (CUDA) and on Gloo (CPU) take the same minibatches: only the arithmetic differs.
a, b = history(os.path.join(out, "scvi_nccl1")), history(os.path.join(out, "scvi_gloo1_cpu"))
if a and b:
    key = "elbo_train"
    rel = [abs(float(x[key]) - float(y[key])) / abs(float(y[key])) for x, y in zip(a, b)]
    print(f"scVI one rank, NCCL on CUDA vs Gloo on CPU: {len(a)}/{len(b)} epochs, last {key} {a[-1][key]} vs {b[-1][key]}, max relative diff {max(rel):.2e}")
for name in ("scvi_cuda", "scvi_nccl1", "scvi_gloo1_cpu"):
    m = metrics(os.path.join(out, name))
    if m:
        print(f"{name}: " + ", ".join(f"{k} {m[k]}" for k in m if "second" in k or "epoch" in k))
memory = os.path.join(out, "gpu-memory.csv")
if os.path.exists(memory):
    used = [int(line.split(",")[1].split()[0]) for line in open(memory) if "," in line and "MiB" in line]
    if used:
        print(f"GPU memory in use: peak {max(used)} MiB over {len(used)} samples (every 0.5 s)")
log = os.path.join(out, "scvi_nccl2_same_gpu.log")
if os.path.exists(log):
    print("two ranks on one GPU:", " | ".join(open(log).read().strip().splitlines()[-3:]))
# The profiled pretraining steps (bench/trace_summary.py's tables), bf16 against fp32.
for p in ("bf16", "fp32"):
    path = os.path.join(out, f"profile_{p}.txt")
    if os.path.exists(path):
        print(f"\n== profiled pretraining, {p}\n" + open(path).read().strip())
