import Foundation
import Torch

/// What a fine-tuning run optimises, as the reference tutorials.
public enum ScGPTObjective: String, Sendable {
  /// Tutorial_Annotation: cross-entropy of the classifier on the cell embedding (no masking).
  case annotation
  /// Tutorial_Integration: masked-value MSE (GEP) and, with explicit zero probabilities, their
  /// Bernoulli NLL; the same from the cell embedding (GEPC, with MVC); 10 · ECS; and the batch
  /// discriminator's cross-entropy behind gradient reversal (DAB).
  case integration
  /// Masked-value pretraining of a new model: GEP and, with MVC, GEPC (no batches, no extra
  /// losses), so that `embed` has a model when no pretrained weights are at hand.
  case pretraining
  /// Generative pretraining (the pretraining branch): each minibatch splits its cells' genes
  /// into known genes and genes to generate (a ratio drawn from {0.25, 0.5, 0.75}); MSE of the
  /// generated values and, with MVC, of GEPC on them; after `secondPassAfter` steps also the
  /// MSE of a second pass with the detached cell embedding in place of `<cls>`.
  case generative
  /// `generative` plus the masked-value GEP (and GEPC) of `pretraining` on the same minibatch.
  case generativeAndMasked = "both"

  /// Objectives that need no labels (pretraining).
  public var isPretraining: Bool { self == .pretraining || self == .generative || self == .generativeAndMasked }
  var isGenerative: Bool { self == .generative || self == .generativeAndMasked }
}

/// How the learning rate moves.
public enum ScGPTSchedule: Sendable, Equatable {
  /// StepLR: the rate × `scheduleGamma` after every epoch (the tutorials).
  case stepPerEpoch
  /// Linear warm-up from 0 over `warmup` optimiser steps (a number below 1 is a share of all
  /// steps), then half a cosine down to 0 at the last step: transformers'
  /// `get_cosine_schedule_with_warmup`, which the pretraining branch uses (warm-up 0.1).
  case cosine(warmup: Double)

  /// The rate of optimiser step `step` (0-based) of `total`.
  public func learningRate(base: Double, gamma: Double, step: Int, epoch: Int, total: Int) -> Double {
    switch self {
    case .stepPerEpoch:
      return base * pow(gamma, Double(epoch))
    case .cosine(let warmup):
      let w = warmup < 1 ? Int(Double(total) * warmup) : Int(warmup)
      if step < w { return base * Double(step) / Double(max(1, w)) }
      let progress = Double(step - w) / Double(max(1, total - w))
      return base * max(0, 0.5 * (1 + cos(Double.pi * progress)))
    }
  }
}

/// Settings of `ScGPTFineTuner`, with the tutorials' values.
public struct ScGPTTrainingOptions: Sendable {
  public var epochs = 10
  public var batchSize = 32
  public var learningRate = 1e-4
  /// StepLR's factor, applied after every epoch (`.stepPerEpoch`).
  public var scheduleGamma = 0.9
  public var schedule = ScGPTSchedule.stepPerEpoch
  /// `clip_grad_norm_` bound.
  public var maxGradNorm = 1.0
  /// Share of the cells held out for validation (the best epoch by validation loss is kept).
  public var validationFraction = 0.1
  /// Share of each cell's values masked (annotation 0, integration 0.4).
  public var maskRatio = 0.0
  public var maskValue: Float = -1
  public var ecsWeight = 10.0
  public var dabWeight = 1.0
  /// Weight of the contrastive cell-embedding loss (CCE: a second pass with other dropout
  /// masks, temperature 0.5) in masked-value training; the pretraining branch's loop uses 10
  /// unless `--no-cce`. 0: off.
  public var cceWeight = 0.0
  /// Seeds the split, the minibatch order of each epoch, and the masks, splits and dropout of
  /// each optimiser step (each from its own stream, so that a run resumed at any step continues
  /// exactly; initial weights come from libtorch's generator, seeded by the caller).
  public var seed: UInt32 = 0
  /// Cells of similar length share minibatches (windows of 50 minibatches sorted by length), so
  /// less is padded; minibatch order stays random. Off: the reference's plain shuffle.
  public var lengthBuckets = true
  /// Generative objectives: optimiser steps before the second pass joins (the reference: 1000).
  public var secondPassAfter = 1000
  /// Stop after this many optimiser steps in all (the epoch it ends in is recorded partial). The
  /// schedule still spans `epochs`, so the run is the start of the whole one and resumes into it.
  public var maxSteps: Int?
  /// Write a resumable checkpoint here every `checkpointEvery` steps (0: only at the end).
  public var checkpoint: URL?
  public var checkpointEvery = 0
  /// Continue the run saved in this checkpoint (same data, objective, options and seed).
  public var resumeFrom: URL?
  /// Dropout masks from swift-singlecell's generator during training (`Runtime.dropoutMasks =
  /// .fast`: several times faster on CPU; the masks are not PyTorch's for the same seed).
  public var fastDropoutMasks = true
  /// `.bfloat16`: forward passes and losses under bf16 autocast (`Autocast`), as the reference's
  /// `amp` (which uses fp16 with a gradient scaler; bf16 needs none); weights, gradients and
  /// Adam stay float32. The CLI's default on CUDA. `.float32`: full precision.
  public var precision = DType.float32
  /// A progress line on standard error: per epoch, and every few seconds the step, loss and
  /// tokens per second.
  public var progress = false
  /// Data-parallel training over this group (docs/distributed.md), as torch DDP: each rank
  /// trains on its share of every epoch's minibatches (`batchSize` cells each, so one step sees
  /// world size × `batchSize` cells), the gradients are averaged over the ranks, and the epoch's
  /// metrics are per-cell means over every rank's cells. Rank 0 writes the checkpoints.
  public var processGroup: ProcessGroup?

  public init() {}

  /// Tutorial_Annotation: batch 32, no masking.
  public static var annotation: ScGPTTrainingOptions { ScGPTTrainingOptions() }

  /// Tutorial_Integration: batch 64, 40 % masked.
  public static var integration: ScGPTTrainingOptions {
    var o = ScGPTTrainingOptions()
    o.batchSize = 64
    o.maskRatio = 0.4
    return o
  }

  func validate() throws {
    func fail(_ m: String) -> ScGPTError { .invalidConfig(m) }
    guard epochs > 0, batchSize > 0 else { throw fail("epochs and batch size must be positive") }
    guard learningRate > 0, scheduleGamma > 0, maxGradNorm > 0 else { throw fail("learning rate, schedule factor and gradient bound must be positive") }
    guard (0..<1).contains(validationFraction), (0..<1).contains(maskRatio) else { throw fail("validation fraction and mask ratio must lie in [0, 1)") }
    guard ecsWeight >= 0, dabWeight >= 0, cceWeight >= 0 else { throw fail("loss weights must not be negative") }
    if case .cosine(let warmup) = schedule, !(warmup >= 0 && warmup.isFinite) { throw fail("the warm-up must be a share in [0, 1) or a number of steps") }
    if let maxSteps, maxSteps < 1 { throw fail("max steps must be positive") }
    guard precision == .float32 || precision == .bfloat16 else { throw fail("precision must be float32 or bfloat16, not \(precision)") }
    guard checkpointEvery >= 0 else { throw fail("the checkpoint interval must not be negative") }
    if checkpointEvery > 0 && checkpoint == nil { throw fail("a checkpoint interval needs a checkpoint path") }
  }
}
