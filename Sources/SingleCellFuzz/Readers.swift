import CellData
import CellModels
import Foundation
import Genomics
import Torch

// One entry point per reader of an outside file, shared by the replay driver (`singlecell-fuzz
// READER FILE...`, which the mutation tests of `make test` run in a child process) and by the
// libFuzzer harness that `make fuzz` builds. Each reader reads the file the way a command does
// and touches what it read; a malformed file must end in a thrown error, never a crash, a hang or
// an allocation above the limit the driver sets.
//
// Readers of several files take a bundle: the files' contents joined by `bundleSeparator`, in
// the order `bundleFiles` names them; the bundle is split into a fresh folder before reading.

let bundleSeparator: [UInt8] = Array("\n\u{1E}\u{1E}\u{1E}\n".utf8)

enum FuzzReader: String, CaseIterable {
  case h5ad, h5adBacked = "h5ad-backed", tenxH5 = "10x-h5", tenxMTX = "10x-mtx", tenxMTXgz = "10x-mtx-gz", fasta, fastaNoIndex = "fasta-noindex"
  case peaks, meme, jaspar, pfm, safetensors, torch, pickle, scviModel = "scvi-model", scgptConfig = "scgpt-config"
  case trainingCheckpoint = "training-checkpoint"
  case scviTools = "scvi-tools", scviToolsLegacy = "scvi-tools-legacy", scbassetScviTools = "scbasset-scvi-tools", scatlasvaeReference = "scatlasvae-reference"
  case atlasModel = "atlas-model", scbassetModel = "scbasset-model"

  /// The file names of a bundle's parts (nil: the input is one file named `single`).
  var bundleFiles: [String]? {
    switch self {
    case .tenxMTX: return ["matrix.mtx", "features.tsv", "barcodes.tsv"]
    case .tenxMTXgz: return ["matrix.mtx.gz", "features.tsv.gz", "barcodes.tsv.gz"]
    case .fasta: return ["genome.fa", "genome.fa.fai"]
    case .scviModel: return ["model.json", "model.safetensors"]
    case .scgptConfig: return ["vocab.json", "args.json"]
    case .scviTools, .scbassetScviTools: return ["model.pt"]
    case .scviToolsLegacy: return ["attr.pkl", "model_params.pt", "var_names.csv"]
    case .atlasModel: return ["model.json", "model.safetensors"]
    case .scbassetModel: return ["scbasset.json", "model.safetensors"]
    default: return nil
    }
  }

  var single: String {
    switch self {
    case .h5ad, .h5adBacked: return "input.h5ad"
    case .tenxH5: return "input.h5"
    case .fastaNoIndex: return "input.fa"
    case .peaks: return "peaks.txt"
    case .meme: return "motifs.meme"
    case .jaspar: return "motifs.jaspar"
    case .pfm: return "motif.pfm"
    case .safetensors, .trainingCheckpoint: return "input.safetensors"
    case .torch, .scatlasvaeReference: return "input.pt"
    case .pickle: return "input.pkl"
    default: return "input"
    }
  }
}

/// Splits a bundle into its parts (missing parts are empty, extra separators stay in the last).
func splitBundle(_ bytes: [UInt8], parts: Int) -> [[UInt8]] {
  var out: [[UInt8]] = []
  var start = 0, i = 0
  while out.count < parts - 1 && i + bundleSeparator.count <= bytes.count {
    if bytes[i] == bundleSeparator[0] && Array(bytes[i..<(i + bundleSeparator.count)]) == bundleSeparator {
      out.append(Array(bytes[start..<i]))
      i += bundleSeparator.count
      start = i
    } else {
      i += 1
    }
  }
  out.append(Array(bytes[start...]))
  while out.count < parts { out.append([]) }
  return out
}

/// Writes `bytes` as the reader's input under `folder` and returns the path to read.
func materialize(_ reader: FuzzReader, _ bytes: [UInt8], in folder: URL) throws -> String {
  try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
  if let names = reader.bundleFiles {
    for (name, part) in zip(names, splitBundle(bytes, parts: names.count)) {
      try Data(part).write(to: folder.appendingPathComponent(name))
    }
    return reader == .fasta ? folder.appendingPathComponent("genome.fa").path : folder.path
  }
  let url = folder.appendingPathComponent(reader.single)
  try Data(bytes).write(to: url)
  return url.path
}

