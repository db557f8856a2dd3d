"""scGPT fine-tuning benchmark: swift-singlecell (`singlecell scgpt annotate|integrate|embed`)
against the reference scgpt 0.2.4 (bench/scgpt/reference.py, run in its own environment), same
data, seeds, epochs and threads, in the same run.

    bench/scgpt/run [--epochs E] [--threads T] [--seeds 0 1 2] [--only annotate integrate embed]
                    [--out DIR] [--subsample N]

1. Annotation (Tutorial_Annotation): the 2,140 bead-sorted cells of pbmc_frozen_sorted_5k
   (train split 1,926 -> 10 % validation, test split 214), 1,200 seurat_v3 genes of the train
   cells, CE on the <cls> classifier, batch 32. Test accuracy and macro-F1.
2. Integration (Tutorial_Integration): NeurIPS 2021 BMMC CITE RNA (600 cells, 1,000 genes) and
   multiome RNA (500 x 600), GEP + GEPC with zero probabilities, 10 x ECS, DAB, DSBN, per-batch
   minibatches of 64, 40 % masked. The scib aggregates of both embeddings by
   `singlecell metrics` (the same code for both; PCR comparison against X_pca of the counts).
3. Embedding speed: embed_data (reference) and `singlecell scgpt embed` on the model folders
   the REFERENCE saved (annotation folder on all 5,036 PBMCs, each integration folder on its
   data), median of --repeats runs; the embeddings compared (the reference with ties to the
   lowest bin, as Swift's default, and with its own random ties).

Seconds per epoch are the median after the first epoch (per run, then the median over seeds);
ratios are reference / Swift for seconds and Swift / reference for cells per second, so above 1
means Swift is faster. Writes DIR/report.md, DIR/results.json and every run's folder and log.
"""

import argparse
import csv
import json
import os
import pathlib
import re
import statistics
import subprocess
import sys
import time
import traceback

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
REFERENCE = HERE / "reference.py"
INTEGRATION_SETS = ["cite", "multiome"]
LABELS = {"cite": "NeurIPS BMMC CITE RNA", "multiome": "NeurIPS BMMC multiome RNA", "pbmc": "PBMC sorted"}


class Runner:
    def __init__(self, out, env=None):
        self.out = out
        self.logs = out / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.env = env or {}
        self.n = 0

    def __call__(self, args, name, threads=None):
        """Runs a command, its output to logs/NN_name.{out,err}; raises with the stderr tail."""
        self.n += 1
        args = [str(a) for a in args]
        env = dict(os.environ, **self.env)
        if threads:
            env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
        stem = self.logs / f"{self.n:02d}_{name}"
        print(f"$ {' '.join(args)}", flush=True)
        start = time.perf_counter()
        proc = subprocess.run(args, capture_output=True, text=True, env=env)
        wall = time.perf_counter() - start
        stem.with_suffix(".out").write_text(f"$ {' '.join(args)}\n{proc.stdout}")
        stem.with_suffix(".err").write_text(proc.stderr)
        if proc.returncode != 0:
            tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
            raise RuntimeError(f"{name} failed (exit {proc.returncode}, log {stem}.err):\n{tail}")
        return proc, wall


def median_after_first(times):
    return statistics.median(times[1:]) if len(times) > 1 else times[0]


def mean_sd(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"mean": statistics.fmean(values), "sd": statistics.stdev(values) if len(values) > 1 else 0.0,
            "runs": values}


def read_history_csv(path):
    if not path.exists():
        return None
    with open(path) as f:
        rows = list(csv.DictReader(f))
    out = []
    for r in rows:
        out.append({k: (float(v) if v not in ("", None) else None) for k, v in r.items()})
    return out


def swift_flags(bin_, verb):
    """The options `singlecell scgpt VERB` accepts (the driver adapts to the build it is given)."""
    text = subprocess.run([str(bin_), "scgpt", verb, "--help"], capture_output=True, text=True).stdout
    return set(re.findall(r"--[a-z][a-z0-9-]*", text))


def swift_training_args(flags, args, seed, batch_size, epochs):
    out = ["--n-hvg", 1200, "--batch-size", batch_size, "--lr", 1e-4, "--seed", seed, "--threads", args.threads]
    if epochs:
        out += ["--epochs", epochs]
    if "--attention-dropout" in flags and args.attention_dropout is not None:
        out += ["--attention-dropout", args.attention_dropout]
    if not args.length_buckets and "--no-length-buckets" in flags:
        out += ["--no-length-buckets"]
    if args.ties == "random" and "--random-ties" in flags:
        out += ["--random-ties"]
    return out


