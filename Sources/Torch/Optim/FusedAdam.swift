import CKernels
import CTorch

/// Adam's update for a float32 CPU parameter in one pass (CKernels' `sck_adam_step`), on
/// libtorch's threads, instead of eight libtorch operations. Same formulas and order as
/// torch.optim.Adam's single-tensor path; other devices and dtypes use libtorch operations.
enum FusedAdam {
  static func applies(_ param: Tensor, _ grad: Tensor) -> Bool {
    param.device == .cpu && param.dtype == .float32 && grad.dtype == .float32 && grad.device == .cpu
      && param.isContiguous && grad.isContiguous && param.shape == grad.shape
  }

  static func step(param: Tensor, grad: Tensor, expAvg: Tensor, expAvgSq: Tensor, maxExpAvgSq: Tensor?,
                   optimizer: Adam, biasCorrection1: Double, biasCorrection2Sqrt: Double) {
    withExtendedLifetime((param, grad, expAvg, expAvgSq, maxExpAvgSq)) {
      let o = optimizer, decoupled = o.decoupledWeightDecay
      var update = SCKAdamStep(
        param: param.floatPointer, grad: grad.floatPointer, exp_avg: expAvg.floatPointer,
        exp_avg_sq: expAvgSq.floatPointer, max_exp_avg_sq: maxExpAvgSq.map(\.floatPointer),
        param_scale: Float(decoupled ? 1 - o.learningRate * o.weightDecay : 1),
        weight_decay: Float(decoupled ? 0 : o.weightDecay), one_minus_beta1: Float(1 - o.beta1),
        beta2: Float(o.beta2), one_minus_beta2: Float(1 - o.beta2), eps: Float(o.eps),
        step_size: Float(o.learningRate / biasCorrection1), bias_correction2_sqrt: Float(biasCorrection2Sqrt))
      check(ct_parallel_for(0, Int64(param.count), 1 << 15, { begin, end, context in
        sck_adam_step(context!.assumingMemoryBound(to: SCKAdamStep.self), begin, end)
      }, &update))
    }
  }
}
