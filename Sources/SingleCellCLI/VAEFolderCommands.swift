import ArgumentParser
import Foundation
import SingleCell

/// The scVI/LDVAE verbs of a scvi-tools user on a trained model folder: map, normalize,
/// sample, loadings. Like every model-folder verb, DATA is matched to the model's genes by
/// name; normalize and sample write the data over the model's genes (missing ones zero).

/// `map MODEL QUERY -o OUTDIR`: scArches query mapping (scvi-tools' `load_query_data` + `train`).
struct VAEMap<K: VAEKind>: ParsableCommand {
  static var configuration: CommandConfiguration {
    CommandConfiguration(
      commandName: "map", abstract: "Map a query onto a trained \(K.title) model (scArches: new batches, online update).",
      discussion: """
        The query's new batches are added to the model's; training updates only the batch \
        columns, the decoder's batch norm and the library encoder, as scvi-tools' \
        load_query_data. Writes OUTDIR/model.*, adata.h5ad (the query with obsm['\(K.latentKey)']), \
        history.csv and metrics.json; a failed run leaves OUTDIR as it was.
        """)
  }

  @OptionGroup var global: GlobalOptions
  @Argument(help: "Reference model folder.") var model: String
  @Argument(help: "Query .h5ad with raw counts and the model's batch column.") var query: String
  @Option(name: [.short, .customLong("output")], help: "Output folder.") var output: String
  @Option(help: "Training epochs on the query (default: min(round(20000 / cells · 400), 400)).") var maxEpochs: Int?
  @Option(help: "Adam learning rate.") var lr = 1e-3
  @Option(help: "Adam weight decay (scvi-tools' query tutorial uses 0).") var weightDecay = 0.0
  @Flag(help: "No progress line.") var quiet = false

  func run() throws {
    let device = try global.apply()
    let reference = try K.open(URL(fileURLWithPath: model), device: device)
    var (_, aligned, _) = try K.alignedData(reference, query)
    aligned = try K.withBatch(reference, aligned, nil)
    let mapped = try SCVIModel.loadQueryData(aligned, reference: reference)
    var options = SCVIModel.TrainingOptions(maxEpochs: maxEpochs, learningRate: lr, seed: global.seed, progress: !quiet)
    options.weightDecay = weightDecay
    try writeFolderAtomically(URL(fileURLWithPath: output)) { staging in
      try mapped.train(options)
      try mapped.save(to: staging)
      var result = aligned
      result.obsm[K.latentKey] = try mapped.latentRepresentation().floatElement()
      try result.write(h5ad: staging.appendingPathComponent("adata.h5ad").path)
      try writeAtomically(Data(mapped.history.csv().utf8), to: staging.appendingPathComponent("history.csv"))
      try writeJSON(["n_cells": aligned.nObs, "epochs": mapped.history.epochs.count, "train_seconds": mapped.trainSeconds,
                     "batches": mapped.setup.batchCategories],
                    to: staging.appendingPathComponent("metrics.json"))
    }
    print("wrote \(output): \(aligned.nObs) query cells, batches \(mapped.setup.batchCategories.joined(separator: ", "))")
  }
}

/// `normalize MODEL DATA -o OUT`: scvi-tools' `get_normalized_expression` into a layer.
struct VAENormalize<K: VAEKind>: ParsableCommand {
  static var configuration: CommandConfiguration {
    CommandConfiguration(
      commandName: "normalize", abstract: "Denoised, batch-corrected expression (get_normalized_expression) into a layer.")
  }

  @OptionGroup var global: GlobalOptions
  @Argument(help: "Model folder.") var model: String
  @Argument(help: "\(countsInputHelp).") var data: String
  @Option(name: [.short, .customLong("output")], help: "Output .h5ad.") var output: String
  @Option(help: "Scale each cell to this many counts (default: the normalized scale, rows summing to 1).")
  var librarySize: Double?
  @Option(help: "Posterior samples to average.") var nSamples = 1
  @Option(help: "Decode as if from this batch (repeat to average over several).") var transformBatch: [String] = []
  @Option(help: "Encode every cell as if from this batch.") var batch: String?
  @Option(help: "Name of the layer written.") var layerName = "\(K.name)_normalized"

