// The models (SCVI/, SCBasset/, ScAtlasVAE/, ScGPT/) and their shared Training/ infrastructure.
import CellData
import Torch