def zero_gene_flag(flags, on):
    if on:
        return ["--include-zero-genes"]
    return ["--no-include-zero-genes"] if "--no-include-zero-genes" in flags else []


def reference_training_args(args, seed, epochs):
    out = ["--seed", seed, "--threads", args.threads]
    if epochs:
        out += ["--epochs", epochs]
    if args.trim_padding:
        out += ["--trim-padding"]
    if args.ties == "lowest":
        out += ["--lowest-ties"]
    return out


# ----------------------------------------------------------------------------- tasks

def annotation(run, args, data, seed, flags):
    base = args.out / f"seed{seed}" / "annotate"
    sw_dir, ref_dir = base / "swift", base / "reference"
    cmd = [args.singlecell, "scgpt", "annotate", data / "pbmc_train.h5ad", "--label-key", "cell_type",
           "--query", data / "pbmc_test.h5ad", "-o", sw_dir] + swift_training_args(flags, args, seed, 32, args.epochs)
    if args.include_zero_genes:
        cmd += ["--include-zero-genes"]
    run(cmd, f"annotate_swift_seed{seed}", args.threads)
    sw = json.loads((sw_dir / "metrics.json").read_text())
    ref_cmd = [args.python, REFERENCE, "annotate", data / "pbmc_train.h5ad", data / "pbmc_test.h5ad", "-o", ref_dir,
               "--batch-size", 32] + reference_training_args(args, seed, args.epochs)
    if args.include_zero_genes:
        ref_cmd += ["--include-zero-genes"]
    run(ref_cmd, f"annotate_reference_seed{seed}", args.threads)
    ref = json.loads((ref_dir / "result.json").read_text())
    row = {
        "seed": seed,
        "swift": {"accuracy": sw.get("accuracy"), "macro_f1": sw.get("macro_f1"), "epoch_seconds": sw["epoch_seconds"],
                  "s_per_epoch": median_after_first(sw["epoch_seconds"]), "best_epoch": sw.get("best_epoch"),
                  "n_train": sw.get("n_train"), "n_validation": sw.get("n_validation"),
                  "history": read_history_csv(sw_dir / "history.csv")},
        "reference": {"accuracy": ref["accuracy"], "macro_f1": ref["macro_f1"], "epoch_seconds": ref["epoch_seconds"],
                      "s_per_epoch": median_after_first(ref["epoch_seconds"]), "best_epoch": ref["best_epoch"],
                      "n_train": ref["n_train"], "n_validation": ref["n_validation"], "n_test": ref["n_test"],
                      "history": ref["history"]},
        "reference_model": str(ref_dir / "model"),
    }
    print(f"annotation seed {seed}: Swift acc {row['swift']['accuracy']} F1 {row['swift']['macro_f1']} "
          f"{row['swift']['s_per_epoch']:.2f} s/epoch | reference acc {ref['accuracy']:.4f} F1 {ref['macro_f1']:.4f} "
          f"{row['reference']['s_per_epoch']:.2f} s/epoch", flush=True)
    return row


def scores(run, args, h5ad, key):
    proc, _ = run([args.singlecell, "metrics", h5ad, "--embedding", key, "--label-key", "cell_type",
                   "--batch-key", "batch"], f"metrics_{key}", args.threads)
    s = json.loads(proc.stdout)
    return {k: s.get(k) for k in ("bio_conservation", "batch_correction", "total")} | {"metrics": s.get("metrics")}


