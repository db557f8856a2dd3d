"""Reference side of the scGPT generative-pretraining throughput benchmark (tokens per second, CPU).

    /root/venvs/scgpt/bin/python bench/scgpt/pretrain_reference.py DATA.h5ad -o OUTDIR \
        [--threads 1] [--steps 20] [--warmup-steps 3] [--batch-size 32] [--max-seq-len 512] \
        [--d-model 64] [--nhead 4] [--d-hid 64] [--nlayers 4] [--dropout 0.2] [--lr 1e-3] \
        [--warmup-ratio 0.1] [--second-pass-after 0] [--seed 0] [--cells K]

e.g. DATA = /work/shared/data/pbmc_frozen_sorted_5k.h5ad (raw integer counts in X).

What the reference is. scGPT's generative pretraining lives only on the `dev-temp` branch of
bowang-lab/scGPT (not in the scgpt 0.2.4 package). Its sources are read from the git mirror
($SCGPT_REPO or /work/.mirror/bowang-lab+scGPT/repo) at the pinned commit with `git show` into a
temporary package, using the loader of tests/fixtures/scgpt/generative/make_generative_fixture.py
(imported as a module, not copied): scgpt/model/*.py (TransformerModel with
use_generative_training=True), plus scgpt/data_collator.py (DataCollator) and scgpt/loss.py
(masked_mse_loss) unchanged. DataCollator imports `binning` from scgpt/preprocess.py; that module
also imports scanpy and the installed scgpt package at top level, so only its two functions
`_digitize` and `binning` are taken (their source text, cut out with `ast`) into the temporary
package's preprocess.py. The rest is what examples/pretrain.py does for `--training-tasks both
--no-cls --trunc-by-sample` (see tests/fixtures/scgpt/generative/FACTS.md):
  * vocabulary: the data's genes in file order (id = column), then <pad>, <cls>, <eoc> appended;
    each cell = its non-zero genes (column order) with <cls> prepended, raw counts with
    pad_value -2 at <cls> (pretrain.py's `_map_append_cls`). Cells without any count are dropped.
  * DataCollator(data_style="both", do_binning=True, max_length=--max-seq-len, sampling=True,
    mlm_probability=[0.25, 0.5, 0.75] (the per-batch gen ratio), pad <pad>/-2), DataLoader with
    shuffle, drop_last=False and num_workers=0 (pretrain.py uses worker processes; here the data
    cost is measured in-process). No validation split, no evaluation.
  * one step = pretrain.py's generative train() body: forward (CLS=False, MVC=True), masked MSE
    of gen_preds + masked MSE of mvc_output[:, pcpt_len:] over non-pad gen positions; if
    step >= --second-pass-after, a second forward (CLS=False, MVC=False,
    input_cell_emb=cell_emb.detach()) adds the masked MSE of its gen_preds; one backward,
    clip_grad_norm_(1.0), Adam(lr) step, scheduler step, zero_grad. pretrain.py starts the second
    pass only once global_iter = epoch * batches_per_epoch + batch > 1000 (epochs from 1); the
    default 0 here measures the full loop from the first step. Not timed/not done: pretrain.py's
    tensorboard logging and its per-step masked_relative_error. float32, no AMP (--fp16 is GPU).
  * learning rate: transformers.get_cosine_schedule_with_warmup (linear warm-up from 0, then a
    half cosine to 0), total = --steps, warm-up = int(--steps * --warmup-ratio). `transformers`
    is not installed in this environment, so the same formula is written here as a LambdaLR.

flash_attn substitution. The generative encoder (flash_layers.py) imports flash_attn 1.x, a
CUDA-only package, and uses its FlashAttention for the perception self-attention; the reference
has no CPU path otherwise. As in the fixture, a stub `flash_attn` module supplies a plain-torch
FlashAttention (softmax(q k^T / sqrt(d)) v with the key padding mask, attention dropout in
training mode, zero context at padded queries, as flash-attn returns). The gen-gene cross
attention is the reference's own (torch's multi_head_attention_forward via scgpt's layers.py).

Tokens. A step's token count is the number of non-<pad> gene tokens the model sees in pass 1:
perception tokens (including <cls>) plus generation tokens, i.e.
(~pcpt_key_padding_mask).sum() + (~gen_key_padding_mask).sum() with masks = (gene == <pad>).
The second pass re-processes the same tokens and is not counted again. tokens/s is reported
"compute only" (forward + backward + clip + Adam + scheduler + zero_grad, from the moment the
collated batch is in hand) and "with data loading" (plus fetching and collating the batch: binning,
gen/pcpt split, sampling, padding). The first --warmup-steps steps are not timed. Reported: the
median over timed steps of (step tokens / step seconds) and total tokens / total seconds.
Shapes per batch (the collator's rule): L = min(--max-seq-len, longest cell incl. <cls>),
gen_len = int((L - 1) * ratio), pcpt_len = L - gen_len, ratio drawn per batch from {.25, .5, .75};
the padded tensors are (B, pcpt_len) and (B, gen_len). Both attentions (the stub's and the cross
attention) apply dropout to the attention probabilities in training, which costs real CPU time.

Writes OUTDIR/result.json (versions, settings, per-step seconds/tokens/losses, summaries, peak
RSS) and prints one summary line on stdout (the reference's own prints go to stderr).
"""

