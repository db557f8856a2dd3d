"""The practical libtorch ceiling for scBasset's convolutions on this CPU.

    /root/fixenv/bin/python bench/scbasset/conv_ceiling.py [--threads 1 2] [--batch 128] [--reps 5]

For every convolution of the default 1344-bp network (scvi-tools' towers 288…512, batch 128) it
times, in PyTorch on the same libtorch the Swift build links, the forward pass and the backward
pass (input gradient + weight gradient; the stem needs no input gradient) and prints GFLOP/s with
FLOPs counted as 2·N·Cout·Cin·K·Lout per pass (forward 1×, backward 2×, stem backward 1×). Each
shape is timed in several formulations, all the same math:

  conv1d   at::conv1d on contiguous [N, C, L] (what the model uses; oneDNN on CPU)
  nhwc     conv2d with H = 1 in channels_last memory format (oneDNN without the NCW reorders)
  gemm     K shifted GEMMs over a length-major [L, N, C] layout (MKL sgemm, no im2col copy)

plus a plain 2048² sgemm, the machine's matrix-multiply ceiling through the same library.
The fastest of `--reps` timed repetitions after one warm-up is reported (a ceiling: on a shared
machine the slower ones measure the other load). Run it with
GLIBC_TUNABLES=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=68719476736, as bench.py does,
so that page faults of fresh mmaps are not counted against the kernels.
"""

import argparse
import time

import torch
import torch.nn.functional as F

TOWER = [288, 323, 362, 406, 456, 512]


def layer_shapes(seq_len=1344):
    """(name, Cin, Cout, K, L) of every convolution, L the (same-padded) output length."""
    shapes = [("stem", 4, 288, 17, seq_len)]
    length = (seq_len + 2 - 3) // 3 + 1
    channels = 288
    for i, width in enumerate(TOWER):
        shapes.append((f"tower{i + 1}", channels, width, 5, length))
        channels = width
        length //= 2
    shapes.append(("pointwise", channels, 256, 1, length))
    return shapes


def timed(fn, reps):
    fn()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def conv1d_case(n, cin, cout, k, length, stem):
    x = torch.randn(n, cin, length, requires_grad=not stem)
    w = torch.randn(cout, cin, k, requires_grad=True)
    g = torch.randn(n, cout, length)

    def fwd():
        with torch.no_grad():
            F.conv1d(x, w, padding=k // 2)

    def step():
        y = F.conv1d(x, w, padding=k // 2)
        y.backward(g)
    return fwd, step


def nhwc_case(n, cin, cout, k, length, stem):
    x = torch.randn(n, cin, 1, length).to(memory_format=torch.channels_last).requires_grad_(not stem)
    w = torch.randn(cout, cin, 1, k).to(memory_format=torch.channels_last).requires_grad_(True)
    g = torch.randn(n, cout, 1, length).to(memory_format=torch.channels_last)

    def fwd():
        with torch.no_grad():
            F.conv2d(x, w, padding=(0, k // 2))

    def step():
        y = F.conv2d(x, w, padding=(0, k // 2))
        y.backward(g)
    return fwd, step


def gemm_case(n, cin, cout, k, length, stem):
    # length-major layout [L + K - 1, N, Cin] (padded); tap j is the contiguous slice j:j+L.
    x = torch.randn(length + k - 1, n, cin, requires_grad=not stem)
    w = torch.randn(k, cin, cout, requires_grad=True)
    g = torch.randn(length * n, cout)

    def conv():
        flat = x.reshape((length + k - 1) * n, cin)
        y = flat[: length * n] @ w[0]
        for j in range(1, k):
            y = torch.addmm(y, flat[j * n: (j + length) * n], w[j])
        return y

    def fwd():
        with torch.no_grad():
            conv()

    def step():
        conv().backward(g)
    return fwd, step


CASES = {"conv1d": conv1d_case, "nhwc": nhwc_case, "gemm": gemm_case}


def step_ceiling(threads, batch=128, reps=3, methods=("conv1d", "nhwc")):
    """Per layer the fastest training (forward + backward) time over `methods`; returns
    (rows of (name, train GFLOP, {method: GFLOP/s}), total train FLOPs, best total seconds)."""
    torch.set_num_threads(threads)
    rows, flops_total, best_total = [], 0.0, 0.0
    for name, cin, cout, k, length in layer_shapes():
        stem = name == "stem"
        train_flops = 2.0 * batch * cout * cin * k * length * (2 if stem else 3)
        rates = {}
        for m in methods:
            _, step = CASES[m](batch, cin, cout, k, length, stem)
            rates[m] = train_flops / timed(step, reps) / 1e9
        flops_total += train_flops
        best_total += train_flops / (max(rates.values()) * 1e9)
        rows.append((name, train_flops / 1e9, rates))
    return rows, flops_total, best_total


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--methods", nargs="+", default=["conv1d", "nhwc", "gemm"])
    args = parser.parse_args()
    cases = CASES
    n = args.batch
    print(f"torch {torch.__version__}, batch {n}; GFLOP/s of forward (fwd) and forward+backward (train)")
    for threads in args.threads:
        torch.set_num_threads(threads)
        a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
        mm = timed(lambda: a @ b, args.reps)
        print(f"\n== {threads} thread(s): sgemm 2048^3 {2 * 2048 ** 3 / mm / 1e9:.1f} GFLOP/s")
        totals = {m: [0.0, 0.0] for m in args.methods}
        flops_total = 0.0
        print(f"{'layer':10} {'Cin':>4} {'Cout':>4} {'K':>3} {'L':>5} {'train GFLOP':>11} "
              + " ".join(f"{m + ' fwd':>11} {m + ' train':>12}" for m in args.methods))
        for name, cin, cout, k, length in layer_shapes():
            stem = name == "stem"
            fwd_flops = 2.0 * n * cout * cin * k * length
            train_flops = fwd_flops * (2 if stem else 3)
            flops_total += train_flops
            row = f"{name:10} {cin:4} {cout:4} {k:3} {length:5} {train_flops / 1e9:11.1f} "
            for m in args.methods:
                fwd, step = cases[m](n, cin, cout, k, length, stem)
                tf = timed(fwd, args.reps)
                ts = timed(step, args.reps)
                totals[m][0] += ts
                row += f"{fwd_flops / tf / 1e9:11.1f} {train_flops / ts / 1e9:12.1f} "
            print(row)
        print("all convs, train: " + ", ".join(
            f"{m} {totals[m][0]:.3f} s/step = {flops_total / totals[m][0] / 1e9:.1f} GFLOP/s" for m in args.methods))


if __name__ == "__main__":
    main()
