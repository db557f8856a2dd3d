"""Reference side of the scGPT fine-tuning benchmark: scgpt 0.2.4's own preprocessing,
tokeniser, model, losses, sampler and embed_data, driven by a training loop written here after
the tutorials (Tutorial_Annotation, Tutorial_Integration of bowang-lab/scGPT). scgpt's own
`trainer.train` is not used: it passes `mod_types=` to TransformerModel (TypeError) and imports
wandb.

Runs with the reference environment (/root/venvs/scgpt: scgpt 0.2.4, torch 2.3.1, torchtext
0.18, numpy < 2, scanpy, anndata, scikit-misc; see tests/fixtures/scgpt/make_fixtures.py):

    PY=/root/venvs/scgpt/bin/python
    $PY bench/scgpt/reference.py prepare -o DATA [--subsample N]
    $PY bench/scgpt/reference.py annotate DATA/pbmc_train.h5ad DATA/pbmc_test.h5ad -o OUT \
        [--epochs 10 --batch-size 32 --seed 0 --threads 2]
    $PY bench/scgpt/reference.py integrate DATA/cite.h5ad -o OUT [--epochs 15 --batch-size 64 ...]
    $PY bench/scgpt/reference.py embed OUT/model DATA/cite.h5ad -o OUT_EMB [--repeats 3]
    $PY bench/scgpt/reference.py combine BASE.h5ad -o SCORED.h5ad --add X_swift=FILE ...

Every subcommand writes result.json (settings, per-epoch history and seconds, scores, exact
package versions) into its output folder; annotate/integrate also write the model folder
(model/best_model.pt = torch.save(state_dict), args.json, vocab.json) that embed_data and
`singlecell scgpt embed` read. The protocol and where it departs from the tutorials:
bench/scgpt/README.md.
"""

import argparse
import contextlib
import copy
import importlib.metadata as md
import json
import math
import os
import platform
import sys
import time
import warnings
from pathlib import Path

warnings.filterwarnings("ignore")

PAD_TOKEN = "<pad>"
SPECIALS = ["<pad>", "<cls>", "<eoc>"]
PAD_VALUE = -2
MASK_VALUE = -1
N_BINS = 51
SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"

ARCH = dict(d_model=128, nhead=4, d_hid=128, nlayers=4, nlayers_cls=3, dropout=0.2)


# ----------------------------------------------------------------------------- environment

def setup(threads, seed):
    """Threads before torch does any work; the tutorials' set_seed (numpy + torch)."""
    if threads:
        os.environ.setdefault("OMP_NUM_THREADS", str(threads))
        os.environ.setdefault("MKL_NUM_THREADS", str(threads))
    import numpy as np
    import torch
    import torchtext

    torchtext.disable_torchtext_deprecation_warning()
    if threads:
        torch.set_num_threads(threads)
    np.random.seed(seed)
    torch.manual_seed(seed)


def versions():
    out = {"python": platform.python_version()}
    for p in ["scgpt", "torch", "torchtext", "numpy", "scipy", "pandas", "anndata", "scanpy",
              "scikit-learn", "scikit-misc", "numba"]:
        try:
            out[p] = md.version(p)
        except md.PackageNotFoundError:
            out[p] = None
    return out


def machine(threads):
    import torch

    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(), "threads_flag": threads}


def quiet():
    """scgpt prints (logger, model construction) to stdout; keep stdout for our own lines."""
    return contextlib.redirect_stdout(sys.stderr)


def dense(m):
    import numpy as np
    import scipy.sparse as sp

    return m.toarray() if sp.issparse(m) else np.asarray(m)


def write_json(path, obj):
    path = Path(path)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(obj, indent=1, default=float) + "\n")
    tmp.replace(path)


# ----------------------------------------------------------------------------- pieces

def preprocessor(n_hvg, n_vars, binning=N_BINS, filter_genes=3):
    """The protocol's Preprocessor. seurat_v3 on fewer genes than asked: keep all genes (as
    the Swift side, the comparison is against the gene count before the count filter)."""
    from scgpt.preprocess import Preprocessor

    subset = n_hvg if (n_hvg and n_hvg < n_vars) else False
    return Preprocessor(
        use_key="X", filter_gene_by_counts=filter_genes, filter_cell_by_counts=False,
        normalize_total=1e4, result_normed_key="X_normed", log1p=True, result_log1p_key="X_log1p",
        subset_hvg=subset, hvg_flavor="seurat_v3", binning=binning, result_binned_key="X_binned",
    ), subset


def make_vocab(genes):
    """Specials first, then the genes in GeneVocab's order (unique genes come out sorted),
    default index <pad>: what the Swift side's GeneVocab(genes:specials:specialFirst:) builds."""
    from scgpt.tokenizer.gene_tokenizer import GeneVocab

    vocab = GeneVocab(genes, specials=SPECIALS, special_first=True)
    vocab.set_default_index(vocab[PAD_TOKEN])
    return vocab


