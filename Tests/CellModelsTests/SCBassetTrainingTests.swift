import CellAnalysis
import CellData
import Foundation
import Genomics
import XCTest

@testable import CellModels
import Torch

/// A small scBasset trained once on the simulated scATAC set (data/atac), shared by the tests.
final class SCBassetTrainedFixture {
  nonisolated(unsafe) static let shared = Result { try SCBassetTrainedFixture() }

  let simulation: SimulatedATAC
  let regionsByCells: AnnData
  let model: SCBASSET
  let folder: URL

  /// A network small enough for debug-build CI: 96 bp, 32 filters, 2 tower blocks.
  static func smallConfig(cells: Int) -> SCBassetConfig {
    SCBassetTiny.config(cells: cells, length: 96, channels: 32, stemKernel: 13, pointwise: 16, bottleneck: 8)
  }

  /// The simulated set, shrunk for CI: 120 cells, 2,000 peaks of 96 bp with 96-bp windows, and a
  /// cleaner signal than the default (3 sites per peak, effect 5, baseline SD 0.3, 10–30 % of
  /// peaks open per cell).
  static func simulation(cells: Int = 120, peaks: Int = 2000) throws -> SimulatedATAC {
    let genome = try SimulatedATAC.loadGenome(try FastaFile(path: repositoryFile("data/atac/hg19_chr22_20-21Mb.fa").path, writeIndex: false))
    let motifs = try MotifReader.read(path: repositoryFile("data/atac/motifs.jaspar").path)
    var c = SimulatedATAC.Configuration.small
    c.cellCount = cells
    c.peakCount = peaks
    c.peakWidth = 96
    c.seqLen = 96
    c.plantRadius = 32
    c.sitesPerPeak = 3
    c.effect = 5
    c.baselineSD = 0.3
    c.openFractionRange = 0.1...0.3
    return try SimulatedATAC(genome: genome, motifs: motifs, configuration: c)
  }

  init() throws {
    Runtime.seed(0)
    simulation = try Self.simulation()
    regionsByCells = try simulation.annData().transposed()
    model = try SCBASSET(adata: regionsByCells, config: Self.smallConfig(cells: simulation.cellCount))
    var options = SCBassetTrainingOptions(maxEpochs: 30)
    options.batchSize = 16
    options.earlyStopping = false
    options.seed = 0
    // One libtorch thread: these convolutions are too small to gain from more on a shared 2-core machine.
    let threads = Runtime.threads
    Runtime.setThreads(1)
    defer { Runtime.setThreads(threads) }
    try model.train(options)
    folder = FileManager.default.temporaryDirectory.appendingPathComponent("scbasset-tests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
  }

  /// calico's motif library for the planted TFs, built from the simulated genome.
  func motifLibrary() throws -> URL {
    let library = folder.appendingPathComponent("motifs")
    if FileManager.default.fileExists(atPath: library.path) { return library }
    let genomePath = folder.appendingPathComponent("genome.fa").path
    try simulation.writeGenome(to: genomePath)
    let backgrounds = try MotifLibrary.shuffledBackgrounds(
      peaks: simulation.peaks, fasta: try FastaFile(path: genomePath), count: 200, seqLen: 96, seed: 1)
    let motifs = try MotifReader.read(path: repositoryFile("data/atac/motifs.jaspar").path)
    try MotifLibrary.write(backgrounds: backgrounds, motifs: motifs, to: library.path, seed: 2)
    return library
  }
}

final class SCBassetTrainingTests: XCTestCase {
  override class func tearDown() {
    if let fixture = try? SCBassetTrainedFixture.shared.get() { try? FileManager.default.removeItem(at: fixture.folder) }
    super.tearDown()
  }

  func testHeldOutAUROC() throws {
    let fixture = try SCBassetTrainedFixture.shared.get()
    let (meanPerCell, flat, perCell) = try fixture.model.auroc()
    print("scBasset held-out AUROC: per cell \(meanPerCell), flat \(flat); history \(fixture.model.history.last("auroc_train") ?? .nan)")
    XCTAssertEqual(perCell.count, fixture.simulation.cellCount)
    XCTAssertGreaterThanOrEqual(meanPerCell, 0.8)
    XCTAssertGreaterThanOrEqual(flat, 0.8)
    XCTAssertEqual(fixture.model.history.epochs.count, 30)
    XCTAssertNotNil(fixture.model.history.last("auroc_validation"))
  }

