/// Batch normalisation over [N, C] or [N, C, L], with torch.nn.BatchNorm1d's state:
/// weight, bias, running_mean, running_var and num_batches_tracked.
public final class BatchNorm1d: Module, UnaryLayer {
  public let weight: Tensor?
  public let bias: Tensor?
  public let runningMean: Tensor?
  public let runningVar: Tensor?
  public let numBatchesTracked: Tensor?
  public let eps: Double
  /// torch's momentum (weight of the new batch); nil means a cumulative average.
  public var momentum: Double?

  public init(_ numFeatures: Int, eps: Double = 1e-5, momentum: Double? = 0.1, affine: Bool = true,
              trackRunningStats: Bool = true) {
    self.eps = eps
    self.momentum = momentum
    weight = affine ? Tensor.ones([numFeatures]) : nil
    bias = affine ? Tensor.zeros([numFeatures]) : nil
    runningMean = trackRunningStats ? Tensor.zeros([numFeatures]) : nil
    runningVar = trackRunningStats ? Tensor.ones([numFeatures]) : nil
    numBatchesTracked = trackRunningStats ? Tensor.zeros([], dtype: .int64) : nil
    super.init()
    if let weight, let bias {
      registerParameter("weight", weight)
      registerParameter("bias", bias)
    }
    if let runningMean, let runningVar, let numBatchesTracked {
      registerBuffer("running_mean", runningMean)
      registerBuffer("running_var", runningVar)
      registerBuffer("num_batches_tracked", numBatchesTracked)
    }
  }

  public func callAsFunction(_ x: Tensor) -> Tensor {
    var factor = momentum ?? 0
    if isTraining, let counter = numBatchesTracked {
      withNoGrad { counter.add_(1) }
      if momentum == nil { factor = 1 / counter.item() }
    }
    return Functional.batchNorm(
      x, runningMean: runningMean, runningVar: runningVar, weight: weight, bias: bias,
      training: isTraining || runningMean == nil, momentum: factor, eps: eps)
  }
}
