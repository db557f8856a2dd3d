"""scAtlasVAE benchmark: swift-singlecell (`singlecell atlas train`) against the reference
scAtlasVAE 1.0.5.9 and against our scVI, same data, same settings, same run.

    swift build -c release --product singlecell
    pip download --no-deps scatlasvae==1.0.5.9 -d /tmp/sav && unzip /tmp/sav/*.whl -d /tmp/sav/src
    PYTHONPATH=/tmp/sav/src python bench/scatlasvae/bench.py [--speed-epochs 10] [--quality-epochs 200]

The Python needs torch, scanpy, einops, tabulate and scirpy (the reference's model module
imports them); its pins (torch 1.13, Python <= 3.9) are not needed for the model code. The
figures in BENCHMARKS.md of 2026-12-04 used the pinned environment itself:

    python3.9 -m venv /root/venvs/atlas && /root/venvs/atlas/bin/pip install scatlasvae==1.0.5.9
    /root/venvs/atlas/bin/python bench/scatlasvae/bench.py --only transfer --seeds 0 1 2 3 4

1. Speed: pbmc_frozen_sorted_5k (5,036 PBMCs, batches frozen_donor_a / sorted, labels for
   the sorted cells, the rest "undefined"), 2,000 seurat_v3-style HVGs (top variance of
   log-normalised counts, batch-aware), batch 128, `--speed-epochs` epochs, 1 and 2 threads:
   median seconds per epoch (first epoch excluded), reference / Swift.
2. Integration: each real multi-batch labelled set of ../shared/data (NeurIPS 2021 BMMC CITE
   RNA, 600 cells; BMMC multiome RNA, 500 cells; with `--integration-data`, also the
   Drop-seq/inDrops PBMCs of bench/data), `--quality-epochs` epochs, lr 1e-3 on all
   three models; the scib-style aggregates (`singlecell metrics`, the same code for all three
   embeddings) of scAtlasVAE (Swift), scAtlasVAE (reference) and scVI (Swift). A seed on which
   the reference fails (its training can diverge to NaN) is listed in `reference_failed` and
   left out for every model.
3. Label transfer: reference = the sorted cells of pbmc_frozen_sorted_5k (9 bead-sorted
   types), query = data/pbmc68k_reduced (another 10x experiment of the same study; its
   bulk_labels mapped to the sorted names, types without a sorted counterpart dropped), on
   the genes both have (pbmc68k_reduced keeps only 765).
   Accuracy and macro-F1 of the classifier and of a 15-NN vote on the latent, for both
   implementations (the reference's classifier through its documented query path,
   setup_anndata + pretrained_state_dict + predict_labels), over `--seeds`, for each recipe of
   TRANSFER_RECIPES (`--transfer-recipes`), which both implementations run alike.
   Cross-technology pairs (`--transfer-pairs`): the Drop-seq and inDrops PBMCs of Ding et al.
   2020 (bench/data/make_bench_counts.py ding), each technology predicting the other's labels.
"""

import argparse
import json
import os
import pathlib
import re
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "data"
BIN = ROOT / ".build" / "release" / "singlecell"

# bulk_labels of pbmc68k_reduced → cell_type of the sorted populations.
QUERY_LABELS = {
    "CD19+ B": "bcells", "CD14+ Monocyte": "monocytes", "CD56+ NK": "nk", "CD4+/CD25 T Reg": "regulatoryt",
    "CD4+/CD45RA+/CD25- Naive T": "naivet", "CD4+/CD45RO+ Memory": "memoryt", "CD8+ Cytotoxic T": "cytotoxict",
    "CD8+/CD45RA+ Naive Cytotoxic": "naivecytotoxic",
}

