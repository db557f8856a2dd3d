"""Data-parallel scVI benchmark: `singlecell scvi train --nproc 2` against one process.

    swift build -c release --product singlecell
    bench/ddp/run [--epochs 40] [--repeats 3] [--network]

Data: ../shared/data/pbmc_frozen_sorted_5k.h5ad (5,036 real PBMCs, two batches), reduced to
2,000 seurat_v3 HVGs by `singlecell preprocess` (counts stay in X). scVI defaults, batch_key
"batch", seed 0, train_size 0.9 (the same 503 held-out cells in every run), KL warm-up 400.

1. Local: seconds per epoch (median of epochs 2..N, rank 0's clock; median over --repeats
   round-robin runs) and the held-out
   reconstruction loss after N epochs for: one process with 2 and with 1 threads; --nproc 2
   (one thread each; 128 cells per rank and step, an effective batch of 256); --nproc 2 with
   --batch-size 64 (effective 128, the single process's step count). The machine's cores are
   shared by the ranks: this measures overhead and convergence, not multi-machine speed-up.
2. --network (root, `ip netns` and `tc`): the two ranks in two network namespaces joined by a
   veth pair, each link shaped with a tbf qdisc to a given rate; rank 0's seconds per epoch
   at each rate. netem (latency) is not available in this kernel, so latency is not emulated.
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


def prepare(binary, tmp):
    path = tmp / "pbmc5k_hvg2000.h5ad"
    subprocess.run([binary, "preprocess", str(DATA), "-o", str(path), "--hvg", "2000", "--hvg-flavor", "seurat_v3",
                    "--batch-key", "batch", "--subset"], check=True, capture_output=True, text=True)
    return path


def train(binary, data, outdir, epochs, extra, env=None):
    start = time.perf_counter()
    subprocess.run([binary, "scvi", "train", str(data), "-o", str(outdir), "--batch-key", "batch",
                    "--max-epochs", str(epochs), "--seed", "0", "--quiet", "--checkpoint-every", "0"] + extra,
                   check=True, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    metrics = json.loads((outdir / "metrics.json").read_text())
    return {"epoch_seconds": statistics.median(metrics["epoch_seconds"][1:] or metrics["epoch_seconds"]), "wall_seconds": wall,
            "train_seconds": metrics["train_seconds"],
            "reconstruction_loss_validation": metrics["reconstruction_loss_validation"],
            "max_weight_difference_across_ranks": metrics.get("max_weight_difference_across_ranks")}


def parameter_bytes(binary, data, tmp):
    """Bytes of float32 parameters (what DDP all-reduces each step), from a 1-epoch model."""
    out = tmp / "size"
    train(binary, data, out, 1, ["--threads", "1"])
    raw = (out / "model.safetensors").read_bytes()
    header = json.loads(raw[8:8 + int.from_bytes(raw[:8], "little")])
    return sum(end - start for key, v in header.items() if key != "__metadata__"
               and not any(key.endswith(s) for s in ("running_mean", "running_var", "num_batches_tracked",
                                                      "library_log_means", "library_log_vars"))
               for start, end in [v["data_offsets"]])


def sh(*args, check=True):
    return subprocess.run(list(args), check=check, capture_output=True, text=True)


def network(binary, data, tmp, epochs, rates):
    """Rank 0 in namespace ddpA (10.77.0.1), rank 1 in ddpB (10.77.0.2), veth vA–vB, tbf on both ends."""
    for ns in ("ddpA", "ddpB"):
        sh("ip", "netns", "del", ns, check=False)
    sh("ip", "netns", "add", "ddpA")
    sh("ip", "netns", "add", "ddpB")
    results = {}
    try:
        sh("ip", "link", "add", "vA", "type", "veth", "peer", "name", "vB")
        sh("ip", "link", "set", "vA", "netns", "ddpA")
        sh("ip", "link", "set", "vB", "netns", "ddpB")
        for ns, dev, addr in (("ddpA", "vA", "10.77.0.1/24"), ("ddpB", "vB", "10.77.0.2/24")):
            sh("ip", "-n", ns, "addr", "add", addr, "dev", dev)
            sh("ip", "-n", ns, "link", "set", dev, "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        for rate in rates:
            for ns, dev in (("ddpA", "vA"), ("ddpB", "vB")):
                sh("ip", "netns", "exec", ns, "tc", "qdisc", "del", "dev", dev, "root", check=False)
                if rate != "unlimited":
                    sh("ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", dev, "root", "tbf", "rate", rate,
                       "burst", "1mb", "latency", "100ms")
            procs = []
            for rank, (ns, dev) in enumerate((("ddpA", "vA"), ("ddpB", "vB"))):
                out = tmp / f"net-{rate}-{rank}"
                env = dict(os.environ, OMP_NUM_THREADS="1")
                cmd = ["ip", "netns", "exec", ns, binary, "scvi", "train", str(data), "-o", str(out), "--batch-key", "batch",
                       "--max-epochs", str(epochs), "--seed", "0", "--quiet", "--checkpoint-every", "0", "--threads", "1",
                       "--rank", str(rank), "--world-size", "2", "--master", "10.77.0.1:29531", "--gloo-interface", dev,
                       "--dist-timeout", "120"]
                procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env))
            for p in procs:
                _, err = p.communicate()
                if p.returncode != 0:
                    raise RuntimeError(f"rank failed at {rate}: {err[-2000:]}")
            metrics = json.loads((tmp / f"net-{rate}-0" / "metrics.json").read_text())
            results[rate] = statistics.median(metrics["epoch_seconds"][1:])
            print(f"network {rate:>9}: {results[rate]:.3f} s/epoch", flush=True)
    finally:
        for ns in ("ddpA", "ddpB"):
            sh("ip", "netns", "del", ns, check=False)
    return results


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default=str(ROOT / ".build" / "release" / "singlecell"))
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--network", action="store_true", help="also measure across network namespaces (root)")
    parser.add_argument("--network-epochs", type=int, default=6)
    parser.add_argument("--rates", default="unlimited,10gbit,1gbit,100mbit")
    args = parser.parse_args()
    if not DATA.exists():
        sys.exit(f"{DATA} is missing: see bench/data/README.md")
    with tempfile.TemporaryDirectory() as name:
        tmp = pathlib.Path(name)
        data = prepare(args.binary, tmp)
        size = parameter_bytes(args.binary, data, tmp)
        print(f"data: pbmc_frozen_sorted_5k, 2,000 HVGs; {size / 1e6:.2f} MB of float32 parameters all-reduced per step",
              flush=True)
        configs = [
            ("1 process, 2 threads", ["--threads", "2"]),
            ("1 process, 1 thread", ["--threads", "1"]),
            ("--nproc 2, batch 128/rank", ["--nproc", "2"]),
            ("--nproc 2, batch 64/rank", ["--nproc", "2", "--batch-size", "64"]),
        ]
        results = {"parameter_bytes": size, "epochs": args.epochs, "repeats": args.repeats, "local": {}}
        # Round-robin over the configurations, so load from other work hits each alike.
        runs = {label: [] for label, _ in configs}
        for repeat in range(args.repeats):
            for label, extra in configs:
                r = train(args.binary, data, tmp / f"{label.replace(' ', '_').replace('/', '_')}-{repeat}", args.epochs, extra)
                runs[label].append(r)
                print(f"  run {repeat + 1} {label}: {r['epoch_seconds']:.3f} s/epoch, load {os.getloadavg()[0]:.1f}", flush=True)
        for label, _ in configs:
            r = dict(runs[label][0], epoch_seconds=statistics.median(x["epoch_seconds"] for x in runs[label]),
                     epoch_seconds_runs=[x["epoch_seconds"] for x in runs[label]])
            results["local"][label] = r
            print(f"{label:>28}: {r['epoch_seconds']:.3f} s/epoch (median of {args.repeats}), held-out reconstruction "
                  f"{r['reconstruction_loss_validation']:.2f} after {args.epochs} epochs", flush=True)
        base = results["local"]["1 process, 2 threads"]["epoch_seconds"]
        for label, r in results["local"].items():
            print(f"{label:>28}: {base / r['epoch_seconds']:.2f}x the 2-thread single process's epoch rate")
        if args.network:
            results["network"] = network(args.binary, data, tmp, args.network_epochs, args.rates.split(","))
        print(json.dumps(results))


if __name__ == "__main__":
    main()
