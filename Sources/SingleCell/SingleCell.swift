// The umbrella module: `import SingleCell` brings in every public layer.
@_exported import CellAnalysis
@_exported import CellData
@_exported import CellModels
@_exported import Genomics
@_exported import Torch