def integration(run, args, data, seed, flags, name):
    base = args.out / f"seed{seed}" / f"integrate_{name}"
    sw_dir, ref_dir = base / "swift", base / "reference"
    cmd = [args.singlecell, "scgpt", "integrate", data / f"{name}.h5ad", "--batch-key", "batch", "-o", sw_dir]
    cmd += swift_training_args(flags, args, seed, 64, args.epochs) + zero_gene_flag(flags, args.include_zero_genes)
    run(cmd, f"integrate_{name}_swift_seed{seed}", args.threads)
    sw = json.loads((sw_dir / "metrics.json").read_text())
    ref_cmd = [args.python, REFERENCE, "integrate", data / f"{name}.h5ad", "-o", ref_dir, "--batch-size", 64]
    ref_cmd += reference_training_args(args, seed, args.epochs)
    if args.include_zero_genes:
        ref_cmd += ["--include-zero-genes"]
    run(ref_cmd, f"integrate_{name}_reference_seed{seed}", args.threads)
    ref = json.loads((ref_dir / "result.json").read_text())
    scored = base / "scored.h5ad"
    run([args.python, REFERENCE, "combine", data / f"{name}.h5ad", "-o", scored,
         "--add", f"X_swift={sw_dir / 'embedded.h5ad'}:X_scGPT",
         "--add", f"X_reference={ref_dir / 'embedded.h5ad'}:X_scGPT",
         "--add", f"X_reference_per_batch={ref_dir / 'embedded.h5ad'}:X_scGPT_per_batch"], f"combine_{name}")
    row = {
        "seed": seed, "data": name,
        "swift": {"epoch_seconds": sw["epoch_seconds"], "s_per_epoch": median_after_first(sw["epoch_seconds"]),
                  "best_epoch": sw.get("best_epoch"), "n_genes": sw.get("n_genes"),
                  "history": read_history_csv(sw_dir / "history.csv"), "scores": scores(run, args, scored, "X_swift")},
        "reference": {"epoch_seconds": ref["epoch_seconds"], "s_per_epoch": median_after_first(ref["epoch_seconds"]),
                      "best_epoch": ref["best_epoch"], "n_genes": ref["n_genes"], "n_cells": ref["n_cells"],
                      "history": ref["history"], "scores": scores(run, args, scored, "X_reference"),
                      "scores_per_batch_eval": scores(run, args, scored, "X_reference_per_batch"),
                      "straddling_minibatches": ref["minibatches_straddling_batches_in_eval"]},
        "reference_model": str(ref_dir / "model"),
    }
    print(f"integration {name} seed {seed}: Swift total {row['swift']['scores']['total']} "
          f"{row['swift']['s_per_epoch']:.2f} s/epoch | reference total {row['reference']['scores']['total']} "
          f"{row['reference']['s_per_epoch']:.2f} s/epoch", flush=True)
    return row


def embed_speed(run, args, data, seed, name, model, h5ad):
    import h5py
    import numpy as np

    base = args.out / f"seed{seed}" / f"embed_{name}"
    ref_dir = base / "reference"
    run([args.python, REFERENCE, "embed", model, h5ad, "-o", ref_dir, "--batch-size", 64, "--max-length", 1200,
         "--repeats", args.repeats, "--seed", seed, "--threads", args.threads], f"embed_{name}_reference", args.threads)
    ref = json.loads((ref_dir / "result.json").read_text())
    sw_runs = []
    sw_out = base / "swift.h5ad"
    for r in range(args.repeats):
        proc, wall = run([args.singlecell, "scgpt", "embed", model, h5ad, "-o", sw_out, "--batch-size", 64,
                          "--max-length", 1200, "--seed", seed, "--threads", args.threads],
                         f"embed_{name}_swift_{r}", args.threads)
        m = re.search(r"embedded (\d+) cells in ([0-9.]+) s", proc.stderr)
        sw_runs.append({"cells": int(m.group(1)), "seconds": float(m.group(2)), "source": "stderr"} if m else
                       {"cells": ref["n_cells"], "seconds": wall, "source": "process wall clock"})
    sw_seconds = statistics.median(r["seconds"] for r in sw_runs)
    with h5py.File(sw_out, "r") as f:
        e_sw = np.asarray(f["obsm"]["X_scGPT"][()], dtype=np.float32)
    with h5py.File(ref_dir / "embedded.h5ad", "r") as f:
        e_lo = np.asarray(f["obsm"]["X_scGPT_lowest_ties"][()], dtype=np.float32)
        e_rand = np.asarray(f["obsm"]["X_scGPT"][()], dtype=np.float32)
    same_shape = e_sw.shape == e_lo.shape
    row = {
        "seed": seed, "data": name, "n_cells": ref["n_cells"], "model": str(model),
        "swift": {"runs": sw_runs, "seconds": sw_seconds, "cells_per_second": sw_runs[0]["cells"] / sw_seconds},
        "reference": {"runs": ref["run_seconds"], "seconds": ref["seconds_median"],
                      "cells_per_second": ref["cells_per_second"], "dropped_cells": ref["dropped_cells"]},
        "max_abs_diff_lowest_ties": float(np.abs(e_sw - e_lo).max()) if same_shape else None,
        "max_abs_diff_random_ties": float(np.abs(e_sw - e_rand).max()) if same_shape else None,
        "reference_random_vs_lowest": ref["random_vs_lowest_ties_max_abs_diff"],
        "shapes": [list(e_sw.shape), list(e_lo.shape)],
    }
    print(f"embed {name} seed {seed}: Swift {row['swift']['cells_per_second']:.1f} cells/s, reference "
          f"{row['reference']['cells_per_second']:.1f} cells/s, max |diff| (lowest ties) {row['max_abs_diff_lowest_ties']}",
          flush=True)
    return row


