"""scGPT generative pretraining throughput: swift-singlecell against the reference loop, same run.

    python3 bench/scgpt/pretrain_bench.py [--data DATA.h5ad] [--steps 20] [--threads 1] \
        [--configs default,small] [-o bench-results/scgpt-pretrain]

Needs only the Python standard library; the reference side runs in its own environment
(SCGPT_PYTHON, default /root/venvs/scgpt/bin/python) with bench/scgpt/pretrain_reference.py, the
Swift side is `.build/release/singlecell scgpt pretrain --backed --objective generative` (build it
first: `swift build -c release --product singlecell`). Run it on an idle machine.

Both sides: the same cells (every cell of DATA, shuffled), raw counts binned per cell (51 bins),
<cls> first, cells longer than --max-length subsampled, generative split ratio 0.25/0.5/0.75 per
minibatch, MVC (GEPC) and the second pass from step 0, Adam, cosine schedule with warm-up,
gradient clipping at 1, dropout 0.2, float32 on CPU with the same number of threads. A step's
tokens are its cells' non-padding tokens (<cls> included), counted once (not again for the second
pass). Reported per side: the median over steps 4… of step tokens / step seconds ("compute":
from the collated minibatch to the optimiser update; the Swift step also includes padding and
the generative split of the minibatch, which the reference's figure leaves out) and the peak
resident memory of the process. Each side runs twice, under libtorch's own choice of CPU kernels
and under ATEN_CPU_CAPABILITY=avx2, and keeps the faster (both figures are recorded).

The reference applies dropout to the attention probabilities as well (0.2); ours defaults to
none there (`--attention-dropout 0`, which keeps libtorch's fused attention). Both Swift variants
are run: `swift` (default) and `swift (attention dropout 0.2)` (same computation as the reference).

Configurations (the reference script's defaults and a small one):
  default: batch 32, max length 512, d_model 64, 4 heads, d_hid 64, 4 layers
  small:   batch 32, max length 128, d_model 32, 2 heads, d_hid 32, 2 layers
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = {
    "default": dict(batch_size=32, max_len=512, d_model=64, nhead=4, d_hid=64, nlayers=4),
    "small": dict(batch_size=32, max_len=128, d_model=32, nhead=2, d_hid=32, nlayers=2),
}


def run(cmd, log, env=None):
    """Runs cmd (with env added), returns (wall seconds, peak RSS MiB of that child)."""
    start = time.time()
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
        _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"failed ({log}): {' '.join(map(str, cmd))}\n" + Path(log).read_text()[-3000:])
    return time.time() - start, usage.ru_maxrss / 1024


def best_kernels(side, *args):
    """side(*args, env) under libtorch's own choice of CPU kernels and under ATEN_CPU_CAPABILITY=avx2;
    the faster run, with both figures (on a Zen 5 host torch 2.3.1's AVX-512 softmax ran 8x slower
    than its AVX2 one, which would flatter the comparison)."""
    runs = {cap: side(*args, {} if cap == "default" else {"ATEN_CPU_CAPABILITY": cap}, cap) for cap in ("default", "avx2")}
    cap = max(runs, key=lambda k: runs[k]["median_tokens_per_s"])
    return {**runs[cap], "kernels": cap, "by_kernels": {k: r["median_tokens_per_s"] for k, r in runs.items()}}


def reference(a, c, out, env, tag):
    out = Path(f"{out}-{tag}")
    py = os.environ.get("SCGPT_PYTHON", "/root/venvs/scgpt/bin/python")
    cmd = [py, str(ROOT / "bench/scgpt/pretrain_reference.py"), a.data, "-o", str(out), "--threads", str(a.threads),
           "--steps", str(a.steps), "--warmup-steps", "3", "--batch-size", str(c["batch_size"]),
           "--max-seq-len", str(c["max_len"]), "--d-model", str(c["d_model"]), "--nhead", str(c["nhead"]),
           "--d-hid", str(c["d_hid"]), "--nlayers", str(c["nlayers"]), "--dropout", "0.2", "--lr", "1e-3",
           "--warmup-ratio", "0.1", "--second-pass-after", "0", "--seed", "0"]
    wall, rss = run(cmd, out.with_suffix(".log"), env)
    r = json.loads((out / "result.json").read_text())
    return {"median_tokens_per_s": r["compute_only"]["median_tokens_per_s"], "peak_rss_mib": rss, "wall_seconds": wall,
            "versions": r.get("versions"), "mean_tokens_per_step": r["timed_tokens"] / max(r["timed_steps"], 1)}


def swift(a, c, out, attention_dropout, env, tag):
    out = Path(f"{out}-{tag}")
    cmd = [a.singlecell, "scgpt", "pretrain", a.data, "--backed", "-o", str(out), "--threads", str(a.threads),
           "--objective", "generative", "--schedule", "cosine", "--warmup", "0.1", "--epochs", "1",
           "--max-steps", str(a.steps), "--validation-fraction", "0", "--batch-size", str(c["batch_size"]),
           "--max-length", str(c["max_len"]), "--d-model", str(c["d_model"]), "--nheads", str(c["nhead"]),
           "--d-hid", str(c["d_hid"]), "--nlayers", str(c["nlayers"]), "--dropout", "0.2",
           "--attention-dropout", str(attention_dropout), "--lr", "1e-3", "--second-pass-after", "0", "--seed", "0"]
    wall, rss = run(cmd, Path(str(out) + ".log"), env)
    m = json.loads((out / "metrics.json").read_text())
    return {"median_tokens_per_s": m["median_step_tokens_per_second"], "peak_rss_mib": rss, "wall_seconds": wall,
            "mean_tokens_per_step": m["tokens"] / max(m["steps"], 1)}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(ROOT.parent / "shared/data/pbmc_frozen_sorted_5k.h5ad"))
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--configs", default="default,small")
    p.add_argument("--singlecell", default=str(ROOT / ".build/release/singlecell"))
    p.add_argument("-o", "--output", default="bench-results/scgpt-pretrain")
    a = p.parse_args()
    out = Path(a.output)
    out.mkdir(parents=True, exist_ok=True)
    results = {"data": a.data, "steps": a.steps, "threads": a.threads,
               "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count()}, "configs": {}}
    rows = ["| config | side | median tokens/s | ratio to reference | kernels (default / avx2 tokens/s) | peak RSS (MiB) | tokens/step |",
            "|---|---|---:|---:|---|---:|---:|"]
    for name in a.configs.split(","):
        c = CONFIGS[name]
        sides = {"reference": best_kernels(reference, a, c, out / f"{name}-reference"),
                 "swift": best_kernels(swift, a, c, out / f"{name}-swift", 0.0),
                 "swift (attention dropout 0.2)": best_kernels(swift, a, c, out / f"{name}-swift-attention-dropout", 0.2)}
        base = sides["reference"]["median_tokens_per_s"]
        for side, r in sides.items():
            r["ratio"] = r["median_tokens_per_s"] / base
            by = r["by_kernels"]
            rows.append(f"| {name} | {side} | {r['median_tokens_per_s']:,.0f} | {r['ratio']:.2f}× | {r['kernels']} "
                        f"({by['default']:,.0f} / {by['avx2']:,.0f}) | {r['peak_rss_mib']:,.0f} | {r['mean_tokens_per_step']:,.0f} |")
        results["configs"][name] = {"settings": c, "sides": sides}
        print("\n".join(rows[-3:]), flush=True)
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    (out / "table.md").write_text("\n".join(rows) + "\n")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