/// Reads `path` with `reader`; returns a one-line summary of what was read.
func read(_ reader: FuzzReader, _ path: String) throws -> String {
  switch reader {
  case .h5ad:
    let a = try AnnData.read(h5ad: path, warn: { _ in })
    return "\(a.nObs) x \(a.nVars), X \(a.X?.summary ?? "none"), \(a.layers.count) layers, \(a.uns.count) uns"
  case .h5adBacked:
    // As `--backed` reads: open (metadata checked in a child first), then every row by blocks.
    let file = try BackedH5AD.open(path, warn: { _ in })
    var nnz = 0
    for start in stride(from: 0, to: file.nRows, by: 16) { nnz += try file.rows(start..<min(start + 16, file.nRows)).nnz }
    return "\(file.nRows) x \(file.nCols) \(file.layout.rawValue), \(nnz) values read"
  case .tenxH5:
    let a = try AnnData.read10xH5(path)
    return "\(a.nObs) x \(a.nVars)"
  case .tenxMTX, .tenxMTXgz:
    let a = try AnnData.read10xMTX(directory: path)
    return "\(a.nObs) x \(a.nVars)"
  case .fasta, .fastaNoIndex:
    let fasta = try FastaFile(path: path, writeIndex: false)
    var total = 0
    for name in fasta.chromosomeNames.prefix(64) {
      let length = try fasta.length(of: name)
      total += try fasta.sequence(chrom: name, start: 0, end: min(length, 4096)).count
      if length > 100 { total += try fasta.sequence(chrom: name, start: length - 100, end: length).count }
      total += try fasta.paddedSequence(chrom: name, start: -50, end: min(length, 200) + 50).count
    }
    if reader == .fastaNoIndex { total += try FastaRecords.read(from: path).count }
    return "\(fasta.chromosomeNames.count) sequences, \(total) bases read"
  case .peaks:
    guard let data = FileManager.default.contents(atPath: path) else { throw CocoaError(.fileReadUnknown) }
    let names = String(decoding: data, as: UTF8.self).split(separator: "\n").map(String.init)
    let peaks = try PeakCoordinates.peaks(names: names)
    return "\(peaks.count) peaks"
  case .meme, .jaspar, .pfm:
    let format: MotifFormat = reader == .meme ? .meme : reader == .jaspar ? .jaspar : .pfm
    let motifs = try MotifReader.read(path: path, format: format)
    let guessed = try? MotifReader.read(path: path)
    return "\(motifs.count) motifs (\(guessed?.count ?? -1) with a guessed format), \(motifs.map(\.consensus).joined(separator: ","))"
  case .safetensors:
    let (tensors, metadata) = try Safetensors.read(URL(fileURLWithPath: path))
    return "\(tensors.count) tensors, \(metadata.count) metadata"
  case .torch:
    let url = URL(fileURLWithPath: path)
    _ = try TorchFile.load(url)
    return "\(try TorchFile.loadStateDict(url).count) tensors"
  case .pickle:
    let value = try PickleFile.load(URL(fileURLWithPath: path), skippingPersistentIDs: true)
    return "\(value.dict?.entries.count ?? -1) entries"
  case .scviModel:
    let dir = URL(fileURLWithPath: path)
    let saved = try SCVIModel.readDescription(from: dir)
    let adata = try twoCells(genes: saved.setup.geneNames, layer: saved.setup.layer, columns: [
      (saved.setup.batchKey, saved.setup.batchCategories.first), (saved.setup.labelsKey, saved.setup.labelCategories.first),
    ])
    let model = try SCVIModel.load(from: dir, adata: adata)
    return "\(model.kind) with \(saved.setup.geneNames.count) genes"
  case .scviTools, .scviToolsLegacy:
    // As `scvi import` reads a scvi-tools folder (≥ 0.15: model.pt; older: the legacy trio):
    // the folder, then the model on its genes.
    let dir = URL(fileURLWithPath: path)
    let folder = try SCVIModel.readScviToolsFolder(dir)
    let adata = try twoCells(genes: folder.geneNames, layer: folder.layer, columns: [
      (folder.batchKey, folder.batchCategories.first), (folder.labelsKey, folder.labelCategories.first),
    ])
    let model = try SCVIModel.importScviTools(dir, adata: adata)
    return "\(model.kind) with \(folder.geneNames.count) genes"
  case .scbassetScviTools:
    let model = try SCBASSET.importScviTools(URL(fileURLWithPath: path))
    return "scBasset over \(model.cellNames.count) cells, \(model.config.sequenceLength) bp"
  case .scbassetModel:
    let model = try SCBASSET.load(from: URL(fileURLWithPath: path))
    return "scBasset over \(model.cellNames.count) cells, \(model.config.sequenceLength) bp"
  case .scatlasvaeReference:
    let (setup, module) = try ScAtlasVAE.readReferenceFile(URL(fileURLWithPath: path))
    return "scAtlasVAE with \(setup.geneNames.count) genes, \(module.parameters.count) parameters"
  case .atlasModel:
    // As `atlas embed`/`predict` load a folder, on two cells of its genes, batches and labels.
    let dir = URL(fileURLWithPath: path)
    let setup = try ScAtlasVAE.readSetup(from: dir)
    let labels = zip(setup.labelKeys, setup.labelCategories).map { ($0, $1.first) }
    let cells = try twoCells(genes: setup.geneNames, layer: nil, columns: [(setup.batchKey, setup.batchCategories.first)] + labels)
    let model = try ScAtlasVAE.load(from: dir, adata: cells, requireBatches: false)
    return "scAtlasVAE with \(model.setup.geneNames.count) genes"
  case .trainingCheckpoint:
    // As `--resume` reads it (the random streams are checked by setting them, then restored).
    let checkpoint = try TrainingCheckpoint.read(URL(fileURLWithPath: path))
    return "\(checkpoint.epochs) epochs, step \(checkpoint.step), \(checkpoint.model.count) + \(checkpoint.optimizer.count) tensors"
  case .scgptConfig:
    // vocab.json and args.json of an scGPT folder, and the model they describe (built only
    // when small: the folder loader checks the size against the weights first).
    let dir = URL(fileURLWithPath: path)
    var vocab = try GeneVocab(contentsOf: dir.appendingPathComponent("vocab.json"))
    _ = vocab.appendMissingSpecials()
    let args = try ScGPTModelFolder.readArgs(dir.appendingPathComponent("args.json"))
    let config = try ScGPTModelFolder.configuration(args: args, vocab: vocab, weights: StateDict())
    let size = config.ntoken * config.dModel + config.nLayers * config.dModel * (4 * config.dModel + 2 * config.dHid)
    if size < 2_000_000 { _ = try ScGPTNetwork(config) }
    return "\(vocab.count) tokens, d \(config.dModel), \(config.nLayers) layers"
  }
}

