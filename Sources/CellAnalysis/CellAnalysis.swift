import Torch
import CellData
