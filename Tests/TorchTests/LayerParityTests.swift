import XCTest

import Torch

/// Forward outputs, input/parameter gradients and updated state of every layer match
/// PyTorch 2.11 (tests/fixtures/torch/make_fixtures.py) within rtol 1e-5 (f32).
final class LayerParityTests: XCTestCase {
  var fixture: Fixture!

  override func setUpWithError() throws { fixture = try Fixture("layers.safetensors") }

  /// Loads NAME.param.* into `module`, runs `forward` on NAME.in.*, backpropagates
  /// sum(out · NAME.upstream) and compares everything the fixture recorded.
  func check(_ name: String, _ module: Module?, inputs: [String], file: StaticString = #filePath, line: UInt = #line,
             forward: ([Tensor]) -> Tensor) throws {
    if let module {
      let params = fixture.tensors.scoped("\(name).param")
      try module.loadStateDict(params)
    }
    let xs = inputs.map { key -> Tensor in
      let x = fixture["\(name).in.\(key)"].clone()
      if x.dtype.isFloatingPoint { x.requiresGrad = true }
      return x
    }
    let out = forward(xs)
    assertClose(out, fixture["\(name).out"], "\(name) output", file: file, line: line)
    (out * fixture["\(name).upstream"]).sum().backward()
    for (key, x) in zip(inputs, xs) where fixture.has("\(name).grad.in.\(key)") {
      guard let g = x.grad else { XCTFail("\(name): no gradient for input \(key)", file: file, line: line); continue }
      assertClose(g, fixture["\(name).grad.in.\(key)"], "\(name) grad of input \(key)", file: file, line: line)
    }
    guard let module else { return }
    for (key, p) in module.namedParameters() {
      guard let g = p.grad else { XCTFail("\(name): no gradient for \(key)", file: file, line: line); continue }
      assertClose(g, fixture["\(name).grad.param.\(key)"], "\(name) grad of \(key)", file: file, line: line)
    }
    for (key, t) in module.stateDict() {
      assertClose(t, fixture["\(name).after.\(key)"], "\(name) state \(key) after forward", file: file, line: line)
    }
  }

  func testLinear() throws {
    let linear = Linear(7, 5)
    try check("linear", linear, inputs: ["x"]) { linear($0[0]) }
    let noBias = Linear(7, 5, bias: false)
    try check("linear_nobias", noBias, inputs: ["x"]) { noBias($0[0]) }
  }

  func testConv1d() throws {
    let conv = Conv1d(4, 6, kernelSize: 5, stride: 2, padding: 2)
    try check("conv1d", conv, inputs: ["x"]) { conv($0[0]) }
    let pointwise = Conv1d(6, 3, kernelSize: 1, bias: false)
    try check("conv1d_k1", pointwise, inputs: ["x"]) { pointwise($0[0]) }
  }

  func testBatchNormTrainingUpdatesRunningStatistics() throws {
    let bn = BatchNorm1d(6, eps: 1e-3, momentum: 0.01)
    try check("batchnorm_train", bn, inputs: ["x"]) { bn($0[0]) }
    XCTAssertEqual(bn.numBatchesTracked?.item(), 1)
  }

  func testBatchNormEval() throws {
    let bn = BatchNorm1d(5)
    bn.eval()
    try check("batchnorm_eval", bn, inputs: ["x"]) { bn($0[0]) }
  }

  func testLayerNorm() throws {
    let ln = LayerNorm(6, eps: 1e-6)
    try check("layernorm", ln, inputs: ["x"]) { ln($0[0]) }
  }

  func testEmbeddingWithPadding() throws {
    let emb = Embedding(10, 4, paddingIndex: 0)
    try check("embedding", emb, inputs: ["idx"]) { emb($0[0]) }
  }

  func testSequentialKeysAndTraining() throws {
    let seq = Sequential(Linear(5, 8), BatchNorm1d(8, eps: 1e-3, momentum: 0.01), ReLU(), Dropout(0), Linear(8, 3))
    XCTAssertEqual(Array(seq.stateDict().keys.prefix(3)), ["0.weight", "0.bias", "1.weight"])
    try check("sequential", seq, inputs: ["x"]) { seq($0[0]) }
  }