def build_model(vocab, n_cls=1, integration=False, num_batches=None):
    from scgpt.model import TransformerModel

    with quiet():
        return TransformerModel(
            len(vocab), ARCH["d_model"], ARCH["nhead"], ARCH["d_hid"], ARCH["nlayers"],
            nlayers_cls=ARCH["nlayers_cls"], n_cls=n_cls, vocab=vocab, dropout=ARCH["dropout"],
            pad_token=PAD_TOKEN, pad_value=PAD_VALUE,
            do_mvc=integration, do_dab=integration, use_batch_labels=integration,
            num_batch_labels=num_batches if integration else None,
            domain_spec_batchnorm=integration, input_emb_style="continuous", n_input_bins=N_BINS,
            cell_emb_style="cls", mvc_decoder_style="inner product",
            ecs_threshold=0.8 if integration else 0.3, explicit_zero_prob=integration,
            use_fast_transformer=False, pre_norm=False,
        )


def save_model_folder(folder, state, vocab, n_cls, integration, num_batches, extra=None):
    """best_model.pt + args.json (embed_data's keys, the constructor's) + vocab.json. No
    'genes' key: `singlecell scgpt embed` then takes the embed_data path for this folder."""
    import torch

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(state, folder / "best_model.pt")
    args = {
        "embsize": ARCH["d_model"], "nheads": ARCH["nhead"], "d_hid": ARCH["d_hid"],
        "nlayers": ARCH["nlayers"], "n_layers_cls": ARCH["nlayers_cls"], "dropout": ARCH["dropout"],
        "pad_token": PAD_TOKEN, "pad_value": PAD_VALUE, "mask_value": MASK_VALUE, "n_bins": N_BINS,
        "input_emb_style": "continuous", "input_style": "binned", "n_cls": n_cls,
        "do_mvc": integration, "MVC": integration, "do_dab": integration,
        "use_batch_labels": integration, "domain_spec_batchnorm": integration,
        "explicit_zero_prob": integration, "ecs_threshold": 0.8 if integration else 0.3,
        "cell_emb_style": "cls", "mvc_decoder_style": "inner product", "pre_norm": False,
        "fast_transformer": False,
    }
    if integration:
        args["num_batch_labels"] = num_batches
    args.update(extra or {})
    (folder / "args.json").write_text(json.dumps(args, indent=2) + "\n")
    vocab.save_json(folder / "vocab.json")


def split_validation(n, seed, fraction=0.1):
    """sklearn's train_test_split(test_size=fraction, shuffle=True, random_state=seed) on
    range(n): RandomState(seed).permutation(n), the first ceil(fraction * n) for validation.
    The Swift side draws the same permutation (ScGPTRandom = numpy's legacy generator)."""
    import numpy as np

    order = np.random.RandomState(seed).permutation(n)
    n_val = int(math.ceil(fraction * n))
    return order[n_val:], order[:n_val]


def align_genes(adata, genes):
    """adata's counts on `genes` (in that order); genes it lacks are zero columns."""
    import anndata as ad
    import numpy as np
    import scipy.sparse as sp

    where = {g: i for i, g in enumerate(adata.var_names)}
    missing = [g for g in genes if g not in where]
    X = sp.csr_matrix(adata.X, dtype=np.float32)
    cols = [where.get(g, -1) for g in genes]
    sel = X[:, [c if c >= 0 else 0 for c in cols]].tolil()
    for j, c in enumerate(cols):
        if c < 0:
            sel[:, j] = 0
    out = ad.AnnData(X=sp.csr_matrix(sel, dtype=np.float32), obs=adata.obs.copy())
    out.var_names = list(genes)
    return out, missing


@contextlib.contextmanager
def ties(lowest):
    """--lowest-ties: the Preprocessor's binning with ties to the lowest bin (Swift's default)
    instead of scgpt's random draw."""
    import scgpt.preprocess as pp

    original = pp._digitize
    if lowest:
        pp._digitize = lowest_tie_digitize
    try:
        yield
    finally:
        pp._digitize = original


class Rows:
    """A Dataset over rows of tensors (the tutorials' SeqDataset)."""

    def __init__(self, **tensors):
        self.t = tensors

    def __len__(self):
        return len(next(iter(self.t.values())))

    def __getitem__(self, i):
        return {k: v[i] for k, v in self.t.items()}


def trim(ids, *others, pad_id):
    """--trim-padding: drop the columns that are padding in every row of the minibatch (tokens
    are packed: <cls>, genes, then pads), as the Swift side pads each minibatch to its longest."""
    keep = int((ids != pad_id).sum(1).max())
    return (ids[:, :keep],) + tuple(o[:, :keep] for o in others)


def history_row(epoch, lr, seconds, train, valid):
    row = {"epoch": epoch, "lr": lr, "seconds": seconds}
    row.update({f"train_{k}": v for k, v in train.items()})
    row.update({f"validation_{k}": v for k, v in valid.items()})
    return row


# ----------------------------------------------------------------------------- prepare

