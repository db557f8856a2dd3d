import CellData
import Foundation
import XCTest

@testable import CellModels
import Torch

/// Generative pretraining: the minibatch split and the loop (generative and both).
final class ScGPTGenerativeTrainingTests: XCTestCase {
  func testSplitKeepsClsFirstAndSeparatesKnownFromGeneratedGenes() throws {
    let vocab = try GeneVocab(tokens: (0..<20).map { "g\($0)" } + ["<pad>", "<cls>", "<eoc>"])
    let pad = vocab["<pad>"]!, cls = vocab["<cls>"]!
    // Gene k (vocabulary id k) has value k + 1: cell 0 expresses genes 0..<12, cell 1 3..<8, cell 2 gene 9.
    let expressed: [Set<Int>] = [Set(0..<12), Set(3..<8), [9]]
    var binned: [Double] = []
    for cell in 0..<3 { for gene in 0..<12 { binned.append(expressed[cell].contains(gene) ? Double(gene + 1) : 0) } }
    var seed = ScGPTRandom(seed: 0)
    let tokens = try ScGPTCellTokens(binned: .dense(try DenseArray(rows: 3, cols: 12, values: binned)), geneIds: Array(0..<12),
                                     vocab: vocab, maxLength: 13, padValue: -2, random: &seed)
    var random = ScGPTRandom(seed: 1)
    var ratios = Set<Double>()
    for _ in 0..<30 {
      let split = ScGPTGenerativeSplit(tokens, rows: [0, 1, 2], random: &random)
      ratios.insert(split.ratio)
      let g = Int(Double(12) * split.ratio)
      XCTAssertEqual(split.gen.geneIds.size(1), g)
      XCTAssertEqual(split.pcpt.geneIds.size(1), 13 - g)
      let pIds = intRows(split.pcpt.geneIds), gIds = intRows(split.gen.geneIds)
      let pValues = floatRows(split.pcpt.values), gValues = floatRows(split.gen.values)
      for cell in 0..<3 {
        XCTAssertEqual(pIds[cell][0], cls)
        let known = pIds[cell].filter { $0 != pad && $0 != cls }, generated = gIds[cell].filter { $0 != pad }
        XCTAssertTrue(Set(known).isDisjoint(with: generated), "a gene is known and generated")
        // Values travel with their genes (gene k has value k + 1), pads carry the pad value.
        for (ids, values) in [(pIds[cell], pValues[cell]), (gIds[cell], gValues[cell])] {
          for (id, v) in zip(ids, values) where id != cls { XCTAssertEqual(v, id == pad ? -2 : Float(id + 1)) }
        }
      }
      let genPadding: Tensor = split.gen.paddingMask.to(.int64)
      XCTAssertTrue(intRows(genPadding)[2].allSatisfy { $0 == 1 }, "one gene: nothing to generate")
    }
    XCTAssertEqual(ratios, [0.25, 0.5, 0.75])
  }

  func testGenerativePretrainingLearnsAndEmbeds() throws {
    Runtime.seed(0)
    let adata = try ScGPTFineTuningTests.synthetic()
    for objective in [ScGPTObjective.generative, .generativeAndMasked] {
      var options = ScGPTFineTuningTests.smallOptions(.integration, epochs: 12)
      // Values are bins up to 50: the decoder must grow far from its start, so many small steps.
      options.training.learningRate = 1e-2
      options.training.batchSize = 4
      options.training.secondPassAfter = 100
            let model = try ScGPTTasks.pretrain(adata, options: options, objective: objective)
      XCTAssertTrue(model.folder.network.config.generative)
      XCTAssertNotNil(model.folder.network.stateDict()["flag_encoder.weight"])
      let history = model.result.history
      let gen = history.values("train_gen").compactMap { $0 }
      XCTAssertEqual(gen.count, 12)
      // The split ratio changes per minibatch, so single epochs are noisy: first against last three.
      XCTAssertLessThan(gen.suffix(3).reduce(0, +), 0.7 * gen.prefix(3).reduce(0, +), "\(objective): the generated values are learnt")
      XCTAssertNil(history.epochs[0]["train_gen_second"], "no second pass before its step")
      XCTAssertNotNil(history.epochs[11]["train_gen_second"], "the second pass after it")
      XCTAssertEqual(history.epochs[0]["train_gep"] != nil, objective == .generativeAndMasked)
      let embedded = try ScGPTTasks.embed(adata, folder: model.folder).embeddings
      XCTAssertEqual(embedded.shape, [60, 16])
      XCTAssertTrue(embedded.toArray(Float.self).allSatisfy(\.isFinite))
    }
    XCTAssertThrowsError(try ScGPTTasks.pretrain(adata, options: ScGPTFineTuningTests.smallOptions(.annotation), objective: .annotation))
  }
}