import argparse
import ast
import contextlib
import importlib
import importlib.util
import json
import math
import os
import platform
import random
import resource
import statistics
import sys
import time
from pathlib import Path

COMMIT = "4068d67caaac1e28d56964da68e0214817e38428"  # bowang-lab/scGPT dev-temp (FACTS.md)
FIXTURE = Path(__file__).resolve().parents[2] / "tests/fixtures/scgpt/generative/make_generative_fixture.py"
PAD, CLS, EOC = "<pad>", "<cls>", "<eoc>"
PAD_VALUE = -2
MASK_VALUE = -1
N_BINS = 51
GEN_RATIOS = [0.25, 0.50, 0.75]


def load_reference():
    """(model module, DataCollator, masked_mse_loss, fixture module) from the dev-temp sources."""
    spec = importlib.util.spec_from_file_location("make_generative_fixture", FIXTURE)
    fx = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fx)
    fx.git("cat-file", "-e", f"{COMMIT}^{{commit}}")  # the pinned commit must be in the mirror
    with contextlib.redirect_stdout(sys.stderr):
        ref = fx.load_reference(COMMIT)  # model.py, flash_layers.py, ... + the flash_attn stub
    pkg = Path(ref.__file__).resolve().parents[1]  # <tmp>/scgpt_devtemp
    (pkg / "loss.py").write_text(fx.git("show", f"{COMMIT}:scgpt/loss.py"))
    (pkg / "data_collator.py").write_text(fx.git("show", f"{COMMIT}:scgpt/data_collator.py"))
    src = fx.git("show", f"{COMMIT}:scgpt/preprocess.py")
    funcs = {n.name: ast.get_source_segment(src, n) for n in ast.parse(src).body if isinstance(n, ast.FunctionDef)}
    (pkg / "preprocess.py").write_text(
        "from typing import Union\n\nimport numpy as np\nimport torch\n\n\n"
        + funcs["_digitize"] + "\n\n\n" + funcs["binning"] + "\n")
    importlib.invalidate_caches()
    collator = importlib.import_module("scgpt_devtemp.data_collator")
    loss = importlib.import_module("scgpt_devtemp.loss")
    return ref, collator.DataCollator, loss.masked_mse_loss, fx


