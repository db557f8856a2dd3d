"""Where one scBasset training step spends its time in PyTorch (scvi-tools' ScBassetModule).

    /root/fixenv/bin/python bench/scbasset/step_profile.py [--threads 2] [--batch 128] [--steps 5]

The default 1344-bp network, batch 128 regions, a few hundred cells, Adam(0.01, 0.95/0.9995):
the median wall time of forward (augmentation, encoder, logits, loss), backward and optimizer step,
then torch.profiler's self-CPU time per op over the timed steps, so the share of the convolutions
(forward `mkldnn_convolution`, backward `convolution_backward`) against the rest is visible.
"""

import argparse
import statistics
import time

import torch
from scvi.external.scbasset._module import ScBassetModule


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--cells", type=int, default=600)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--top", type=int, default=18)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    module = ScBassetModule(n_cells=args.cells)
    module.train()
    optimizer = torch.optim.Adam(module.parameters(), lr=0.01, betas=(0.95, 0.9995))
    codes = torch.randint(0, 4, (args.batch, 1344))
    target = (torch.rand(args.batch, args.cells) < 0.2).float()

    def forward():
        h = module.inference(codes)["region_embedding"]
        logits = module.generative(h)["reconstruction_logits"]
        return torch.nn.functional.binary_cross_entropy_with_logits(logits, target)

    phases = {"forward": [], "backward": [], "optimizer": []}

    def step(record):
        t0 = time.perf_counter()
        loss = forward()
        t1 = time.perf_counter()
        optimizer.zero_grad()
        loss.backward()
        t2 = time.perf_counter()
        optimizer.step()
        t3 = time.perf_counter()
        if record:
            phases["forward"].append(t1 - t0)
            phases["backward"].append(t2 - t1)
            phases["optimizer"].append(t3 - t2)

    step(False)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        for _ in range(args.steps):
            step(True)
    medians = {k: statistics.median(v) for k, v in phases.items()}
    total = sum(medians.values())
    print(f"torch {torch.__version__}, {args.threads} threads, batch {args.batch}, {args.cells} cells")
    print("median per step: " + ", ".join(f"{k} {v * 1e3:.0f} ms" for k, v in medians.items())
          + f", total {total * 1e3:.0f} ms")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.top))


if __name__ == "__main__":
    main()
