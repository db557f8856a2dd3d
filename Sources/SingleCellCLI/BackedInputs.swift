import ArgumentParser
import Foundation
import SingleCell

/// Input .h5ad files opened backed (`--backed`): one file, or several read as one collection
/// with genes aligned by name to the first file's (a warning counts the genes a file lacks, when
/// first opened for training).
struct BackedInputs {
  let source: RowBlockSource
  /// obs, var and uns of the cells, no counts; `uns['streamed_from']` names the files (absolute
  /// paths) and `uns['streamed_layer']` the layer, so a model folder can open them again.
  let metadata: AnnData

  static func open(_ paths: [String], layer: String?, warnMissingGenes: Bool = true) throws -> BackedInputs {
    let element = layer.map { "layers/\($0)" } ?? "X"
    let source: RowBlockSource
    var metadata: AnnData
    if paths.count == 1 {
      let file = try BackedH5AD.open(paths[0], element: element)
      (source, metadata) = (file, file.metadata)
    } else {
      let collection = try BackedCollection(paths: paths, element: element)
      for (file, missing) in zip(collection.files, collection.missingGenes) where warnMissingGenes && missing > 0 {
        warn("\(missing) of the \(collection.genes.count) genes of \(paths[0]) are missing from \(file.path) and read as zero")
      }
      (source, metadata) = (collection, collection.metadata)
    }
    metadata.uns["streamed_from"] = .array(.string(paths.map { URL(fileURLWithPath: $0).standardizedFileURL.path }))
    if let layer { metadata.uns["streamed_layer"] = .array(.string([layer])) }
    return BackedInputs(source: source, metadata: metadata)
  }

  /// The files a streamed run recorded in `adata.uns` (see `metadata`), opened again with
  /// `adata` as their metadata; nil when `adata` was not written by a streamed run.
  static func reopen(_ adata: AnnData) throws -> BackedInputs? {
    guard case .dense(let files)? = adata.uns["streamed_from"] else { return nil }
    let paths = (0..<files.data.count).map { files.data.text(at: $0) }
    var layer: String?
    if case .dense(let layers)? = adata.uns["streamed_layer"], layers.data.count == 1 { layer = layers.data.text(at: 0) }
    let opened: BackedInputs
    do {
      opened = try open(paths, layer: layer, warnMissingGenes: false)  // training said so already
    } catch {
      throw ValidationError("the model was trained streaming from \(paths.joined(separator: ", ")), which cannot be opened again: \(error)")
    }
    guard opened.source.nRows == adata.nObs else {
      throw ValidationError("\(opened.source.sourceDescription) has \(opened.source.nRows) cells, but the model folder's adata.h5ad has \(adata.nObs): the files changed since training")
    }
    return BackedInputs(source: opened.source, metadata: adata)
  }
}

/// `--backed` and its block and buffer sizes, shared by the training commands that stream.
struct BackedArguments: ParsableArguments {
  @Flag(help: "Stream the counts from disk by row blocks instead of reading them into memory (docs/scale.md); several inputs are then read as one collection, genes aligned by name to the first file's.")
  var backed = false
  @Option(help: "--backed: contiguous rows per block read.") var blockRows = 256
  @Option(help: "--backed: blocks shuffled together in one buffer.") var bufferBlocks = 32

  func validate() throws {
    if blockRows < 1 || bufferBlocks < 1 { throw ValidationError("--block-rows and --buffer-blocks must be positive") }
  }

  /// Refuses what `--backed` alone allows: no input, or several inputs without it.
  func check(inputs: [String]) throws {
    if inputs.isEmpty { throw ValidationError("give an input .h5ad") }
    if inputs.count > 1 && !backed { throw ValidationError("several inputs are read as one collection only with --backed") }
  }

  /// The loader's block and buffer sizes.
  var loaderOptions: StreamingLoader.Options { StreamingLoader.Options(blockRows: blockRows, bufferBlocks: bufferBlocks) }
}