  func run() throws {
    let device = try global.apply()
    let loaded = try K.open(URL(fileURLWithPath: model), device: device)
    var (_, aligned, _) = try K.alignedData(loaded, data)
    let useBatch = batch ?? (aligned.obs[loaded.setup.batchKey ?? ""] == nil ? transformBatch.first : nil)
    aligned = try K.withBatch(loaded, aligned, useBatch)
    let expression = try loaded.normalizedExpression(aligned, libraryScale: librarySize, transformBatches: transformBatch,
                                                     nSamples: nSamples)
    aligned.layers[layerName] = try denseMatrix(expression)
    try aligned.write(h5ad: output)
    print("wrote \(output): layers['\(layerName)'] over the model's \(expression.size(1)) genes")
  }
}

/// `sample MODEL DATA -o OUT`: counts drawn from the posterior predictive into layers.
struct VAESample<K: VAEKind>: ParsableCommand {
  static var configuration: CommandConfiguration {
    CommandConfiguration(
      commandName: "sample", abstract: "Posterior predictive counts (posterior_predictive_sample) into layers.")
  }

  @OptionGroup var global: GlobalOptions
  @Argument(help: "Model folder.") var model: String
  @Argument(help: "\(countsInputHelp).") var data: String
  @Option(name: [.short, .customLong("output")], help: "Output .h5ad.") var output: String
  @Option(help: "Samples: one layer each (NAME, or NAME_0, NAME_1, … for several).") var nSamples = 1
  @Option(help: "Encode every cell as if from this batch.") var batch: String?
  @Option(help: "Name of the layer written.") var layerName = "\(K.name)_sample"

  func run() throws {
    let device = try global.apply()
    let loaded = try K.open(URL(fileURLWithPath: model), device: device)
    var (_, aligned, _) = try K.alignedData(loaded, data)
    aligned = try K.withBatch(loaded, aligned, batch)
    let samples = try loaded.posteriorPredictiveSample(aligned, nSamples: nSamples)
    if nSamples == 1 {
      aligned.layers[layerName] = try denseMatrix(samples)
    } else {
      for i in 0..<nSamples { aligned.layers["\(layerName)_\(i)"] = try denseMatrix(samples.select(dim: 2, index: i)) }
    }
    try aligned.write(h5ad: output)
    print("wrote \(output): \(nSamples) posterior predictive sample(s) over the model's \(samples.size(1)) genes")
  }
}

/// `ldvae loadings MODEL -o OUT.csv`: genes × factors.
struct LoadingsCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "loadings", abstract: "Write LDVAE's gene loadings (get_loadings) as CSV, genes × factors.")

  @OptionGroup var global: GlobalOptions
  @Argument(help: "LDVAE model folder.") var model: String
  @Option(name: [.short, .customLong("output")], help: "Output .csv.") var output: String

  func run() throws {
    let device = try global.apply()
    let loaded = try LDVAEKind.open(URL(fileURLWithPath: model), device: device)
    let loadings = try loaded.loadings()
    let columns = (0..<loadings.size(1)).map { "Z_\($0)" }
    try writeAtomically(Data(matrixCSV(loadings, rows: loaded.setup.geneNames, columns: columns).utf8),
                        to: URL(fileURLWithPath: output))
    print("wrote \(output): \(loadings.size(0)) genes × \(loadings.size(1)) factors")
  }
}

/// A 2-D tensor as a dense float32 matrix for a layer. A layer must span every gene of the
/// AnnData: callers pass data aligned to the model's genes.
func denseMatrix(_ tensor: Tensor) throws -> Matrix {
  let matrix = tensor.to(.cpu).to(.float32).contiguous()
  return .dense(try DenseArray(shape: matrix.shape, data: .float32(matrix.toArray(Float.self))))
}

