import ArgumentParser
import Foundation
import SingleCell

/// A model kind whose saved folder the model-folder verbs open (`embed`, `latent`): scVI,
/// LDVAE, scAtlasVAE, … Each verb is one generic command; a kind adds itself by conforming.
protocol FolderModelKind {
  associatedtype Model
  /// The subcommand it lives under, e.g. "scvi".
  static var name: String { get }
  static var title: String { get }
  /// The obsm key of its latent representation.
  static var latentKey: String { get }
  /// The model saved in `dir` (with the data it was trained on, `dir/adata.h5ad`, where it needs it).
  static func open(_ dir: URL, device: Device) throws -> Model
  static func genes(_ model: Model) -> [String]
  /// The layer of counts the model reads (nil: X).
  static func layer(_ model: Model) -> String?
  /// The latent representation of `cells`, which hold the model's genes in its order;
  /// `batch` puts every cell in that batch.
  static func latent(_ model: Model, _ cells: AnnData, batch: String?) throws -> Tensor
}

extension FolderModelKind {
  /// `data` read and aligned to the model's genes (reordered by name, missing genes zero,
  /// with a warning that counts them; no shared gene is an error).
  static func alignedData(_ model: Model, _ path: String) throws -> (original: AnnData, aligned: AnnData, missing: Int) {
    let original = try AnnData.read(input: path)
    var source = original
    // A 10x matrix has its counts in X, whichever layer the model was trained on.
    if AnnData.isTenXInput(path), let counts = layer(model) { source.layers[counts] = source.X }
    let (aligned, missing) = try AnnData.aligned(source, toGenes: genes(model), layer: layer(model))
    if missing > 0 {
      warn("\(missing) of the model's \(genes(model).count) genes are missing from \(path) and were set to zero")
    }
    return (original, aligned, missing)
  }
}

/// `singlecell <model> embed MODEL DATA -o OUT`: the latent of new cells into obsm.
struct EmbedCommand<K: FolderModelKind>: ParsableCommand {
  static var configuration: CommandConfiguration {
    CommandConfiguration(
      commandName: "embed", abstract: "Embed new cells with a trained \(K.title) model.",
      discussion: """
        Writes DATA with obsm['\(K.latentKey)']. Genes are matched by name and reordered to the \
        model's; genes the data lacks are zero-filled, with a warning that counts them.
        """)
  }

  @OptionGroup var global: GlobalOptions
  @Argument(help: "Model folder.") var model: String
  @Argument(help: "\(countsInputHelp).") var data: String
  @Option(name: [.short, .customLong("output")], help: "Output .h5ad.") var output: String
  @Option(help: "Embed every cell as if from this batch of the model.") var batch: String?

  func run() throws {
    let device = try global.apply()
    let loaded = try K.open(URL(fileURLWithPath: model), device: device)
    var (result, aligned, _) = try K.alignedData(loaded, data)
    result.obsm[K.latentKey] = try K.latent(loaded, aligned, batch: batch).floatElement()
    try result.write(h5ad: output)
    print("wrote \(output): obsm['\(K.latentKey)'] for \(result.nObs) cells")
  }
}

/// `singlecell <model> latent MODEL [DATA] -o OUT.csv`: the latent as CSV (cells × dimensions).
struct LatentCommand<K: FolderModelKind>: ParsableCommand {
  static var configuration: CommandConfiguration {
    CommandConfiguration(
      commandName: "latent", abstract: "Write the \(K.title) latent representation as CSV, one row per cell.",
      discussion: "Of the training cells (the model folder's adata.h5ad) unless DATA is given.")
  }

  @OptionGroup var global: GlobalOptions
  @Argument(help: "Model folder.") var model: String
  @Argument(help: "\(countsInputHelp) (default: the model folder's adata.h5ad).") var data: String?
  @Option(name: [.short, .customLong("output")], help: "Output .csv.") var output: String
  @Option(help: "Embed every cell as if from this batch of the model.") var batch: String?

  func run() throws {
    let device = try global.apply()
    let dir = URL(fileURLWithPath: model)
    let loaded = try K.open(dir, device: device)
    let (original, aligned, _) = try K.alignedData(loaded, data ?? dir.appendingPathComponent("adata.h5ad").path)
    let latent = try K.latent(loaded, aligned, batch: batch)
    let columns = (0..<latent.size(1)).map { "\(K.latentKey)_\($0)" }
    try writeAtomically(Data(matrixCSV(latent, rows: original.obsNames, columns: columns).utf8), to: URL(fileURLWithPath: output))
    print("wrote \(output): \(latent.size(0)) cells × \(latent.size(1)) dimensions")
  }
}

/// A matrix as CSV with a header of `columns` and one named row per `rows` entry.
func matrixCSV(_ matrix: Tensor, rows: [String], columns: [String]) -> String {
  let values = matrix.to(.cpu).contiguous().toArray(Float.self)
  let width = columns.count
  var lines = [([""] + columns).map(csvField).joined(separator: ",")]
  for (r, name) in rows.enumerated() {
    lines.append(([csvField(name)] + (0..<width).map { "\(values[r * width + $0])" }).joined(separator: ","))
  }
  return lines.joined(separator: "\n") + "\n"
}

/// A CSV field, quoted when it holds a comma, quote or line break.
func csvField(_ text: String) -> String {
  guard text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return text }
  return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
}