REFERENCE_SCRIPT = r"""
import json, sys, time
import numpy as np, torch, scanpy as sc
import os
torch.set_num_threads(int(sys.argv[2]))
seed = int(os.environ.get("BENCH_SEED", "0"))
torch.manual_seed(seed); np.random.seed(seed)
from scatlasvae.model._gex_model import scAtlasVAE
adata = sc.read_h5ad(sys.argv[1])
epochs, lr = int(sys.argv[3]), float(sys.argv[4])
label_key = sys.argv[5] if len(sys.argv) > 5 and sys.argv[5] != "-" else None
stamps = []
original = scAtlasVAE.as_dataloader
def timed(self, *a, **k):
    if k.get("train_test_split"): stamps.append(time.perf_counter())
    return original(self, *a, **k)
scAtlasVAE.as_dataloader = timed
# Constructor and fit() arguments beyond these, as JSON (the label-transfer recipes).
options = json.loads(os.environ.get("BENCH_MODEL_OPTIONS", "{}"))
model = scAtlasVAE(adata=adata, batch_key="batch", label_key=label_key, device="cpu", **options)
start = time.perf_counter()
model.fit(max_epoch=epochs, lr=lr, n_per_batch=128, **json.loads(os.environ.get("BENCH_FIT_OPTIONS", "{}")))
stamps.append(time.perf_counter())
z = model.get_latent_embedding(show_progress=False)
result = {"epoch_seconds": [b - a for a, b in zip(stamps, stamps[1:])], "train_seconds": stamps[-1] - start}
np.save(sys.argv[6], z)
if label_key and len(sys.argv) > 7:
    query = sc.read_h5ad(sys.argv[7])
    # The documented query path: setup_anndata + a model over the query with the saved weights.
    model.save_to_disk(sys.argv[8])
    q = scAtlasVAE.setup_anndata(query.copy(), sys.argv[8])
    qm = scAtlasVAE(adata=q, batch_key="batch", label_key=label_key, device="cpu", pretrained_state_dict=sys.argv[8],
                    **options)  # its saved file does not keep total_variational
    logits = qm.predict_labels(show_progress=False)
    cats = list(model.label_category.categories)
    # predict_labels returns the AnnData's cell order (it undoes its internal shuffle itself).
    result["query_predicted"] = [cats[i] for i in logits.argmax(1).numpy()]
    zq = qm.get_latent_embedding(show_progress=False)
    np.save(sys.argv[9], zq)
print(json.dumps(result))
"""


class CommandFailed(RuntimeError):
    pass


def sh(args, **kwargs):
    run = subprocess.run([str(a) for a in args], capture_output=True, text=True, **kwargs)
    if run.returncode != 0:
        lines = run.stderr.strip().splitlines()
        # The exception's own line (a progress bar may follow it), then the last lines.
        raised = [line for line in lines if re.match(r"^\w+(Error|Exception)\b", line)]
        tail = "\n".join(lines[-5:] + raised[-1:])
        raise CommandFailed(f"{pathlib.Path(str(args[0])).name} exited with {run.returncode}: {tail}")
    return run


def prepare_speed(tmp):
    import numpy as np
    import scanpy as sc

    adata = sc.read_h5ad(SHARED / "pbmc_frozen_sorted_5k.h5ad")
    adata.obs["cell_type"] = adata.obs["cell_type"].astype(str).replace("nan", "undefined")
    norm = adata.copy()
    sc.pp.normalize_total(norm, target_sum=1e4)
    sc.pp.log1p(norm)
    sc.pp.highly_variable_genes(norm, n_top_genes=2000, batch_key="batch")
    adata = adata[:, norm.var["highly_variable"].to_numpy()].copy()
    adata.X = adata.X.astype(np.float32)
    path = tmp / "pbmc5k_hvg.h5ad"
    adata.write_h5ad(path)
    return path, adata