/// Two cells with one count each on `genes` (in X, and in `layer` when given), and obs columns
/// holding one category each: the smallest data a model loader accepts.
func twoCells(genes: [String], layer: String?, columns: [(key: String?, value: String?)]) throws -> AnnData {
  var obs = DataFrame(index: ["cell0", "cell1"])
  for case let (key?, value?) in columns where obs[key] == nil { try obs.set(key, .array(.string([value, value]))) }
  let counts = try SparseMatrix(
    format: .csr, nRows: 2, nCols: genes.count, data: .float32(genes.isEmpty ? [] : [1, 2]),
    indices: genes.isEmpty ? [] : [0, 0], indptr: genes.isEmpty ? [0, 0, 0] : [0, 1, 2])
  var adata = try AnnData(X: .sparse(counts), obs: obs, var: DataFrame(index: genes))
  if let layer { adata.layers[layer] = adata.X }
  return adata
}

/// Reads one input given as bytes (the libFuzzer entry point's job): writes it to a scratch
/// folder, reads it, removes the folder. Errors are the expected outcome of most inputs.
func readBytes(_ reader: FuzzReader, _ bytes: [UInt8], scratch: URL) -> Result<String, Error> {
  defer { try? FileManager.default.removeItem(at: scratch) }
  do {
    let path = try materialize(reader, bytes, in: scratch)
    return .success(try read(reader, path))
  } catch {
    return .failure(error)
  }
}
