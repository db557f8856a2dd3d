"""kNN label accuracy of a cell embedding against PCA on the same genes (the scGPT II criterion
"pretrain, then embed, beats PCA").

    singlecell scgpt pretrain DATA.h5ad -o MODEL --objective masked --epochs 20 --d-model 64 \
        --nheads 4 --d-hid 64 --nlayers 4 --lr 1e-3 --batch-size 32 --schedule cosine --warmup 0.1
    singlecell scgpt embed MODEL DATA.h5ad -o EMBEDDED.h5ad
    /root/venvs/scgpt/bin/python bench/scgpt/knn_vs_pca.py EMBEDDED.h5ad DATA.h5ad MODEL/args.json \
        [--label-key cell_type]

Accuracy: 5-fold cross-validated 10-nearest-neighbour classification (scikit-learn,
KNeighborsClassifier, Euclidean; the scGPT embedding is L2-normalised, so this is cosine order)
over the cells with a label. PCA: normalize_total 1e4, log1p, the model's genes (args.json
`genes`: its HVGs), 50 components (scanpy, arpack). Needs scanpy and scikit-learn (the scGPT
reference environment has both).
"""

import argparse
import json

import anndata as ad
import scanpy as sc
from sklearn.model_selection import cross_val_score
from sklearn.neighbors import KNeighborsClassifier


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("embedded")
    p.add_argument("data")
    p.add_argument("args_json")
    p.add_argument("--label-key", default="cell_type")
    a = p.parse_args()
    emb = ad.read_h5ad(a.embedded)
    labelled = emb.obs[a.label_key].notna().values
    y = emb.obs[a.label_key].astype(str).values[labelled]

    def accuracy(x):
        return float(cross_val_score(KNeighborsClassifier(n_neighbors=10), x[labelled], y, cv=5).mean())

    genes = json.load(open(a.args_json))["genes"]
    counts = ad.read_h5ad(a.data)[emb.obs_names].copy()
    sc.pp.normalize_total(counts, target_sum=1e4)
    sc.pp.log1p(counts)
    counts = counts[:, genes].copy()
    sc.pp.pca(counts, n_comps=50)
    result = {"n_labelled": int(labelled.sum()), "n_genes": len(genes),
              "knn_accuracy_scgpt": accuracy(emb.obsm["X_scGPT"]), "knn_accuracy_pca50": accuracy(counts.obsm["X_pca"]),
              "versions": {"scanpy": sc.__version__, "anndata": ad.__version__}}
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