/// `import DIR -o OUTDIR`: a scvi-tools model folder as our model folder.
struct VAEImport<K: VAEKind>: ParsableCommand {
  static var configuration: CommandConfiguration {
    CommandConfiguration(
      commandName: "import", abstract: "Open a scvi-tools \(K.kind == .scvi ? "SCVI" : "LinearSCVI") model folder (model.save) as a \(K.title) model folder.",
      discussion: """
        Reads scvi-tools 1.x and 0.15–0.20 model.pt, and the pre-0.15 model_params.pt + attr.pkl + \
        var_names.csv. The data is DIR/adata.h5ad (save_anndata=True) unless --data is given; its \
        genes are matched to the model's by name. Writes OUTDIR/model.safetensors, model.json and adata.h5ad.
        """)
  }

  @OptionGroup var global: GlobalOptions
  @Argument(help: "scvi-tools model folder.") var folder: String
  @Option(name: [.short, .customLong("output")], help: "Output model folder.") var output: String
  @Option(help: ".h5ad with the model's genes, batches and labels (default: FOLDER/adata.h5ad).") var data: String?

  func run() throws {
    _ = try global.apply()
    let dir = URL(fileURLWithPath: folder)
    let contents = try SCVIModel.readScviToolsFolder(dir)
    guard contents.kind == K.kind else {
      throw ValidationError("\(folder) holds a scvi-tools \(contents.modelName) model; use `singlecell \(contents.kind.rawValue) import`")
    }
    let path = data ?? dir.appendingPathComponent("adata.h5ad").path
    guard FileManager.default.fileExists(atPath: path) else {
      throw ValidationError("\(folder) has no adata.h5ad (saved without save_anndata=True): pass the data with --data")
    }
    let (aligned, missing) = try AnnData.aligned(try AnnData.read(h5ad: path), toGenes: contents.geneNames, layer: contents.layer)
    if missing > 0 { warn("\(missing) of the model's \(contents.geneNames.count) genes are missing from \(path) and were set to zero") }
    let model = try SCVIModel.importScviTools(dir, adata: aligned)
    try writeFolderAtomically(URL(fileURLWithPath: output)) { staging in
      try model.save(to: staging)
      try aligned.write(h5ad: staging.appendingPathComponent("adata.h5ad").path)
    }
    print("wrote \(output): \(contents.modelName) (scvi-tools \(contents.version ?? "< 0.15")) over \(contents.geneNames.count) genes")
  }
}

/// `export MODEL -o DIR --format scvi-tools`: our model folder as a scvi-tools model folder.
struct VAEExport<K: VAEKind>: ParsableCommand {
  static var configuration: CommandConfiguration {
    CommandConfiguration(
      commandName: "export", abstract: "Write a \(K.title) model folder as a scvi-tools model folder.",
      discussion: "DIR/model.pt opens with scvi.model.\(K.kind == .scvi ? "SCVI" : "LinearSCVI").load(DIR, adata) (scvi-tools 1.x) on data with the model's genes; --save-anndata also writes DIR/adata.h5ad.")
  }

  @OptionGroup var global: GlobalOptions
  @Argument(help: "Model folder.") var model: String
  @Option(name: [.short, .customLong("output")], help: "Output folder.") var output: String
  @Option(help: "Output format (only scvi-tools).") var format = "scvi-tools"
  @Flag(help: "Also write the model's data as DIR/adata.h5ad.") var saveAnndata = false

  func run() throws {
    guard format == "scvi-tools" else { throw ValidationError("--format must be scvi-tools, got '\(format)'") }
    let dir = URL(fileURLWithPath: model)
    let loaded = try K.open(dir, device: try global.apply())
    try writeFolderAtomically(URL(fileURLWithPath: output)) { staging in
      try loaded.exportScviTools(to: staging)
      if saveAnndata {
        try FileManager.default.copyItem(at: dir.appendingPathComponent("adata.h5ad"), to: staging.appendingPathComponent("adata.h5ad"))
      }
    }
    print("wrote \(output)/model.pt (scvi-tools \(SCVIModel.scviToolsLayoutVersion) layout)")
  }
}