  func testMultiheadAttentionWithMasks() throws {
    let mha = MultiheadAttention(embedDim: 8, numHeads: 2, batchFirst: true)
    mha.eval()
    let kpm = fixture["mha.key_padding_mask"], mask = fixture["mha.attn_mask"]
    try check("mha", mha, inputs: ["x"]) { mha($0[0], $0[0], $0[0], keyPaddingMask: kpm, attnMask: mask) }
    let x = fixture["mha.in.x"]
    assertClose(mha.attentionWeights(x, x, keyPaddingMask: kpm, attnMask: mask), fixture["mha.weights"], "mha weights")
  }

  func testTransformerEncoderLayerPostNorm() throws {
    let layer = TransformerEncoderLayer(dModel: 8, nHead: 2, dimFeedforward: 16, dropout: 0.1, batchFirst: true)
    layer.eval()
    let kpm = fixture["encoder_postnorm.key_padding_mask"]
    try check("encoder_postnorm", layer, inputs: ["x"]) { layer($0[0], srcKeyPaddingMask: kpm) }
  }

  func testTransformerEncoderLayerPreNormGELU() throws {
    let layer = TransformerEncoderLayer(dModel: 8, nHead: 2, dimFeedforward: 16, dropout: 0.1, activation: .gelu,
                                        batchFirst: true, normFirst: true)
    layer.eval()
    let kpm = fixture["encoder_prenorm.key_padding_mask"]
    try check("encoder_prenorm", layer, inputs: ["x"]) { layer($0[0], srcKeyPaddingMask: kpm) }
  }

  func testActivationsAndElementwise() throws {
    try check("gelu", nil, inputs: ["x"]) { $0[0].gelu() }
    try check("gelu_tanh", nil, inputs: ["x"]) { $0[0].gelu(tanhApproximation: true) }
    try check("gelu_sigmoid", nil, inputs: ["x"]) { ($0[0] * 1.702).sigmoid() * $0[0] }
    try check("softplus", nil, inputs: ["x"]) { $0[0].softplus() }
    try check("log_sigmoid", nil, inputs: ["x"]) { $0[0].logSigmoid() }
    try check("leaky_relu", nil, inputs: ["x"]) { $0[0].leakyRelu(0.2) }
    try check("softmax", nil, inputs: ["x"]) { $0[0].softmax(dim: -1) }
    try check("log_softmax", nil, inputs: ["x"]) { $0[0].logSoftmax(dim: 1) }
    try check("lgamma_digamma", nil, inputs: ["x"]) { $0[0].lgamma() + $0[0].digamma() }
    try check("log1p_expm1", nil, inputs: ["x"]) { $0[0].abs().log1p() + $0[0].expm1() }
    try check("max_pool1d", nil, inputs: ["x"]) { Functional.maxPool1d($0[0], kernelSize: 3, ceilMode: true) }
  }

  func testAttentionFunctions() throws {
    let allowed = Tensor(bools: [true, true, false, true], shape: [1, 4]).expand([3, 4])
    try check("sdpa", nil, inputs: ["q", "k", "v"]) {
      Functional.scaledDotProductAttention($0[0], $0[1], $0[2], mask: allowed)
    }
    try check("sdpa_causal", nil, inputs: ["q", "k", "v"]) {
      Functional.scaledDotProductAttention($0[0], $0[1], $0[2], isCausal: true)
    }
  }

  func testLosses() throws {
    let weight = fixture["cross_entropy.weight"], target = fixture["cross_entropy.target"]
    try check("cross_entropy", nil, inputs: ["x"]) {
      Functional.crossEntropy($0[0], target, weight: weight).reshape([1])
    }
    let bceTarget = fixture["bce.target"]
    try check("bce", nil, inputs: ["x"]) { Functional.binaryCrossEntropyWithLogits($0[0], bceTarget).reshape([1]) }
    let mseTarget = fixture["mse.target"]
    try check("mse", nil, inputs: ["x"]) { Functional.mseLoss($0[0], mseTarget).reshape([1]) }
  }

  func testTrainingDropoutDrawsTorchsMaskForTheSameSeed() throws {
    let dropout = Dropout(0.3)
    try check("dropout_train", nil, inputs: ["x"]) { xs in
      Runtime.seed(123)
      return dropout(xs[0])
    }
    dropout.eval()
    let x = fixture["dropout_train.in.x"]
    XCTAssertEqual(dropout(x).toArray(Float.self), x.toArray(Float.self))
  }

  func testGradientReversal() throws {
    try check("grad_reversal", nil, inputs: ["x"]) { $0[0].gradientReversal(lambda: 0.7) * 2 }
  }
}