def cmd_prepare(a):
    """Writes the benchmark's inputs (raw counts in X as float32 CSR, obs batch / cell_type /
    split as strings, no obsm except X_pca for the integration sets' PCR comparison)."""
    setup(a.threads, 0)
    import anndata as ad
    import numpy as np
    import pandas as pd
    import scanpy as sc
    import scipy.sparse as sp

    out = Path(a.output)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.RandomState(a.subsample_seed)

    def clean(x, keep_obs):
        x = ad.AnnData(X=sp.csr_matrix(x.X, dtype=np.float32), obs=x.obs[keep_obs].copy(),
                       var=pd.DataFrame(index=x.var_names.astype(str)))
        for c in keep_obs:
            x.obs[c] = pd.Categorical(x.obs[c].astype(str))
        return x

    def sub(x, n):
        if not n or n >= x.n_obs:
            return x
        return x[np.sort(rng.choice(x.n_obs, n, replace=False))].copy()

    written = {}
    full = ad.read_h5ad(a.shared / "pbmc_frozen_sorted_5k.h5ad")
    labelled = full[full.obs["cell_type"].notna()].copy()
    for split in ["train", "test"]:
        part = labelled[labelled.obs["split"] == split].copy()
        n = a.subsample if split == "train" else (max(a.subsample // 4, 20) if a.subsample else None)
        part = clean(sub(part, n), ["batch", "cell_type", "split"])
        part.write_h5ad(out / f"pbmc_{split}.h5ad")
        written[f"pbmc_{split}"] = part.n_obs
    allcells = clean(sub(full, a.subsample), ["batch"])
    allcells.write_h5ad(out / "pbmc_all.h5ad")
    written["pbmc_all"] = allcells.n_obs
    for name, file in [("cite", "neurips2021_bmmc_cite_subset.h5ad"),
                       ("multiome", "neurips2021_bmmc_multiome_subset_rna.h5ad")]:
        x = clean(sub(ad.read_h5ad(a.shared / file), a.subsample), ["batch", "cell_type"])
        # The unintegrated embedding for scib's PCR comparison (both sides scored against it).
        pca = x.copy()
        sc.pp.normalize_total(pca, target_sum=1e4)
        sc.pp.log1p(pca)
        sc.pp.pca(pca, n_comps=min(50, pca.n_obs - 1, pca.n_vars - 1), random_state=0)
        x.obsm["X_pca"] = pca.obsm["X_pca"].astype(np.float32)
        x.write_h5ad(out / f"{name}.h5ad")
        written[name] = x.n_obs
    write_json(out / "prepared.json", {"files": written, "subsample": a.subsample, "versions": versions()})
    print(json.dumps(written))


# ----------------------------------------------------------------------------- annotate

def cmd_annotate(a):
    setup(a.threads, a.seed)
    import anndata as ad
    import numpy as np
    import torch
    import torch.nn.functional as F
    from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score
    from torch.utils.data import DataLoader
    from scgpt.tokenizer import random_mask_value, tokenize_and_pad_batch

    out = Path(a.output)
    out.mkdir(parents=True, exist_ok=True)
    train = ad.read_h5ad(a.train)
    test = ad.read_h5ad(a.test)
    train = train[train.obs[a.label_key].notna()].copy()
    test = test[test.obs[a.label_key].notna()].copy()
    types = sorted(train.obs[a.label_key].astype(str).unique())
    index = {t: i for i, t in enumerate(types)}
    y = np.array([index[t] for t in train.obs[a.label_key].astype(str)], dtype=np.int64)

    t_pre = time.perf_counter()
    pre, subset = preprocessor(a.n_hvg, train.n_vars)
    batch_key = a.batch_key if (a.batch_key and a.batch_key in train.obs
                                and train.obs[a.batch_key].nunique() > 1) else None
    with quiet(), ties(a.lowest_ties):
        pre(train, batch_key=batch_key)
    genes = train.var_names.tolist()
    # The query: the model's genes (absent ones zero), normalised, log1p, binned per cell.
    # Binning is per cell and rank-based, so normalising over these genes only gives the same
    # bins as over all genes.
    test, missing = align_genes(test, genes)
    qpre, _ = preprocessor(None, test.n_vars, filter_genes=False)
    with quiet(), ties(a.lowest_ties):
        qpre(test, batch_key=None)
    vocab = make_vocab(genes)
    gene_ids = np.array(vocab(genes), dtype=int)
    max_len = len(genes) + 1
    tok = tokenize_and_pad_batch(dense(train.layers["X_binned"]), gene_ids, max_len=max_len, vocab=vocab,
                                 pad_token=PAD_TOKEN, pad_value=PAD_VALUE, append_cls=True,
                                 include_zero_gene=a.include_zero_genes)
    tok_test = tokenize_and_pad_batch(dense(test.layers["X_binned"]), gene_ids, max_len=max_len, vocab=vocab,
                                      pad_token=PAD_TOKEN, pad_value=PAD_VALUE, append_cls=True,
                                      include_zero_gene=a.include_zero_genes)
    preprocess_seconds = time.perf_counter() - t_pre
    pad_id = vocab[PAD_TOKEN]
    tr, va = split_validation(train.n_obs, a.seed, a.validation_fraction)
    ids_tr, vals_tr, y_tr = tok["genes"][tr], tok["values"][tr], torch.from_numpy(y[tr])
    ids_va, vals_va, y_va = tok["genes"][va], tok["values"][va], torch.from_numpy(y[va])
    # The tutorial tokenises train and validation apart: each padded to its own longest cell.
    ids_tr, vals_tr = trim(ids_tr, vals_tr, pad_id=pad_id)
    ids_va, vals_va = trim(ids_va, vals_va, pad_id=pad_id)

    model = build_model(vocab, n_cls=len(types))
    optimizer = torch.optim.Adam(model.parameters(), lr=a.lr, eps=1e-8)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 1, gamma=0.9)
    history, epoch_seconds = [], []
    best = (math.inf, None, 0)

    def run(ids, vals, labels, train_mode):
        ids, vals = (trim(ids, vals, pad_id=pad_id) if a.trim_padding else (ids, vals))
        out_ = model(ids, vals, src_key_padding_mask=ids.eq(pad_id), batch_labels=None,
                     CLS=True, CCE=False, MVC=False, ECS=False)
        logits = out_["cls_output"]
        return F.cross_entropy(logits, labels), logits

    for epoch in range(1, a.epochs + 1):
        t0 = time.perf_counter()
        # prepare_data: masks redrawn every epoch (a no-op at mask ratio 0, as the tutorial).
        m_tr = random_mask_value(vals_tr, mask_ratio=0.0, mask_value=MASK_VALUE, pad_value=PAD_VALUE)
        m_va = random_mask_value(vals_va, mask_ratio=0.0, mask_value=MASK_VALUE, pad_value=PAD_VALUE)
        loader = DataLoader(Rows(ids=ids_tr, vals=m_tr, y=y_tr), batch_size=a.batch_size,
                            shuffle=not a.no_shuffle, drop_last=False, num_workers=0)
        model.train()
        s_loss = s_err = n = 0.0
        for b in loader:
            loss, logits = run(b["ids"], b["vals"], b["y"], True)
            model.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0, error_if_nonfinite=True)
            optimizer.step()
            k = len(b["y"])
            s_loss += loss.item() * k
            s_err += (logits.argmax(1) != b["y"]).sum().item()
            n += k
        train_metrics = {"loss": s_loss / n, "cls": s_loss / n, "err": s_err / n}
        model.eval()
        v_loss = v_err = vn = 0.0
        with torch.no_grad():
            for b in DataLoader(Rows(ids=ids_va, vals=m_va, y=y_va), batch_size=a.batch_size, shuffle=False):
                loss, logits = run(b["ids"], b["vals"], b["y"], False)
                k = len(b["y"])
                v_loss += loss.item() * k
                v_err += (logits.argmax(1) != b["y"]).sum().item()
                vn += k
        valid = {"loss": v_loss / vn, "cls": v_loss / vn, "err": v_err / vn} if vn else {}
        score = valid.get("loss", train_metrics["loss"])
        if score < best[0]:
            best = (score, copy.deepcopy(model.state_dict()), epoch)
        seconds = time.perf_counter() - t0
        epoch_seconds.append(seconds)
        history.append(history_row(epoch, scheduler.get_last_lr()[0], seconds, train_metrics, valid))
        print(f"epoch {epoch}: {seconds:.2f} s, train loss {train_metrics['loss']:.4f}, "
              f"validation loss {valid.get('loss', float('nan')):.4f}", file=sys.stderr, flush=True)
        scheduler.step()

    model.load_state_dict(best[1])
    model.eval()
    t_pred = time.perf_counter()
    preds = []
    with torch.no_grad():
        ids_te, vals_te = tok_test["genes"], tok_test["values"]
        for i in range(0, len(ids_te), a.batch_size):
            _, logits = run(ids_te[i:i + a.batch_size], vals_te[i:i + a.batch_size],
                            torch.zeros(len(ids_te[i:i + a.batch_size]), dtype=torch.long), False)
            preds.append(logits.argmax(1).numpy())
    predict_seconds = time.perf_counter() - t_pred
    pred = [types[i] for i in np.concatenate(preds)]
    truth = test.obs[a.label_key].astype(str).tolist()
    save_model_folder(out / "model", best[1], vocab, len(types), False, None,
                      extra={"cell_types": types, "label_key": a.label_key})
    with open(out / "predictions.csv", "w") as f:
        f.write("cell,truth,prediction\n")
        for c, t, p in zip(test.obs_names, truth, pred):
            f.write(f"{c},{t},{p}\n")
    result = {
        "task": "annotate", "reference": "scgpt 0.2.4 (own loop after Tutorial_Annotation)",
        "train": str(a.train), "test": str(a.test),
        "accuracy": accuracy_score(truth, pred),
        "macro_f1": f1_score(truth, pred, average="macro"),
        "macro_precision": precision_score(truth, pred, average="macro", zero_division=0),
        "macro_recall": recall_score(truth, pred, average="macro", zero_division=0),
        "epoch_seconds": epoch_seconds, "history": history, "best_epoch": best[2],
        "preprocess_seconds": preprocess_seconds, "predict_seconds": predict_seconds,
        "n_train": len(tr), "n_validation": len(va), "n_test": test.n_obs, "n_genes": len(genes),
        "hvg": subset, "missing_query_genes": len(missing), "cell_types": types,
        "tokens_per_cell_mean": float((tok["genes"] != pad_id).sum(1).float().mean()),
        "padded_length_train": int(ids_tr.shape[1]), "padded_length_test": int(tok_test["genes"].shape[1]),
        "settings": {"epochs": a.epochs, "batch_size": a.batch_size, "lr": a.lr, "adam_eps": 1e-8,
                     "schedule": "StepLR(1, 0.9)", "clip": 1.0, "seed": a.seed, "threads": a.threads,
                     "n_hvg": a.n_hvg, "validation_fraction": a.validation_fraction,
                     "include_zero_gene": a.include_zero_genes, "shuffle": not a.no_shuffle,
                     "trim_padding": a.trim_padding, "lowest_ties": a.lowest_ties, **ARCH},
        "versions": versions(), "machine": machine(a.threads),
    }
    write_json(out / "result.json", result)
    print(json.dumps({k: result[k] for k in ["accuracy", "macro_f1", "epoch_seconds", "best_epoch"]}))


