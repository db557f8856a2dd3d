import Torch

/// The outputs of `ScGPTNetwork.generativeForward` (the reference's `generative_forward`).
public struct ScGPTGenerativeOutput {
  /// Transformer outputs of the known (perceived) genes [B, P, d] (without `predictKnown`,
  /// [B, 1, d]: `<cls>` only) and of the genes to generate [B, G, d].
  public var pcptOutput: Tensor
  public var genOutput: Tensor
  /// Expression predictions [B, P] (with `predictKnown`) and [B, G] (the ExprDecoder on each part).
  public var pcptPreds: Tensor?
  public var genPreds: Tensor
  /// Output of the first known position (`<cls>`) [B, d].
  public var cellEmbedding: Tensor
  /// GEPC from the cell embedding over [known; generated] genes [B, P + G] (with MVC; without
  /// `predictKnown`, over the generated genes only [B, G]).
  public var mvcOutput: Tensor?
}

/// Generative pretraining's attention (the scGPT pretraining branch's `FlashscGPTLayer`, from
/// its facts): each cell is split into known genes (gene + value embedding) and genes to
/// generate (gene embedding + `flag_encoder` row 1, no value). Known genes attend among
/// themselves as in a plain layer; each generated gene's query attends to every known gene and
/// to itself only, with the layer's shared Q/K/V projection and no output projection (as the
/// reference, whose cross-attention projections are identities), then the same residual,
/// norms and feed-forward. So no generated gene sees another, and none changes the known genes'
/// outputs or the cell embedding.
extension ScGPTNetwork {
  /// `pcptGenes`/`pcptValues`/`pcptPadding` [B, P] (`<cls>` first), `genGenes`/`genPadding`
  /// [B, G] (padding masks true at `<pad>`). `inputCellEmbedding` [B, d] replaces the first known
  /// position's input (the reference's second pass). `predictKnown`: the known genes' outputs,
  /// predictions and GEPC, which are in no pretraining loss; without it the last layer computes the
  /// known genes' output at `<cls>` only (the generated genes need the known genes' keys and
  /// values, not their outputs), and the other outputs are the same.
  public func generativeForward(pcptGenes: Tensor, pcptValues: Tensor, pcptPadding: Tensor, genGenes: Tensor, genPadding: Tensor,
                                inputCellEmbedding: Tensor? = nil, mvc: Bool = true, predictKnown: Bool = true) throws
    -> ScGPTGenerativeOutput
  {
    guard let flag = generativeFlag, let continuousValueEncoder else {
      throw ScGPTError.invalidInput("this model has no generative flag embedding (flag_encoder) and continuous value encoder")
    }
    let b = pcptGenes.size(0)
    guard pcptGenes.rank == 2, pcptValues.shape == pcptGenes.shape, pcptPadding.shape == pcptGenes.shape, genGenes.rank == 2,
          genGenes.size(0) == b, genPadding.shape == genGenes.shape, pcptGenes.size(1) > 0
    else {
      throw ScGPTError.invalidInput("known genes, values and padding must be [cells, P], generated genes and padding [cells, G]")
    }
    for ids in [pcptGenes, genGenes] where ids.count > 0 {
      guard ids.dtype == .int64, Int(ids.min().item()) >= 0, Int(ids.max().item()) < config.ntoken else {
        throw ScGPTError.invalidInput("gene ids must be int64 within the vocabulary of \(config.ntoken)")
      }
    }
    if let c = inputCellEmbedding, c.shape != [b, config.dModel] {
      throw ScGPTError.invalidInput("the input cell embedding must be [\(b), \(config.dModel)]")
    }
    return try withTorchErrors {
      let (p, g) = (pcptGenes.size(1), genGenes.size(1))
      let tokens = encoder(Tensor.cat([pcptGenes, genGenes], dim: 1))  // one lookup: one embedding gradient to fill
      let pcptTokens = tokens.narrow(dim: 1, start: 0, length: p), genTokens = tokens.narrow(dim: 1, start: p, length: g)
      var pcpt = pcptTokens + continuousValueEncoder(pcptValues)
      if let c = inputCellEmbedding {
        pcpt = Tensor.cat([c.unsqueeze(dim: 1), pcpt.narrow(dim: 1, start: 1, length: pcpt.size(1) - 1)], dim: 1)
      }
      let flagRow = flag.weight.select(dim: 0, index: 1)
      var gen = genTokens + flagRow
      let knownMask = Tensor.zeros([b, 1, 1, p], dtype: pcpt.dtype, device: pcpt.device)
        .maskedFill(pcptPadding.to(.bool).reshape([b, 1, 1, p]), -.infinity)
      // A generated gene's keys: the unpadded known genes and itself (a padded generated gene
      // sees the known genes only, as the reference's mask; its output is never used).
      let index = Tensor.arange(0, Double(g), device: pcpt.device)
      let own = index.reshape([1, 1, g, 1]).eq(index.reshape([1, 1, 1, g]))
        .logicalAnd(genPadding.to(.bool).logicalNot().reshape([b, 1, g, 1]))
      let generatedMask = Tensor.cat([knownMask.expand([b, 1, g, p]),
                                      Tensor.zeros([b, 1, g, g], dtype: pcpt.dtype, device: pcpt.device).maskedFill(own.logicalNot(), -.infinity)],
                                     dim: 3)
      let layers = transformerEncoder.layers.modules
      for (i, layer) in layers.enumerated() {
        (pcpt, gen) = generativeLayer(layer, pcpt: pcpt, gen: gen, knownMask: knownMask, generatedMask: generatedMask,
                                      clsOnly: !predictKnown && i == layers.count - 1)
      }
      let cell = pcpt.select(dim: 1, index: 0)
      var out = ScGPTGenerativeOutput(
        pcptOutput: pcpt, genOutput: gen, pcptPreds: predictKnown ? decoder.decode(pcpt, values: pcptValues).pred : nil,
        genPreds: decoder.decode(gen, values: Tensor.zeros(genGenes.shape, device: gen.device)).pred, cellEmbedding: cell)
      if mvc, let mvcDecoder {
        let genes = predictKnown ? tokens : genTokens
        out.mvcOutput = mvcDecoder(cellEmbedding: cell, geneEmbeddings: genes).pred
      }
      return out
    }
  }

