"""Rebuilds pbmc_two_batch.h5ad (kept in ../shared/data, not in this repository: it derives from
files that only a GitHub repository holds): 200 + 200 PBMCs of two 10x CITE-seq runs, two batches.
Written to $PBMC_TWO_BATCH_OUT, else to the current directory.

    /root/fixenv/bin/python data/make_pbmc_two_batch.py            # downloads both files
    /root/fixenv/bin/python data/make_pbmc_two_batch.py DIR        # or reads them from DIR

Source: the scvi-tools repository's test data, tests/test_data/pbmc_5k_protein_v3.h5ad and
tests/test_data/pbmc_10k_protein_v3.h5ad at commit 93dc4fae2191... (COMMIT below), fetched
from raw.githubusercontent.com and checked against the sha256 sums below. Each is 200 cells of
10x Genomics' "5k PBMCs ... with TotalSeq-B" and "10k PBMCs ... with TotalSeq-B" (v3
chemistry) data sets, in the anndata 0.7 layout, every large dataset LZF-compressed, X dense
float32 raw UMI counts, obsm["protein_expression"] the antibody counts with names in
uns["protein_names"] (29 proteins in the 5k run, 14 in the 10k run).

Output: the genes both files have, restricted to genes detected in at least one of the 400
cells; X = integer counts (checked) as CSR float32; obs["batch"] categorical "pbmc5k" /
"pbmc10k" (obs names get "-pbmc5k" / "-pbmc10k" appended: two barcodes occur in both runs),
obs["n_counts"] and obs["n_genes"] recomputed on the kept genes; obsm["protein_expression"]
int64 counts of the 14 proteins both panels share (the 10k panel, in its order), names in
uns["protein_names"]. Written with gzip compression.
"""

import hashlib
import os
import pathlib
import sys
import urllib.request

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

HERE = pathlib.Path(__file__).resolve().parent
COMMIT = "93dc4fae21917406673206320c8a3002433c4a5d"
URL = f"https://raw.githubusercontent.com/scverse/scvi-tools/{COMMIT}/tests/test_data/{{name}}"
FILES = {  # batch name -> (file name, sha256)
    "pbmc5k": ("pbmc_5k_protein_v3.h5ad", "83f2c7d175600acf458d839920ce52448beeab66557a76d8b0312c91102a3326"),
    "pbmc10k": ("pbmc_10k_protein_v3.h5ad", "512fe360bd1cc79821f67959cc47e19b92bb7edbbb9351da5d1e9d70b35102a2"),
}


def fetch(name: str, sha256: str, local_dir: pathlib.Path | None, cache: pathlib.Path) -> pathlib.Path:
    path = local_dir / name if local_dir else cache / name
    if not path.exists():
        cache.mkdir(parents=True, exist_ok=True)
        print("downloading", URL.format(name=name))
        with urllib.request.urlopen(URL.format(name=name)) as response:
            path.write_bytes(response.read())
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert digest == sha256, f"{path}: sha256 {digest}, expected {sha256}"
    return path


def load(path: pathlib.Path, batch: str) -> ad.AnnData:
    adata = ad.read_h5ad(path)
    X = np.asarray(adata.X)
    assert np.all(X >= 0) and np.all(X == np.round(X)), f"{path}: X is not integer counts"
    proteins = pd.DataFrame(
        np.asarray(adata.obsm["protein_expression"]), index=adata.obs_names, columns=list(adata.uns["protein_names"])
    )
    out = ad.AnnData(X=sp.csr_matrix(X.astype(np.float32)), obs=pd.DataFrame(index=adata.obs_names))
    out.var_names = adata.var_names
    out.obsm["proteins"] = proteins
    out.obs["batch"] = batch
    return out


def main() -> None:
    local_dir = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else None
    cache = pathlib.Path("/tmp/pbmc_two_batch_download")
    parts = {batch: load(fetch(name, sha, local_dir, cache), batch) for batch, (name, sha) in FILES.items()}

    panels = [list(p.obsm["proteins"].columns) for p in parts.values()]
    shared_proteins = [name for name in panels[1] if name in panels[0]]
    genes = [g for g in parts["pbmc5k"].var_names if g in set(parts["pbmc10k"].var_names)]
    pieces = []
    for batch, part in parts.items():
        piece = part[:, genes].copy()
        piece.obs_names = [f"{name}-{batch}" for name in piece.obs_names]
        piece.obsm["proteins"].index = piece.obs_names
        pieces.append(piece)
    adata = ad.concat(pieces, join="inner")
    detected = np.asarray((adata.X > 0).sum(axis=0)).ravel() >= 1
    adata = adata[:, detected].copy()

    proteins = adata.obsm.pop("proteins")[shared_proteins].to_numpy().astype(np.int64)
    adata.obsm["protein_expression"] = proteins
    adata.uns["protein_names"] = np.array(shared_proteins, dtype=object)
    adata.obs["batch"] = pd.Categorical(adata.obs["batch"], categories=list(FILES))
    adata.obs["n_counts"] = np.asarray(adata.X.sum(axis=1)).ravel().astype(np.float32)
    adata.obs["n_genes"] = np.diff(adata.X.indptr).astype(np.int64)
    adata.X = sp.csr_matrix(adata.X, dtype=np.float32)
    assert np.all(adata.X.data == np.round(adata.X.data)) and adata.X.data.min() > 0

    target = pathlib.Path(os.environ.get("PBMC_TWO_BATCH_OUT", ".")) / "pbmc_two_batch.h5ad"
    adata.write_h5ad(target, compression="gzip")
    print(adata)
    print("genes: shared", len(genes), "kept (detected in >= 1 cell)", adata.n_vars)
    print("batches:", adata.obs["batch"].value_counts().to_dict())
    print("proteins kept:", len(shared_proteins), "of", [len(p) for p in panels])
    print("total counts:", float(adata.X.sum()), "nnz:", adata.X.nnz)
    print(f"{target.name}: {target.stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