# ----------------------------------------------------------------------------- integrate

def cmd_integrate(a):
    setup(a.threads, a.seed)
    import anndata as ad
    import numpy as np
    import torch
    import torch.nn.functional as F
    from torch.utils.data import DataLoader
    from scgpt import SubsetsBatchSampler
    from scgpt.loss import criterion_neg_log_bernoulli, masked_mse_loss
    from scgpt.tokenizer import random_mask_value, tokenize_and_pad_batch

    out = Path(a.output)
    out.mkdir(parents=True, exist_ok=True)
    adata = ad.read_h5ad(a.data)
    raw_obs = adata.obs.copy()
    batch_names = sorted(adata.obs[a.batch_key].astype(str).unique())
    bindex = {b: i for i, b in enumerate(batch_names)}
    batch_ids = np.array([bindex[b] for b in adata.obs[a.batch_key].astype(str)], dtype=np.int64)

    t_pre = time.perf_counter()
    pre, subset = preprocessor(a.n_hvg, adata.n_vars)
    with quiet(), ties(a.lowest_ties):
        pre(adata, batch_key=a.batch_key)
    genes = adata.var_names.tolist()
    vocab = make_vocab(genes)
    gene_ids = np.array(vocab(genes), dtype=int)
    max_len = len(genes) + 1
    tok = tokenize_and_pad_batch(dense(adata.layers["X_binned"]), gene_ids, max_len=max_len, vocab=vocab,
                                 pad_token=PAD_TOKEN, pad_value=PAD_VALUE, append_cls=True,
                                 include_zero_gene=a.include_zero_genes)
    preprocess_seconds = time.perf_counter() - t_pre
    pad_id = vocab[PAD_TOKEN]
    tr, va = split_validation(adata.n_obs, a.seed, a.validation_fraction)
    ids_tr, vals_tr = trim(tok["genes"][tr], tok["values"][tr], pad_id=pad_id)
    ids_va, vals_va = trim(tok["genes"][va], tok["values"][va], pad_id=pad_id)
    b_tr, b_va = torch.from_numpy(batch_ids[tr]), torch.from_numpy(batch_ids[va])

    model = build_model(vocab, integration=True, num_batches=len(batch_names))
    optimizer = torch.optim.Adam(model.parameters(), lr=a.lr, eps=1e-8)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 1, gamma=0.9)
    history, epoch_seconds = [], []
    best = (math.inf, None, 0)

    def subsets(labels):
        return [np.where(labels == b)[0].tolist() for b in np.unique(labels)]

    def batch_tensors(b):
        ids, vals, tgt = b["ids"], b["vals"], b["tgt"]
        if a.trim_padding:
            ids, vals, tgt = trim(ids, vals, tgt, pad_id=pad_id)
        return ids, vals, tgt, b["batch"]

    for epoch in range(1, a.epochs + 1):
        t0 = time.perf_counter()
        # prepare_data: fresh masks for train and validation every epoch (numpy global RNG).
        m_tr = random_mask_value(vals_tr, mask_ratio=a.mask_ratio, mask_value=MASK_VALUE, pad_value=PAD_VALUE)
        m_va = random_mask_value(vals_va, mask_ratio=a.mask_ratio, mask_value=MASK_VALUE, pad_value=PAD_VALUE)
        sampler = SubsetsBatchSampler(subsets(b_tr.numpy()), a.batch_size, intra_subset_shuffle=True,
                                      inter_subset_shuffle=not a.no_inter_shuffle, drop_last=False)
        loader = DataLoader(Rows(ids=ids_tr, vals=m_tr, tgt=vals_tr, batch=b_tr), batch_sampler=sampler, num_workers=0)
        model.train()
        sums, n = {}, 0
        for b in loader:
            ids, vals, tgt, bl = batch_tensors(b)
            o = model(ids, vals, src_key_padding_mask=ids.eq(pad_id), batch_labels=bl, MVC=True, ECS=True)
            pos = vals.eq(MASK_VALUE)
            terms = {
                "gep": masked_mse_loss(o["mlm_output"], tgt, pos),
                "gep_zero": criterion_neg_log_bernoulli(o["mlm_zero_probs"], tgt, pos),
                "gepc": masked_mse_loss(o["mvc_output"], tgt, pos),
                "gepc_zero": criterion_neg_log_bernoulli(o["mvc_zero_probs"], tgt, pos),
                "ecs": a.ecs_weight * o["loss_ecs"],
                "dab": a.dab_weight * F.cross_entropy(o["dab_output"], bl),
            }
            loss = sum(terms.values())
            model.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0, error_if_nonfinite=True)
            optimizer.step()
            k = len(bl)
            for name, v in [("loss", loss)] + list(terms.items()):
                sums[name] = sums.get(name, 0.0) + v.item() * k
            n += k
        train_metrics = {k: v / n for k, v in sums.items()}
        # evaluate: the tutorial's validation loss is GEP alone (forward without MVC/ECS);
        # minibatches per batch, in order.
        model.eval()
        vs, vn = {}, 0
        with torch.no_grad():
            vsampler = SubsetsBatchSampler(subsets(b_va.numpy()), a.batch_size, intra_subset_shuffle=False,
                                           inter_subset_shuffle=False, drop_last=False)
            for b in DataLoader(Rows(ids=ids_va, vals=m_va, tgt=vals_va, batch=b_va), batch_sampler=vsampler):
                ids, vals, tgt, bl = batch_tensors(b)
                o = model(ids, vals, src_key_padding_mask=ids.eq(pad_id), batch_labels=bl)
                pos = vals.eq(MASK_VALUE)
                k = len(bl)
                vs["gep"] = vs.get("gep", 0.0) + masked_mse_loss(o["mlm_output"], tgt, pos).item() * k
                vs["dab"] = vs.get("dab", 0.0) + F.cross_entropy(o["dab_output"], bl).item() * k
                vn += k
        valid = {k: v / vn for k, v in vs.items()} if vn else {}
        if valid:
            valid["loss"] = valid["gep"]
        score = valid.get("loss", train_metrics["gep"])
        if score < best[0]:
            best = (score, copy.deepcopy(model.state_dict()), epoch)
        seconds = time.perf_counter() - t0
        epoch_seconds.append(seconds)
        history.append(history_row(epoch, scheduler.get_last_lr()[0], seconds, train_metrics, valid))
        print(f"epoch {epoch}: {seconds:.2f} s, train loss {train_metrics['loss']:.4f}, "
              f"validation GEP {valid.get('loss', float('nan')):.4f}", file=sys.stderr, flush=True)
        scheduler.step()

    model.load_state_dict(best[1])
    model.eval()
    t_emb = time.perf_counter()
    ids_all, vals_all = tok["genes"], tok["values"].float()
    mask_all = ids_all.eq(pad_id)
    labels_all = torch.from_numpy(batch_ids)
    with torch.no_grad():
        # eval_testdata: the cells sorted by batch (stable here), encode_batch in minibatches of
        # batch_size, the <cls> output; DSBN takes each minibatch's FIRST cell's batch, so the
        # minibatch that straddles two batches goes through one batch's statistics.
        order = np.argsort(batch_ids, kind="stable")
        emb_sorted = model.encode_batch(ids_all[order], vals_all[order], mask_all[order], batch_size=a.batch_size,
                                        batch_labels=labels_all[order], time_step=0, return_np=True)
        emb = np.empty_like(emb_sorted)
        emb[order] = emb_sorted
        # The same, minibatches never crossing batches (each cell through its own batch's
        # statistics, as the Swift side embeds).
        per_batch = np.empty_like(emb)
        for b in np.unique(batch_ids):
            rows = np.where(batch_ids == b)[0]
            per_batch[rows] = model.encode_batch(ids_all[rows], vals_all[rows], mask_all[rows], batch_size=a.batch_size,
                                                 batch_labels=labels_all[rows], time_step=0, return_np=True)
    embed_seconds = time.perf_counter() - t_emb
    l2 = lambda x: (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)  # noqa: E731
    emb, per_batch = l2(emb), l2(per_batch)
    straddling = int(sum(len(np.unique(batch_ids[order][i:i + a.batch_size])) > 1
                         for i in range(0, len(order), a.batch_size)))
    keep_obs = [c for c in [a.batch_key, a.label_key] if c and c in raw_obs]
    embedded = ad.AnnData(X=np.zeros((adata.n_obs, 0), dtype=np.float32), obs=raw_obs[keep_obs].copy())
    for c in keep_obs:
        embedded.obs[c] = embedded.obs[c].astype(str).astype("category")
    embedded.obsm["X_scGPT"] = emb
    embedded.obsm["X_scGPT_per_batch"] = per_batch
    embedded.write_h5ad(out / "embedded.h5ad")
    save_model_folder(out / "model", best[1], vocab, 1, True, len(batch_names),
                      extra={"batches": batch_names, "batch_key": a.batch_key})
    result = {
        "task": "integrate", "reference": "scgpt 0.2.4 (own loop after Tutorial_Integration)",
        "data": str(a.data), "epoch_seconds": epoch_seconds, "history": history, "best_epoch": best[2],
        "preprocess_seconds": preprocess_seconds, "embed_seconds": embed_seconds,
        "n_cells": adata.n_obs, "n_train": len(tr), "n_validation": len(va), "n_genes": len(genes),
        "hvg": subset, "batches": batch_names, "minibatches_straddling_batches_in_eval": straddling,
        "tokens_per_cell_mean": float((tok["genes"] != pad_id).sum(1).float().mean()),
        "padded_length": int(tok["genes"].shape[1]),
        "settings": {"epochs": a.epochs, "batch_size": a.batch_size, "lr": a.lr, "adam_eps": 1e-8,
                     "schedule": "StepLR(1, 0.9)", "clip": 1.0, "seed": a.seed, "threads": a.threads,
                     "n_hvg": a.n_hvg, "validation_fraction": a.validation_fraction,
                     "mask_ratio": a.mask_ratio, "ecs_weight": a.ecs_weight, "ecs_threshold": 0.8,
                     "dab_weight": a.dab_weight, "include_zero_gene": a.include_zero_genes,
                     "inter_subset_shuffle": not a.no_inter_shuffle, "trim_padding": a.trim_padding,
                     "lowest_ties": a.lowest_ties, **ARCH},
        "versions": versions(), "machine": machine(a.threads),
    }
    write_json(out / "result.json", result)
    print(json.dumps({k: result[k] for k in ["epoch_seconds", "best_epoch", "n_genes"]}))


