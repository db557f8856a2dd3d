import Foundation
import XCTest

@testable import CellModels
import Torch

/// Train-mode statistics against the reference (tests/fixtures/scgpt/make_dropout_fixture.py):
/// masks differ draw for draw, so the same weights and input go through many train-mode passes
/// and the per-element mean and variance of the cell embedding and the predictions must agree
/// with torch's within sampling error, for libtorch's masks and for our fast ones.
final class ScGPTDropoutTests: XCTestCase {
  nonisolated(unsafe) private static let stats: StateDict = try! Safetensors.read(ScGPTFixtures.url("dropout_stats.safetensors")).tensors
  private let passes = 300

  func testTrainModeDropoutMatchesReferenceStatistics() throws {
    let referencePasses = Double(Self.stats["passes"]!.item())
    for (setting, p, pAttention) in [("all", 0.2, 0.2), ("residual", 0.2, 0.0), ("attention", 0.0, 0.2)] {
      for masks in [Runtime.DropoutMasks.libtorch, .fast] {
        let saved = Runtime.dropoutMasks
        Runtime.dropoutMasks = masks
        defer { Runtime.dropoutMasks = saved }
        Runtime.seed(1)
        let network = try ScGPTFixtures.model { $0.dropout = p; $0.attentionDropout = pAttention }.network
        network.train()
        var sums: [String: (Tensor, Tensor)] = [:]
        try withNoGrad {
          for _ in 0..<passes {
            let out = try network.forward(ScGPTFixtures.batch("B"))
            for (key, x) in [("cell_emb", out.cellEmbedding), ("mlm", out.mlmOutput)] {
              let x = x.to(.float64)
              let (s, s2) = sums[key] ?? (Tensor.zeros(x.shape, dtype: .float64), Tensor.zeros(x.shape, dtype: .float64))
              sums[key] = (s + x, s2 + x * x)
            }
          }
        }
        for (key, (s, s2)) in sums {
          let what = "\(setting) dropout, \(masks) masks, \(key)"
          let mean = s / Double(passes), variance = (s2 / Double(passes) - mean * mean).clamp(min: 0)
          let refMean = Self.stats["\(setting).\(key).mean"]!.to(.float64)
          let refVariance = Self.stats["\(setting).\(key).var"]!.to(.float64)
          // The dropout-induced spread: the same on average over elements.
          let ratio = variance.mean().item() / refVariance.mean().item()
          XCTAssertEqual(ratio, 1, accuracy: 0.06, "\(what): mean variance ratio \(ratio)")
          // The means agree within their standard errors (mean squared z near 1).
          let z2 = ((mean - refMean).pow(2) / (variance / Double(passes) + refVariance / referencePasses + 1e-12)).mean().item()
          XCTAssertLessThan(z2, 1.5, "\(what): mean squared z of the means \(z2)")
          parityLog("\(what): variance ratio \(ratio), mean z² \(z2)")
        }
      }
    }
  }

  /// Training's gradients under dropout: cross-entropy of the classifier (cell i → class i mod 5),
  /// every dropout at 0.2, our fast masks: the mean gradient of a few parameters points the same
  /// way as torch's with the same size, and the mean squared gradient norm (what clipping sees)
  /// and the loss's mean and spread over passes are the same.
  func testTrainModeGradientsMatchReferenceStatistics() throws {
    let saved = Runtime.dropoutMasks
    Runtime.dropoutMasks = .fast
    defer { Runtime.dropoutMasks = saved }
    Runtime.seed(2)
    let network = try ScGPTFixtures.model { $0.dropout = 0.2; $0.attentionDropout = 0.2 }.network
    network.train()
    let parameters = Dictionary(uniqueKeysWithValues: network.namedParameters().map { ($0.0, $0.1) })
    let names = ["cls_decoder.out_layer.weight", "transformer_encoder.layers.0.linear1.weight",
                 "transformer_encoder.layers.1.self_attn.in_proj_weight", "value_encoder.linear1.weight",
                 "encoder.embedding.weight"]
    let batch = ScGPTFixtures.batch("B")
    let classes = Tensor((0..<batch.geneIds.size(0)).map { Int64($0 % 5) })
    var sums = names.map { Tensor.zeros(parameters[$0]!.shape, dtype: .float64) }
    var norm2 = 0.0, losses: [Double] = []
    for _ in 0..<passes {
      network.zeroGrad()
      let out = try network.forward(batch, heads: [.cls])
      let loss = Functional.crossEntropy(out.clsOutput!, classes)
      loss.backward()
      losses.append(loss.item())
      for (i, name) in names.enumerated() { sums[i] = sums[i] + parameters[name]!.grad!.to(.float64) }
      norm2 += network.parameters.compactMap(\.grad).reduce(0) { $0 + $1.to(.float64).pow(2).sum().item() }
    }
    for (i, name) in names.enumerated() {
      let mean = sums[i] / Double(passes), reference = Self.stats["grad.\(name)"]!.to(.float64)
      let cosine = (mean * reference).sum().item() / (mean.norm().item() * reference.norm().item())
      let sizeRatio = mean.norm().item() / reference.norm().item()
      parityLog("\(name): cosine \(cosine), size ratio \(sizeRatio)")
      XCTAssertGreaterThan(cosine, 0.95, "\(name): mean gradient cosine \(cosine)")
      XCTAssertEqual(sizeRatio, 1, accuracy: 0.1, "\(name): mean gradient size ratio \(sizeRatio)")
    }
    let normRatio = norm2 / Double(passes) / Self.stats["grad.norm2"]!.item()
    parityLog("mean squared gradient norm ratio \(normRatio)")
    XCTAssertEqual(normRatio, 1, accuracy: 0.08, "mean squared gradient norm ratio \(normRatio)")
    // The loss's spread over passes sums up how the masks of different elements co-vary.
    let reference = Self.stats["grad.loss"]!.toArray(Float.self).map(Double.init)
    func meanAndSD(_ x: [Double]) -> (Double, Double) {
      let mean = x.reduce(0, +) / Double(x.count)
      return (mean, (x.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(x.count - 1)).squareRoot())
    }
    let (ours, theirs) = (meanAndSD(losses), meanAndSD(reference))
    parityLog("loss mean and sd \(ours) against \(theirs)")
    XCTAssertEqual(ours.0, theirs.0, accuracy: 4 * (ours.1 * ours.1 / Double(passes) + theirs.1 * theirs.1 / Double(reference.count)).squareRoot())
    XCTAssertEqual(ours.1 / theirs.1, 1, accuracy: 0.15, "loss spread ratio")
  }
}