# ----------------------------------------------------------------------------- report

def fmt(x, digits=3):
    if x is None:
        return "–"
    if isinstance(x, dict):
        return f"{x['mean']:.{digits}f} ± {x['sd']:.{digits}f}" if x["sd"] else f"{x['mean']:.{digits}f}"
    return f"{x:.{digits}f}"


def ratio(a, b):
    return a / b if a and b else None


def report(results, args):
    lines = [f"# scGPT fine-tuning: swift-singlecell vs scgpt {results['reference_versions'].get('scgpt')}", "",
             f"threads {args.threads}, seeds {args.seeds}, epochs {args.epochs or 'tutorial (10 annotate, 15 integrate)'}, "
             f"include_zero_gene {args.include_zero_genes}, Swift attention dropout {args.attention_dropout}, "
             f"reference padding {'per minibatch' if args.trim_padding else 'per set (tutorial)'}, "
             f"Swift length buckets {'on' if args.length_buckets else 'off'}, binning ties {args.ties}"
             + (f", subsample {args.subsample}" if args.subsample else ""), "",
             f"Reference: {', '.join(f'{k} {v}' for k, v in results['reference_versions'].items())}", "",
             f"Swift: {results['swift_binary']}", ""]
    speed = []
    ann = results.get("annotation") or []
    if ann:
        s = statistics.median(r["swift"]["s_per_epoch"] for r in ann)
        r_ = statistics.median(r["reference"]["s_per_epoch"] for r in ann)
        speed.append(("annotation", LABELS["pbmc"], f"{ann[0]['reference']['n_train']} train / "
                      f"{ann[0]['reference']['n_validation']} validation / {ann[0]['reference']['n_test']} test", s, r_))
    for name in INTEGRATION_SETS:
        rows = [r for r in results.get("integration") or [] if r["data"] == name]
        if rows:
            s = statistics.median(r["swift"]["s_per_epoch"] for r in rows)
            r_ = statistics.median(r["reference"]["s_per_epoch"] for r in rows)
            speed.append(("integration", LABELS[name], f"{rows[0]['reference']['n_cells']} ({rows[0]['reference']['n_genes']} genes)", s, r_))
    if speed:
        lines += ["## Training speed (seconds per epoch, median after the first)", "",
                  "| task | data | cells | Swift s/epoch | reference s/epoch | reference / Swift |", "|---|---|---|---:|---:|---:|"]
        for task, data, cells, s, r_ in speed:
            lines.append(f"| {task} | {data} | {cells} | {s:.2f} | {r_:.2f} | {fmt(ratio(r_, s), 2)} |")
        lines.append("")
    if ann:
        lines += ["## Annotation (test split, sklearn-style macro-F1)", "", "| metric | Swift | reference |", "|---|---:|---:|"]
        for k, label in [("accuracy", "accuracy"), ("macro_f1", "macro-F1")]:
            lines.append(f"| {label} | {fmt(mean_sd([r['swift'][k] for r in ann]))} | {fmt(mean_sd([r['reference'][k] for r in ann]))} |")
        lines += ["", "best epoch (Swift / reference): " + ", ".join(
            f"{r['swift']['best_epoch']}/{r['reference']['best_epoch']}" for r in ann), ""]
    integ = results.get("integration") or []
    if integ:
        lines += ["## Integration (scib aggregates by `singlecell metrics`; PCR against X_pca of the counts)", "",
                  "| data | embedding | bio conservation | batch correction | total |", "|---|---|---:|---:|---:|"]
        for name in INTEGRATION_SETS:
            rows = [r for r in integ if r["data"] == name]
            if not rows:
                continue
            for label, get in [("Swift", lambda r: r["swift"]["scores"]),
                               ("reference (tutorial eval: minibatch's first cell's DSBN)", lambda r: r["reference"]["scores"]),
                               ("reference (per-batch eval, as Swift)", lambda r: r["reference"]["scores_per_batch_eval"])]:
                cells = [fmt(mean_sd([get(r)[k] for r in rows])) for k in ("bio_conservation", "batch_correction", "total")]
                lines.append(f"| {LABELS[name]} | {label} | " + " | ".join(cells) + " |")
        lines.append("")
    emb = results.get("embed") or []
    if emb:
        lines += ["## Embedding speed (embed_data vs `singlecell scgpt embed`, the reference's model folders)", "",
                  "| data | cells | Swift cells/s | reference cells/s | Swift / reference | max abs diff vs reference, lowest ties | random ties |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        for name in ["pbmc"] + INTEGRATION_SETS:
            rows = [r for r in emb if r["data"] == name]
            if not rows:
                continue
            s = statistics.median(r["swift"]["cells_per_second"] for r in rows)
            r_ = statistics.median(r["reference"]["cells_per_second"] for r in rows)
            lo = max((r["max_abs_diff_lowest_ties"] or 0) for r in rows)
            ra = max((r["max_abs_diff_random_ties"] or 0) for r in rows)
            lines.append(f"| {LABELS[name]} | {rows[0]['n_cells']} | {s:.1f} | {r_:.1f} | {fmt(ratio(s, r_), 2)} | {lo:.2e} | {ra:.2e} |")
        lines += ["", "Swift embeds with ties to the lowest bin (its default); the reference breaks binning ties at "
                  "random (integer counts tie in almost every cell), so it is also run once with ties to the lowest "
                  "bin (scgpt.preprocess._digitize patched): that column is the parity check.", ""]
    curves = [("annotation", LABELS["pbmc"], ann[0])] if ann else []
    curves += [("integration", LABELS[r["data"]], r) for r in integ if r["seed"] == args.seeds[0]]
    if curves:
        lines += [f"## Loss per epoch (seed {args.seeds[0]}; annotation: CE, integration: training = the full objective, "
                  "validation = GEP)", ""]
        for task, data, r in curves:
            sw, ref = r["swift"]["history"] or [], r["reference"]["history"] or []
            lines += [f"{task}, {data}:", "", "| epoch | Swift train | reference train | Swift validation | reference validation "
                      "| Swift s | reference s |", "|---:|---:|---:|---:|---:|---:|---:|"]
            for e in range(max(len(sw), len(ref))):
                g = lambda h, k: h[e].get(k) if e < len(h) else None  # noqa: E731
                t = lambda h: h[e] if e < len(h) else None  # noqa: E731
                lines.append(f"| {e + 1} | {fmt(g(sw, 'train_loss'), 4)} | {fmt(g(ref, 'train_loss'), 4)} | "
                             f"{fmt(g(sw, 'validation_loss'), 4)} | {fmt(g(ref, 'validation_loss'), 4)} | "
                             f"{fmt(t(r['swift']['epoch_seconds']), 2)} | {fmt(t(r['reference']['epoch_seconds']), 2)} |")
            lines.append("")
    if results.get("errors"):
        lines += ["## Errors and caveats", ""] + [f"- {e}" for e in results["errors"]] + [""]
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=None, help="both tasks (default: the tutorials', 10 and 15)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--only", nargs="+", choices=["annotate", "integrate", "embed"], default=["annotate", "integrate", "embed"])
    p.add_argument("--datasets", nargs="+", choices=INTEGRATION_SETS, default=INTEGRATION_SETS)
    p.add_argument("--repeats", type=int, default=3, help="embedding runs per side (the median is reported)")
    p.add_argument("--embed-seeds", type=int, default=1, help="embedding speed for the first N seeds' folders")
    p.add_argument("--out", type=pathlib.Path, default=HERE / "out")
    p.add_argument("--subsample", type=int, default=None, help="at most N cells per data set (development only)")
    p.add_argument("--include-zero-genes", action="store_true",
                   help="tokens for every gene, both sides (the integration tutorial's; default off as the protocol)")
    p.add_argument("--attention-dropout", type=float, default=0.2,
                   help="Swift's --attention-dropout (the reference drops attention probabilities at the layer's "
                        "dropout, 0.2; Swift's own default is 0)")
    p.add_argument("--trim-padding", action="store_true", help="reference pads each minibatch to its longest cell")
    p.add_argument("--ties", choices=["random", "lowest"], default="random",
                   help="binning ties in the fine-tuning preprocessing: 'random' (scgpt's Preprocessor; Swift gets "
                        "--random-ties where its build has it) or 'lowest' (Swift's default; the reference patched)")
    p.add_argument("--length-buckets", action="store_true",
                   help="let Swift group cells of similar length into minibatches (its default where the build has "
                        "it); by default the driver passes --no-length-buckets: plain shuffled minibatches, as the reference")
    p.add_argument("--singlecell", type=pathlib.Path, default=ROOT / ".build" / "release" / "singlecell")
    p.add_argument("--python", default=os.environ.get("SCGPT_PYTHON", "/root/venvs/scgpt/bin/python"))
    args = p.parse_args()
    if not args.singlecell.exists():
        sys.exit(f"{args.singlecell} is missing: swift build -c release --product singlecell (or --singlecell PATH)")
    args.out = args.out.resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    run = Runner(args.out)

    data = args.out / "data"
    prep = [args.python, REFERENCE, "prepare", "-o", data]
    if args.subsample:
        prep += ["--subsample", args.subsample]
    run(prep, "prepare")
    vers = json.loads(subprocess.run([args.python, "-c", "import json,sys; sys.path.insert(0, %r); "
                                      "import reference; print(json.dumps(reference.versions()))" % str(HERE)],
                                     capture_output=True, text=True, check=True).stdout)
    results = {"settings": {k: (str(v) if isinstance(v, pathlib.Path) else v) for k, v in vars(args).items()},
               "reference_versions": vers, "swift_binary": str(args.singlecell), "errors": [],
               "annotation": [], "integration": [], "embed": []}
    flags = {verb: swift_flags(args.singlecell, verb) for verb in ["annotate", "integrate", "embed"]}
    if not args.include_zero_genes and "--no-include-zero-genes" not in flags["integrate"]:
        results["errors"].append("this singlecell has no --no-include-zero-genes: Swift integrate used its default")
    if args.ties == "random" and "--random-ties" not in flags["integrate"]:
        results["errors"].append("this singlecell has no --random-ties for annotate/integrate: Swift bins ties to the "
                                 "lowest bin, the reference at random (about half of the non-zero values of integer "
                                 "counts land in bin 1 instead of spreading; the GEP losses are not comparable). "
                                 "--ties lowest makes the reference do the same")
    if "--attention-dropout" not in flags["annotate"]:
        results["errors"].append("this singlecell has no --attention-dropout: Swift used its default")

    def attempt(label, fn, *a):
        try:
            return fn(*a)
        except Exception as e:  # keep going: one failed piece should not lose a long run
            traceback.print_exc()
            results["errors"].append(f"{label}: {e}")
            return None

    def save():
        (args.out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
        (args.out / "report.md").write_text(report(results, args) + "\n")

    for i, seed in enumerate(args.seeds):
        ann = integ = None
        if "annotate" in args.only:
            ann = attempt(f"annotate seed {seed}", annotation, run, args, data, seed, flags["annotate"])
            if ann:
                results["annotation"].append(ann)
            save()
        if "integrate" in args.only:
            for name in args.datasets:
                integ = attempt(f"integrate {name} seed {seed}", integration, run, args, data, seed, flags["integrate"], name)
                if integ:
                    results["integration"].append(integ)
                save()
        if "embed" in args.only and i < args.embed_seeds:
            # The reference's folders of this seed (from this run, or an earlier one into --out).
            models = {name: (args.out / f"seed{seed}" / sub / "reference" / "model", data / file)
                      for name, sub, file in [("pbmc", "annotate", "pbmc_all.h5ad")]
                      + [(n, f"integrate_{n}", f"{n}.h5ad") for n in args.datasets]}
            models = {k: v for k, v in models.items() if (v[0] / "best_model.pt").exists()}
            for name, (model, h5ad) in models.items():
                row = attempt(f"embed {name} seed {seed}", embed_speed, run, args, data, seed, name, model, h5ad)
                if row:
                    results["embed"].append(row)
                save()
    save()
    print()
    print(report(results, args))


if __name__ == "__main__":
    main()