# ----------------------------------------------------------------------------- embed

def lowest_tie_digitize(x, bins, side="both"):
    """scgpt.preprocess._digitize with every tie to its LOWEST candidate bin (no random draw):
    the Swift side's default (--random-ties off). Values equal to no edge are unchanged."""
    import numpy as np

    left = np.digitize(x, bins)
    if side == "one":
        return left
    right = np.digitize(x, bins, right=True)
    return np.where(right < left, right + 1, left).astype(np.int64)


def cmd_embed(a):
    setup(a.threads, a.seed)
    import anndata as ad
    import numpy as np
    import scgpt
    import scgpt.preprocess as pp
    import scgpt.tasks.cell_emb as cell_emb

    out = Path(a.output)
    out.mkdir(parents=True, exist_ok=True)
    adata = ad.read_h5ad(a.data)
    vocab = json.loads((Path(a.model) / "vocab.json").read_text())
    names = adata.var_names if a.gene_col == "index" else adata.var[a.gene_col]
    known = np.array([g in vocab for g in names])
    expressed = np.asarray((adata.X[:, known] > 0).sum(1)).ravel() > 0
    # embed_data crashes on a cell without any expressed known gene (binning of an empty row);
    # the Swift side refuses it too. Such cells are left out and counted.
    dropped = adata.obs_names[~expressed].tolist()
    if dropped:
        adata = adata[expressed].copy()

    if a.loader_workers != "package":
        original_loader = cell_emb.DataLoader

        def loader(dataset, **kw):
            kw["num_workers"] = int(a.loader_workers)
            kw["pin_memory"] = False
            return original_loader(dataset, **kw)

        cell_emb.DataLoader = loader

    def embed():
        with quiet():
            e = scgpt.tasks.embed_data(adata.copy(), a.model, gene_col=a.gene_col, max_length=a.max_length,
                                       batch_size=a.batch_size, device="cpu", use_fast_transformer=False,
                                       return_new_adata=True)
        return np.asarray(e.X, dtype=np.float32)

    runs, random_ties = [], None
    for r in range(a.repeats):
        np.random.seed(a.seed + r)
        t0 = time.perf_counter()
        e = embed()
        runs.append(time.perf_counter() - t0)
        if random_ties is None:
            random_ties = e
        print(f"run {r + 1}: {adata.n_obs} cells in {runs[-1]:.2f} s", file=sys.stderr, flush=True)
    original = pp._digitize
    pp._digitize = lowest_tie_digitize
    try:
        lowest = embed()
    finally:
        pp._digitize = original
    seconds = float(np.median(runs))
    result = {
        "task": "embed", "model": str(a.model), "data": str(a.data), "n_cells": adata.n_obs,
        "dropped_cells": len(dropped), "dropped_examples": dropped[:5], "genes_in_vocab": int(known.sum()),
        "n_genes": int(len(names)), "run_seconds": runs, "seconds_median": seconds,
        "cells_per_second": adata.n_obs / seconds, "cells_per_second_runs": [adata.n_obs / s for s in runs],
        "random_vs_lowest_ties_max_abs_diff": float(np.abs(random_ties - lowest).max()),
        "settings": {"max_length": a.max_length, "batch_size": a.batch_size, "gene_col": a.gene_col,
                     "threads": a.threads, "seed": a.seed, "repeats": a.repeats,
                     "loader_workers": a.loader_workers,
                     "timed": "the whole embed_data call: folder loading, gene matching, binning, forward, L2"},
        "versions": versions(), "machine": machine(a.threads),
    }
    emb = ad.AnnData(X=np.zeros((adata.n_obs, 0), dtype=np.float32), obs=adata.obs[[]].copy())
    emb.obsm["X_scGPT"] = random_ties
    emb.obsm["X_scGPT_lowest_ties"] = lowest
    emb.write_h5ad(out / "embedded.h5ad")
    write_json(out / "result.json", result)
    print(json.dumps({k: result[k] for k in ["n_cells", "cells_per_second", "run_seconds"]}))