  /// One layer on both parts, in one pass over [known; generated] where the two agree (the
  /// Q/K/V projection, dropout, norms and feed-forward): the known genes' self-attention as the
  /// layer's own (output projection); the generated genes' attention over [known; generated]
  /// keys under `generatedMask` [B, 1, G, P + G] (additive: the known block is `knownMask`
  /// [B, 1, 1, P], −∞ at padding; of the generated block only the diagonal is open), both in
  /// libtorch's fused kernel, which keeps no score matrix. `clsOnly`: the known genes' output at
  /// `<cls>` only ([B, 1, d]).
  private func generativeLayer(_ layer: TransformerEncoderLayer, pcpt: Tensor, gen: Tensor, knownMask: Tensor,
                               generatedMask: Tensor, clsOnly: Bool) -> (pcpt: Tensor, gen: Tensor) {
    let attention = layer.selfAttention
    let (b, p, g, d) = (gen.size(0), pcpt.size(1), gen.size(1), gen.size(2))
    let h = attention.numHeads, dh = d / h, queries = clsOnly ? 1 : p
    let all = Tensor.cat([pcpt, gen], dim: 1)
    let input = layer.normFirst ? layer.norm1(all) : all
    let qkv = Functional.linear(input, weight: attention.inProjWeight, bias: attention.inProjBias)  // [B, P + G, 3d]
    /// Queries (part 0), keys (1) or values (2) of positions start..<start + length: [B, h, length, dh].
    func heads(_ part: Int, start: Int = 0, length: Int) -> Tensor {
      qkv.narrow(dim: 1, start: start, length: length).narrow(dim: 2, start: part * d, length: d)
        .reshape([b, length, h, dh]).transpose(1, 2)
    }
    let dropout = attention.isTraining ? attention.dropout : 0
    let known = Functional.scaledDotProductAttention(heads(0, length: queries), heads(1, length: p), heads(2, length: p),
                                                     mask: knownMask, dropout: dropout)
    let generated = Functional.scaledDotProductAttention(heads(0, start: p, length: g), heads(1, length: p + g),
                                                         heads(2, length: p + g), mask: generatedMask, dropout: dropout)
    // The generated genes' attention has no output projection (the reference's is the identity).
    let attended = layer.dropout1(Tensor.cat([attention.outProj(known.transpose(1, 2).reshape([b, queries, d])),
                                              generated.transpose(1, 2).reshape([b, g, d])], dim: 1))
    func feedForward(_ x: Tensor) -> Tensor {
      let hidden = layer.linear1(x)
      return layer.dropout2(layer.linear2(layer.dropout(layer.activation == .relu ? hidden.relu() : hidden.gelu())))
    }
    let out: Tensor
    if layer.normFirst {
      // Known genes as a pre-norm layer; generated genes as the reference's pre-norm branch,
      // which takes the residual from the normalised input and normalises before the feed-forward.
      let xp = pcpt.narrow(dim: 1, start: 0, length: queries) + attended.narrow(dim: 1, start: 0, length: queries)
      let xg = layer.norm2(input.narrow(dim: 1, start: p, length: g) + attended.narrow(dim: 1, start: queries, length: g))
      out = Tensor.cat([xp, xg], dim: 1) + feedForward(Tensor.cat([layer.norm2(xp), xg], dim: 1))
    } else {
      let residual = clsOnly ? Tensor.cat([pcpt.narrow(dim: 1, start: 0, length: 1), gen], dim: 1) : all
      let x = layer.norm1(residual + attended)
      out = layer.norm2(x + feedForward(x))
    }
    return (out.narrow(dim: 1, start: 0, length: queries), out.narrow(dim: 1, start: queries, length: g))
  }
}