  /// Leave-one-out 10-NN majority vote and Leiden clusters of the cell embedding recover the
  /// planted cell types.
  func testCellEmbeddingSeparatesCellTypes() throws {
    let fixture = try SCBassetTrainedFixture.shared.get()
    let latent = fixture.model.latentRepresentation()
    let types = fixture.simulation.cellTypes
    XCTAssertEqual(latent.count, types.count)
    XCTAssertEqual(latent[0].count, 8)
    var correct = 0
    for i in latent.indices {
      let distances = latent.indices.filter { $0 != i }.map { j in
        (j, zip(latent[i], latent[j]).reduce(Float(0)) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) })
      }
      let nearest = distances.sorted { $0.1 < $1.1 }.prefix(10).map { types[$0.0] }
      let votes = Dictionary(nearest.map { ($0, 1) }, uniquingKeysWith: +)
      if votes.max(by: { ($0.value, -$0.key) < ($1.value, -$1.key) })!.key == types[i] { correct += 1 }
    }
    let accuracy = Double(correct) / Double(types.count)
    print("scBasset kNN cell-type accuracy: \(accuracy)")
    XCTAssertGreaterThanOrEqual(accuracy, 0.9)
    // Leiden on the 15-NN graph of the embedding (scib's resolution sweep) finds the same types.
    let representation = try Representation(rows: latent.count, cols: latent[0].count, values: latent.flatMap { $0.map(Double.init) })
    let knn = try Neighbors.knn(representation, k: 15)
    let leiden = try ClusterAgreement.leidenNMIARI(knn: knn, labels: LabelCodes(values: types))
    print("scBasset Leiden ARI \(leiden.ari), NMI \(leiden.nmi) at resolution \(leiden.resolution)")
    XCTAssertGreaterThanOrEqual(leiden.ari, 0.8)
    XCTAssertEqual(fixture.model.cellBias().count, types.count)
  }

  /// Each cell-type-specific TF scores highest, on average, in its own cell type.
  func testTFActivityRanksPlantedTFInItsCellType() throws {
    let fixture = try SCBassetTrainedFixture.shared.get()
    let library = try fixture.motifLibrary()
    let simulation = fixture.simulation
    for (typeIndex, typeName) in simulation.cellTypeNames.enumerated() {
      for tf in simulation.programs[typeName]! where tf != "CTCF" {
        let scores = try fixture.model.tfActivity(tf: tf, motifLibrary: library)
        XCTAssertEqual(scores.count, simulation.cellCount)
        let means = simulation.cellTypeNames.indices.map { t -> Double in
          let members = simulation.cellTypes.indices.filter { simulation.cellTypes[$0] == t }
          return members.map { scores[$0] }.reduce(0, +) / Double(members.count)
        }
        print("scBasset tfActivity \(tf): mean z by type \(means.map { String(format: "%.2f", $0) })")
        XCTAssertEqual(means.indices.max { means[$0] < means[$1] }, typeIndex, "\(tf) should score highest in \(typeName)")
      }
    }
    XCTAssertThrowsError(try fixture.model.tfActivity(tf: "NOT_A_TF", motifLibrary: library)) { error in
      XCTAssertTrue("\(error)".contains("NOT_A_TF"))
    }
  }

  func testSaveLoadRoundTrip() throws {
    let fixture = try SCBassetTrainedFixture.shared.get()
    let directory = fixture.folder.appendingPathComponent("saved")
    try fixture.model.save(to: directory)
    let loaded = try SCBASSET.load(from: directory, adata: fixture.regionsByCells)
    XCTAssertEqual(loaded.latentRepresentation(), fixture.model.latentRepresentation())
    XCTAssertEqual(loaded.cellNames, fixture.model.cellNames)
    XCTAssertEqual(loaded.history, fixture.model.history)
    let regions = [0, 5, 17]
    XCTAssertEqual(try loaded.accessibility(cells: [1, 2], regions: regions), try fixture.model.accessibility(cells: [1, 2], regions: regions))
    // The weights file alone carries its config.
    let network = try SCBassetCheckpoint.load(directory.appendingPathComponent(SCBASSET.weightsFileName))
    XCTAssertEqual(network.config, fixture.model.config)
  }
}