# ----------------------------------------------------------------------------- combine

def cmd_combine(a):
    """BASE.h5ad (obs, X_pca) plus embeddings from other files, for `singlecell metrics`."""
    import anndata as ad
    import numpy as np

    base = ad.read_h5ad(a.base)
    out = ad.AnnData(X=np.zeros((base.n_obs, 0), dtype=np.float32), obs=base.obs.copy())
    if "X_pca" in base.obsm:
        out.obsm["X_pca"] = np.asarray(base.obsm["X_pca"], dtype=np.float32)
    for spec in a.add:
        name, rest = spec.split("=", 1)
        file, _, key = rest.partition(":")
        other = ad.read_h5ad(file, backed="r")
        if list(other.obs_names) != list(base.obs_names):
            sys.exit(f"{file}: cells differ from {a.base} (order or names)")
        out.obsm[name] = np.asarray(other.obsm[key or "X_scGPT"], dtype=np.float32)
        other.file.close()
    out.write_h5ad(a.output)


# ----------------------------------------------------------------------------- CLI

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)

    def common(q, epochs, batch):
        q.add_argument("-o", "--output", required=True)
        q.add_argument("--n-hvg", type=int, default=1200)
        q.add_argument("--epochs", type=int, default=epochs)
        q.add_argument("--batch-size", type=int, default=batch)
        q.add_argument("--lr", type=float, default=1e-4)
        q.add_argument("--seed", type=int, default=0)
        q.add_argument("--threads", type=int, default=None)
        q.add_argument("--validation-fraction", type=float, default=0.1)
        q.add_argument("--include-zero-genes", action="store_true",
                       help="tokens for every gene (the integration tutorial's include_zero_gene=True)")
        q.add_argument("--trim-padding", action="store_true",
                       help="pad each minibatch to its own longest cell (the Swift side's way) instead of "
                            "the whole set's longest (the tutorials')")
        q.add_argument("--lowest-ties", action="store_true",
                       help="bin ties to the lowest candidate bin (the Swift side's default) instead of scgpt's "
                            "random draw")

    q = sub.add_parser("prepare", help="write the benchmark's input files")
    q.add_argument("-o", "--output", required=True)
    q.add_argument("--shared", type=Path, default=SHARED)
    q.add_argument("--subsample", type=int, default=None, help="at most N cells per file (development)")
    q.add_argument("--subsample-seed", type=int, default=0)
    q.add_argument("--threads", type=int, default=None)

    q = sub.add_parser("annotate", help="Tutorial_Annotation: classifier fine-tuning")
    q.add_argument("train")
    q.add_argument("test")
    q.add_argument("--label-key", default="cell_type")
    q.add_argument("--batch-key", default="batch", help="for HVG selection when the train cells have >1 batch")
    q.add_argument("--no-shuffle", action="store_true", help="the tutorial's DataLoader(shuffle=False)")
    common(q, 10, 32)

    q = sub.add_parser("integrate", help="Tutorial_Integration: GEP+GEPC+ECS+DAB with DSBN")
    q.add_argument("data")
    q.add_argument("--batch-key", default="batch")
    q.add_argument("--label-key", default="cell_type")
    q.add_argument("--mask-ratio", type=float, default=0.4)
    q.add_argument("--ecs-weight", type=float, default=10.0)
    q.add_argument("--dab-weight", type=float, default=1.0)
    q.add_argument("--no-inter-shuffle", action="store_true",
                   help="the tutorial's SubsetsBatchSampler(inter_subset_shuffle=False)")
    common(q, 15, 64)

    q = sub.add_parser("embed", help="scgpt.tasks.embed_data speed and embeddings")
    q.add_argument("model")
    q.add_argument("data")
    q.add_argument("-o", "--output", required=True)
    q.add_argument("--gene-col", default="index")
    q.add_argument("--max-length", type=int, default=1200)
    q.add_argument("--batch-size", type=int, default=64)
    q.add_argument("--repeats", type=int, default=3)
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--threads", type=int, default=None)
    q.add_argument("--loader-workers", default="0",
                   help="DataLoader workers: an integer (default 0, so that --threads bounds the CPUs used) "
                        "or 'package' (embed_data's own min(cpus, batch_size))")

    q = sub.add_parser("combine", help="one h5ad with several embeddings for `singlecell metrics`")
    q.add_argument("base")
    q.add_argument("-o", "--output", required=True)
    q.add_argument("--add", action="append", default=[], help="NAME=FILE[:OBSM_KEY] (default key X_scGPT)")

    a = p.parse_args()
    {"prepare": cmd_prepare, "annotate": cmd_annotate, "integrate": cmd_integrate,
     "embed": cmd_embed, "combine": cmd_combine}[a.cmd](a)


if __name__ == "__main__":
    main()