def cosine_with_warmup(optimizer, warmup, total):
    """transformers.get_cosine_schedule_with_warmup(num_cycles=0.5) as a LambdaLR."""
    import torch

    def factor(step):
        if step < warmup:
            return float(step) / float(max(1, warmup))
        progress = float(step - warmup) / float(max(1, total - warmup))
        return max(0.0, 0.5 * (1.0 + math.cos(math.pi * 0.5 * 2.0 * progress)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


class Cells:
    """pretrain.py's dataset rows: {'id', 'genes', 'expressions'} with <cls> first. Fresh tensors
    on every access: the collator bins `expressions` in place (the HF dataset also hands out new
    tensors each time)."""

    def __init__(self, X, cls_id):
        import numpy as np

        self.rows = []
        for i in range(X.shape[0]):
            a, b = X.indptr[i], X.indptr[i + 1]
            if b > a:
                self.rows.append((np.concatenate([[cls_id], X.indices[a:b]]).astype(np.int64),
                                  np.concatenate([[PAD_VALUE], X.data[a:b]]).astype(np.float32)))

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        import torch

        genes, expr = self.rows[i]
        return {"id": torch.tensor(i), "genes": torch.from_numpy(genes.copy()),
                "expressions": torch.from_numpy(expr.copy())}


def versions(fx):
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for p in ["torch", "numpy", "scipy", "anndata", "h5py", "einops"]:
        try:
            out[p] = md.version(p)
        except md.PackageNotFoundError:
            out[p] = None
    out["transformers"] = None  # not installed: the cosine schedule is the LambdaLR above
    out["scgpt_reference"] = f"bowang-lab/scGPT dev-temp @ {COMMIT} (mirror {fx.REPO}, via git show)"
    out["scgpt_mirror_dev_temp_head"] = fx.git("rev-parse", "dev-temp").strip()
    out["flash_attn"] = "not installed; plain-torch FlashAttention stub (make_generative_fixture.py)"
    return out


def summarise(tokens, seconds):
    rates = [t / s for t, s in zip(tokens, seconds)]
    return {"median_tokens_per_s": statistics.median(rates), "total_tokens_per_s": sum(tokens) / sum(seconds),
            "total_seconds": sum(seconds), "median_step_seconds": statistics.median(seconds)}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup-steps", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-seq-len", type=int, default=512)
    p.add_argument("--d-model", type=int, default=64)
    p.add_argument("--nhead", type=int, default=4)
    p.add_argument("--d-hid", type=int, default=64)
    p.add_argument("--nlayers", type=int, default=4)
    p.add_argument("--dropout", type=float, default=0.2)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--warmup-ratio", type=float, default=0.1)
    p.add_argument("--second-pass-after", type=int, default=0,
                   help="first step (0-based) with the second pass; pretrain.py: after 1000 global iterations")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cells", type=int, default=None, help="only the first K cells")
    a = p.parse_args()
    if a.steps <= a.warmup_steps:
        p.error("--steps must exceed --warmup-steps")

    for v in ["OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"]:
        os.environ[v] = str(a.threads)
    import anndata as ad
    import numpy as np
    import scipy.sparse as sp
    import torch
    from torch.utils.data import DataLoader

    torch.set_num_threads(a.threads)
    random.seed(a.seed)
    np.random.seed(a.seed)
    torch.manual_seed(a.seed)
    ref, DataCollator, masked_mse_loss, fx = load_reference()

    # data and vocabulary
    adata = ad.read_h5ad(a.data)
    if a.cells:
        adata = adata[: a.cells]
    genes = [str(g) for g in adata.var_names]
    if len(set(genes)) != len(genes):
        sys.exit("duplicate gene names: the vocabulary would merge them")
    vocab = {g: i for i, g in enumerate(genes + [PAD, CLS, EOC])}
    X = sp.csr_matrix(adata.X, dtype=np.float32)
    X.eliminate_zeros()
    X.sort_indices()
    cells = Cells(X, vocab[CLS])
    lengths = np.array([len(r[0]) for r in cells.rows])
    pad_id = vocab[PAD]

    collator = DataCollator(do_padding=True, pad_token_id=pad_id, pad_value=PAD_VALUE, do_mlm=True,
                            do_binning=True, mlm_probability=list(GEN_RATIOS), mask_value=MASK_VALUE,
                            max_length=a.max_seq_len, sampling=True, data_style="both")
    loader = DataLoader(cells, batch_size=a.batch_size, shuffle=True, collate_fn=collator,
                        drop_last=False, num_workers=0)

    with contextlib.redirect_stdout(sys.stderr):
        model = ref.TransformerModel(
            len(vocab), d_model=a.d_model, nhead=a.nhead, d_hid=a.d_hid, nlayers=a.nlayers,
            nlayers_cls=3, n_cls=1, vocab=vocab, dropout=a.dropout, pad_token=PAD, pad_value=PAD_VALUE,
            do_mvc=True, do_dab=False, use_batch_labels=False, input_emb_style="continuous",
            n_input_bins=N_BINS, use_generative_training=True, use_fast_transformer=True,
            fast_transformer_backend="flash")
    n_params = sum(t.numel() for t in model.parameters())
    optimizer = torch.optim.Adam(model.parameters(), lr=a.lr)
    warmup_lr_steps = int(a.steps * a.warmup_ratio) if a.warmup_ratio < 1 else int(a.warmup_ratio)
    scheduler = cosine_with_warmup(optimizer, warmup_lr_steps, a.steps)
    model.train()

    rows, batches = [], iter(loader)
    epoch = 0
    for step in range(a.steps):
        if step == a.warmup_steps:
            cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.perf_counter()
        try:
            data = next(batches)
        except StopIteration:
            epoch += 1
            batches = iter(loader)
            data = next(batches)
        t1 = time.perf_counter()

        pcpt_gene, pcpt_expr = data["pcpt_gene"], data["pcpt_expr"]
        gen_gene, gen_expr_target = data["gen_gene"], data["gen_expr_target"]
        pcpt_key_padding_mask = pcpt_gene.eq(pad_id)
        gen_key_padding_mask = gen_gene.eq(pad_id)
        out = model(pcpt_gene, pcpt_expr, pcpt_key_padding_mask, gen_gene, gen_key_padding_mask,
                    CLS=False, MVC=True, generative_training=True)
        positions_to_match = ~gen_key_padding_mask
        loss_mse = masked_mse_loss(out["gen_preds"], gen_expr_target, positions_to_match)
        loss_mvc = masked_mse_loss(out["mvc_output"][:, pcpt_gene.shape[1]:], gen_expr_target, positions_to_match)
        loss = loss_mse + loss_mvc
        loss_gen = None
        if step >= a.second_pass_after:
            preds = model(pcpt_gene, pcpt_expr, pcpt_key_padding_mask, gen_gene, gen_key_padding_mask,
                          CLS=False, MVC=False, input_cell_emb=out["cell_emb"].detach(),
                          generative_training=True)["gen_preds"]
            loss_gen = masked_mse_loss(preds, gen_expr_target, positions_to_match)
            loss = loss + loss_gen
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        lr = optimizer.param_groups[0]["lr"]
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
        t2 = time.perf_counter()

        tokens = int((~pcpt_key_padding_mask).sum() + (~gen_key_padding_mask).sum())
        rows.append({
            "step": step, "epoch": epoch, "timed": step >= a.warmup_steps, "cells": int(pcpt_gene.shape[0]),
            "pcpt_len": int(pcpt_gene.shape[1]), "gen_len": int(gen_gene.shape[1]),
            "pcpt_tokens": int((~pcpt_key_padding_mask).sum()), "gen_tokens": int((~gen_key_padding_mask).sum()),
            "tokens": tokens, "second_pass": loss_gen is not None, "lr": lr,
            "compute_seconds": t2 - t1, "data_seconds": t1 - t0, "step_seconds": t2 - t0,
            "loss": loss.item(), "loss_mse": loss_mse.item(), "loss_mvc": loss_mvc.item(),
            "loss_gen": None if loss_gen is None else loss_gen.item(),
        })
        if not math.isfinite(rows[-1]["loss"]):
            sys.exit(f"step {step}: loss is not finite")
        print(f"step {step}: {tokens} tokens, pcpt {pcpt_gene.shape[1]} gen {gen_gene.shape[1]}, "
              f"compute {t2 - t1:.3f} s, data {t1 - t0:.3f} s, loss {loss.item():.4f}", file=sys.stderr, flush=True)

    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    timed = [r for r in rows if r["timed"]]
    tok = [r["tokens"] for r in timed]
    compute = summarise(tok, [r["compute_seconds"] for r in timed])
    with_data = summarise(tok, [r["step_seconds"] for r in timed])
    peak_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    result = {
        "task": "scgpt generative pretraining throughput (reference)",
        "reference": f"bowang-lab/scGPT dev-temp @ {COMMIT}: TransformerModel(use_generative_training=True), "
                     "DataCollator(data_style='both'), loss as examples/pretrain.py train(); flash_attn stubbed",
        "data": str(a.data), "n_cells": len(cells), "cells_dropped_empty": int(X.shape[0] - len(cells)),
        "n_genes": len(genes), "vocab_size": len(vocab), "pad_id": pad_id, "cls_id": vocab[CLS],
        "genes_per_cell_incl_cls": {"mean": float(lengths.mean()), "median": float(np.median(lengths)),
                                    "min": int(lengths.min()), "max": int(lengths.max())},
        "batches_per_epoch": len(loader), "n_parameters": n_params,
        "tokens": "non-pad pass-1 tokens: (~pcpt_key_padding_mask).sum() + (~gen_key_padding_mask).sum()",
        "compute_only": compute, "with_data_loading": with_data,
        "timed_steps": len(timed), "timed_tokens": sum(tok),
        "peak_rss_mib": peak_rss_mib,
        "timed_cpu": {"user_seconds": cpu1.ru_utime - cpu0.ru_utime, "system_seconds": cpu1.ru_stime - cpu0.ru_stime,
                      "minor_page_faults": cpu1.ru_minflt - cpu0.ru_minflt,
                      "note": "process totals over the timed steps (getrusage); large system time comes with the "
                              "page faults of the big per-step attention tensors, which glibc maps afresh each time"},
        "settings": {k: getattr(a, k) for k in ["threads", "steps", "warmup_steps", "batch_size", "max_seq_len",
                                                "d_model", "nhead", "d_hid", "nlayers", "dropout", "lr",
                                                "warmup_ratio", "second_pass_after", "seed", "cells"]}
        | {"lr_warmup_steps": warmup_lr_steps, "lr_schedule": "cosine with linear warm-up (LambdaLR, transformers' formula)",
           "gen_ratios": GEN_RATIOS, "n_bins": N_BINS, "pad_value": PAD_VALUE, "sampling": True,
           "loader": "DataLoader(shuffle=True, drop_last=False, num_workers=0)", "dtype": "float32",
           "input_emb_style": "continuous", "mvc": True, "cls": False, "cell_emb_style": "cls", "pre_norm": False},
        "steps": rows,
        "versions": versions(fx),
        "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                    "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads()},
    }
    out_dir = Path(a.output)
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / "result.json.tmp"
    tmp.write_text(json.dumps(result, indent=1) + "\n")
    tmp.replace(out_dir / "result.json")
    print(f"scgpt pretrain reference: {len(timed)}/{a.steps} steps timed, batch {a.batch_size}, max len {a.max_seq_len}, "
          f"d {a.d_model}, layers {a.nlayers}, threads {a.threads}: compute {compute['median_tokens_per_s']:.0f} tok/s "
          f"(total {compute['total_tokens_per_s']:.0f}), with data {with_data['median_tokens_per_s']:.0f} tok/s "
          f"(total {with_data['total_tokens_per_s']:.0f}), {sum(tok) / len(timed):.0f} tokens/step, "
          f"loss {rows[0]['loss']:.3f} -> {rows[-1]['loss']:.3f}, peak RSS {peak_rss_mib:.0f} MiB")


if __name__ == "__main__":
    main()