/// One minibatch split for generative pretraining, as the reference's collator: a ratio r
/// drawn from {0.25, 0.5, 0.75} for the minibatch; with L the longest cell (`<cls>` included),
/// G = ⌊(L − 1)·r⌋ generated and L − G known positions. Each cell's genes are shuffled; the
/// first ⌊n·r⌋ are generated, the rest known after `<cls>`; each part is cut to its length and
/// padded with `<pad>` and the pad value.
public struct ScGPTGenerativeSplit {
  /// Known genes: ids, values, padding mask [B, L − G].
  public var pcpt: ScGPTBatch
  /// Generated genes: ids, target values, padding mask [B, G].
  public var gen: ScGPTBatch
  public var ratio: Double

  public init(_ tokens: ScGPTCellTokens, rows: [Int], random: inout ScGPTRandom) {
    ratio = [0.25, 0.5, 0.75][min(Int(random.uniform() * 3), 2)]
    let longest = rows.map { tokens.ids[$0].count }.max() ?? 1
    let genLength = max(1, Int(Double(longest - 1) * ratio)), pcptLength = max(1, longest - genLength)
    var pIds: [Int64] = [], pValues: [Float] = [], gIds: [Int64] = [], gValues: [Float] = []
    for row in rows {
      let ids = tokens.ids[row], values = tokens.values[row]
      let order = random.permutation(ids.count - 1).map { $0 + 1 }
      let nGen = Int(Double(order.count) * ratio)
      let generated = order.prefix(min(nGen, genLength)), known = [0] + order.dropFirst(nGen).prefix(pcptLength - 1)
      func append(_ part: [Int], _ length: Int, _ outIds: inout [Int64], _ outValues: inout [Float]) {
        outIds += part.map { Int64(ids[$0]) } + Array(repeating: Int64(tokens.padId), count: length - part.count)
        outValues += part.map { values[$0] } + Array(repeating: tokens.padValue, count: length - part.count)
      }
      append(known, pcptLength, &pIds, &pValues)
      append(Array(generated), genLength, &gIds, &gValues)
    }
    let b = rows.count
    func batch(_ ids: [Int64], _ values: [Float], _ length: Int) -> ScGPTBatch {
      let idTensor = Tensor(ids, shape: [b, length])
      return ScGPTBatch(geneIds: idTensor, values: Tensor(values, shape: [b, length]), paddingMask: idTensor.eq(Double(tokens.padId)))
    }
    pcpt = batch(pIds, pValues, pcptLength)
    gen = batch(gIds, gValues, genLength)
  }
}