def swift_train(path, out, epochs, threads, lr, label_key=None, model="atlas", seed=0, validation=None):
    args = [BIN, model, "train", path, "-o", out, "--batch-key", "batch", "--max-epochs", epochs,
            "--threads", threads, "--seed", seed, "--quiet", "--lr", lr]
    if validation is not None:
        args += ["--validation-fraction", validation] if model == "atlas" else ["--train-size", 1 - validation]
    if model == "atlas" and label_key:
        args += ["--label-key", label_key, "--pred-last-n-epochs", max(10, epochs // 4)]
    sh(args)
    return json.loads((pathlib.Path(out) / "metrics.json").read_text())


def reference_train(path, threads, epochs, lr, label_key, latent_out, extra=(), seed=0, model_options=None,
                    fit_options=None):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), BENCH_SEED=str(seed),
               BENCH_MODEL_OPTIONS=json.dumps(model_options or {}), BENCH_FIT_OPTIONS=json.dumps(fit_options or {}))
    out = sh([sys.executable, "-c", REFERENCE_SCRIPT, path, threads, epochs, lr, label_key or "-", latent_out, *extra], env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def median_after_first(times):
    return statistics.median(times[1:]) if len(times) > 1 else times[0]


def scores(h5ad, key, labels, batch):
    out = sh([BIN, "metrics", h5ad, "--embedding", key, "--label-key", labels, "--batch-key", batch])
    return json.loads(out.stdout)


def speed(tmp, args):
    path, _ = prepare_speed(tmp)
    rows = []
    for threads in args.threads:
        sw = swift_train(path, tmp / f"speed_swift_{threads}", args.speed_epochs, threads, 5e-5, "cell_type")
        ref = reference_train(path, threads, args.speed_epochs, 5e-5, "cell_type", tmp / "z_speed.npy")
        s, r = median_after_first(sw["epoch_seconds"]), median_after_first(ref["epoch_seconds"])
        rows.append({"threads": threads, "swift_s_per_epoch": s, "reference_s_per_epoch": r, "ratio": r / s})
        print(f"speed, {threads} thread(s): Swift {s:.3f} s/epoch, reference {r:.3f} s/epoch, {r / s:.2f}x", flush=True)
    return rows


def integration(tmp, args):
    import anndata as ad
    import numpy as np

    rows = []
    # The reference redraws its 20 % validation split every epoch, so over the run it trains on
    # every cell; ours keeps one split (scatlasvae_swift) or, like that, trains on all cells
    # (scatlasvae_swift_all_cells).
    methods = [("scatlasvae_swift", "X_scAtlasVAE"), ("scatlasvae_swift_all_cells", "X_all_cells"),
               ("scatlasvae_reference", "X_reference"), ("scvi_swift", "X_scVI")]
    for name in args.integration_data:
        source = SHARED / f"{name}.h5ad"
        if not source.exists():  # the cross-technology pair is built into bench/data
            source = ROOT / "bench" / "data" / f"{name}.h5ad"
        adata = ad.read_h5ad(source)
        adata.X = adata.X.astype(np.float32)
        for key in list(adata.obsm.keys()):
            del adata.obsm[key]
        path = tmp / f"{name}.h5ad"
        adata.write_h5ad(path)
        per_seed = {label: [] for label, _ in methods}
        speeds = {"swift": [], "reference": []}
        failed = []  # seeds where the reference stopped (its NaN divergence): left out for every model
        for seed in args.seeds:
            try:
                ref = reference_train(path, 2, args.quality_epochs, 1e-3, None, tmp / f"{name}_ref.npy", seed=seed)
            except CommandFailed as error:
                failed.append({"seed": seed, "error": str(error).splitlines()[-1][-300:]})
                print(f"{name}: the reference failed on seed {seed}: {error}", file=sys.stderr, flush=True)
                continue
            sw = swift_train(path, tmp / f"{name}_atlas", args.quality_epochs, 2, 1e-3, seed=seed)
            swift_train(path, tmp / f"{name}_atlas_all", args.quality_epochs, 2, 1e-3, seed=seed, validation=0)
            swift_train(path, tmp / f"{name}_scvi", args.quality_epochs, 2, 1e-3, model="scvi", seed=seed)
            scored = ad.read_h5ad(tmp / f"{name}_atlas" / "adata.h5ad")
            scored.obsm["X_scVI"] = ad.read_h5ad(tmp / f"{name}_scvi" / "adata.h5ad").obsm["X_scVI"]
            scored.obsm["X_all_cells"] = ad.read_h5ad(tmp / f"{name}_atlas_all" / "adata.h5ad").obsm["X_scAtlasVAE"]
            scored.obsm["X_reference"] = np.load(tmp / f"{name}_ref.npy").astype(np.float32)
            scored.obsm.pop("X_umap", None)
            combined = tmp / f"{name}_scored.h5ad"
            scored.write_h5ad(combined)
            for label, key in methods:
                s = scores(combined, key, "cell_type", "batch")
                per_seed[label].append({**{k: s[k] for k in ("bio_conservation", "batch_correction", "total")},
                                        **{k: v for k, v in s.get("metrics", {}).items() if isinstance(v, (int, float))}})
            speeds["swift"].append(median_after_first(sw["epoch_seconds"]))
            speeds["reference"].append(median_after_first(ref["epoch_seconds"]))
        kept = [seed for seed in args.seeds if seed not in {f["seed"] for f in failed}]
        row = {"data": name, "cells": int(adata.n_obs), "epochs": args.quality_epochs, "seeds": kept,
               "reference_failed": failed}
        if not kept:
            rows.append(row)
            print(json.dumps(row), flush=True)
            continue
        for label, _ in methods:
            row[label] = {k: {"mean": float(np.mean([r[k] for r in per_seed[label]])),
                              "sd": float(np.std([r[k] for r in per_seed[label]], ddof=1)) if len(kept) > 1 else 0.0,
                              "runs": [r[k] for r in per_seed[label]]}
                          for k in ("bio_conservation", "batch_correction", "total")}
            # every single metric too (means over the seeds), to see what moves an aggregate
            row[label]["metrics"] = {k: float(np.mean([r[k] for r in per_seed[label]])) for k in per_seed[label][0]
                                     if k not in ("bio_conservation", "batch_correction", "total")}
        row["swift_s_per_epoch"] = statistics.median(speeds["swift"])
        row["reference_s_per_epoch"] = statistics.median(speeds["reference"])
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def pbmc68k_pair():
    """Reference: the sorted cells of pbmc_frozen_sorted_5k; query: scanpy's pbmc68k_reduced."""
    import scanpy as sc

    full = sc.read_h5ad(SHARED / "pbmc_frozen_sorted_5k.h5ad")
    reference = full[full.obs["batch"] == "sorted"].copy()
    query = sc.read_h5ad(ROOT / "data" / "pbmc68k_reduced.h5ad")
    keep = query.obs["bulk_labels"].astype(str).isin(QUERY_LABELS).to_numpy()
    query = query[keep].copy()
    truth = query.obs["bulk_labels"].astype(str).map(QUERY_LABELS).to_numpy()
    return reference, query, truth


def ding_pair(reference_technology):
    """One technology of bench/data/pbmc_dropseq_indrops.h5ad as reference, the other as query."""
    import scanpy as sc

    path = ROOT / "bench" / "data" / "pbmc_dropseq_indrops.h5ad"
    if not path.exists():
        sys.exit(f"{path} is missing: bench/data/make_bench_counts.py ding")
    both = sc.read_h5ad(path)
    is_reference = (both.obs["batch"] == reference_technology).to_numpy()
    query = both[~is_reference].copy()
    return both[is_reference].copy(), query, query.obs["cell_type"].astype(str).to_numpy()


# Label-transfer recipes, the same for both implementations: "defaults" keeps each model's
# defaults (label loss in the last 10 epochs, log1p of the raw counts); "transfer" normalises
# each cell to 1e4 counts before log1p and trains the label head in every epoch.
TRANSFER_RECIPES = {
    "defaults": {"swift": ["--pred-last-n-epochs", 10], "model": {}, "fit": {"pred_last_n_epoch": 10}},
    "transfer": {"swift": ["--total-variational", "--pred-last-n-epochs", "EPOCHS"],
                 "model": {"total_variational": True}, "fit": {"pred_last_n_epoch": "EPOCHS"}},
}

TRANSFER_PAIRS = {
    "pbmc68k": pbmc68k_pair,
    "dropseq-to-indrops": lambda: ding_pair("Drop-seq"),
    "indrops-to-dropseq": lambda: ding_pair("inDrops"),
}


def label_transfer(tmp, args, pair, recipe):
    import anndata as ad
    import numpy as np
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.neighbors import KNeighborsClassifier

    reference, query, truth = TRANSFER_PAIRS[pair]()
    reference.obs["cell_type"] = reference.obs["cell_type"].astype(str)
    # The model uses every gene both have (pbmc68k_reduced keeps only 765).
    shared = [g for g in reference.var_names if g in set(query.var_names)]
    reference, query = reference[:, shared].copy(), query[:, shared].copy()
    query.obs["cell_type"] = "undefined"
    query.obs["batch"] = "query"
    for a in (reference, query):
        a.X = a.X.astype(np.float32)
        a.obsm.clear() if hasattr(a.obsm, "clear") else None
    ref_path, query_path = tmp / f"{pair}_reference.h5ad", tmp / f"{pair}_query.h5ad"
    reference.write_h5ad(ref_path)
    query.write_h5ad(query_path)

    def summary(pred):
        return {"accuracy": float(accuracy_score(truth, pred)), "macro_f1": float(f1_score(truth, pred, average="macro"))}

    epochs = args.transfer_epochs
    chosen = json.loads(json.dumps(TRANSFER_RECIPES[recipe]).replace('"EPOCHS"', str(epochs)))
    runs = {name: [] for name in ("swift_classifier", "swift_knn", "reference_classifier", "reference_knn")}
    for seed in args.seeds:
        out = tmp / f"{pair}_swift"
        sh([BIN, "atlas", "train", ref_path, "-o", out, "--batch-key", "batch", "--label-key", "cell_type",
            "--max-epochs", epochs, "--lr", 1e-3, "--seed", seed, "--quiet", "--threads", 2, *chosen["swift"]])
        sh([BIN, "atlas", "map", out, query_path, "-o", tmp / f"{pair}_swift_map", "-k", 15])
        mapped = ad.read_h5ad(tmp / f"{pair}_swift_map" / "query.h5ad")
        runs["swift_classifier"].append(summary(mapped.obs["predicted_cell_type"].astype(str).to_numpy()))
        runs["swift_knn"].append(summary(mapped.obs["knn_cell_type"].astype(str).to_numpy()))
        ref = reference_train(ref_path, 2, epochs, 1e-3, "cell_type", tmp / f"{pair}_ref_z.npy", seed=seed,
                              model_options=chosen["model"], fit_options=chosen["fit"],
                              extra=(query_path, tmp / f"{pair}_ref_model.pt", tmp / f"{pair}_ref_zq.npy"))
        runs["reference_classifier"].append(summary(np.array(ref["query_predicted"])))
        knn = KNeighborsClassifier(n_neighbors=15).fit(np.load(tmp / f"{pair}_ref_z.npy"),
                                                       reference.obs["cell_type"].to_numpy())
        runs["reference_knn"].append(summary(knn.predict(np.load(tmp / f"{pair}_ref_zq.npy"))))
    result = {"pair": pair, "recipe": recipe, "reference_cells": int(reference.n_obs), "query_cells": int(query.n_obs),
              "genes": len(shared), "epochs": epochs, "seeds": args.seeds}
    for name, per_seed in runs.items():
        result[name] = {k: {"mean": float(np.mean([r[k] for r in per_seed])),
                            "sd": float(np.std([r[k] for r in per_seed], ddof=1)) if len(per_seed) > 1 else 0.0,
                            "runs": [r[k] for r in per_seed]}
                        for k in ("accuracy", "macro_f1")}
    print(json.dumps(result), flush=True)
    return result


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--speed-epochs", type=int, default=10)
    parser.add_argument("--quality-epochs", type=int, default=200)
    parser.add_argument("--transfer-epochs", type=int, default=100)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--integration-data", nargs="+",
                        default=["neurips2021_bmmc_cite_subset", "neurips2021_bmmc_multiome_subset_rna"])
    parser.add_argument("--transfer-recipes", choices=list(TRANSFER_RECIPES), nargs="+", default=list(TRANSFER_RECIPES))
    parser.add_argument("--transfer-pairs", choices=list(TRANSFER_PAIRS), nargs="+", default=list(TRANSFER_PAIRS))
    parser.add_argument("--only", choices=["speed", "integration", "transfer"], nargs="+",
                        default=["speed", "integration", "transfer"])
    args = parser.parse_args()
    if not BIN.exists():
        sys.exit(f"{BIN} is missing: swift build -c release --product singlecell")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        report = {}
        if "speed" in args.only:
            report["speed"] = speed(tmp, args)
        if "integration" in args.only:
            report["integration"] = integration(tmp, args)
        if "transfer" in args.only:
            report["label_transfer"] = [label_transfer(tmp, args, pair, recipe)
                                        for recipe in args.transfer_recipes for pair in args.transfer_pairs]
        print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
