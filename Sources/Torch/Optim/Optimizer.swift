import Foundation

/// Something that updates parameters from their gradients.
public protocol Optimizer: AnyObject {
  var learningRate: Double { get set }
  var parameters: [Tensor] { get }
  func step()
}

extension Optimizer {
  /// Clears the gradients of every optimised parameter.
  public func zeroGrad() { for p in parameters { p.zeroGrad() } }
}

/// Adam (Kingma & Ba) with torch.optim.Adam's defaults and update order (the single-tensor
/// path torch uses on CPU). With `decoupledWeightDecay` it is AdamW.
public class Adam: Optimizer {
  public var learningRate: Double
  public let beta1: Double
  public let beta2: Double
  public let eps: Double
  public let weightDecay: Double
  public let amsgrad: Bool
  public let decoupledWeightDecay: Bool
  public let parameters: [Tensor]

  private var steps: [Int]
  private var expAvg: [Tensor?]
  private var expAvgSq: [Tensor?]
  private var maxExpAvgSq: [Tensor?]

  public init(_ parameters: [Tensor], learningRate: Double = 1e-3, betas: (Double, Double) = (0.9, 0.999),
              eps: Double = 1e-8, weightDecay: Double = 0, amsgrad: Bool = false, decoupledWeightDecay: Bool = false) {
    self.parameters = parameters
    self.learningRate = learningRate
    (beta1, beta2) = betas
    self.eps = eps
    self.weightDecay = weightDecay
    self.amsgrad = amsgrad
    self.decoupledWeightDecay = decoupledWeightDecay
    steps = Array(repeating: 0, count: parameters.count)
    expAvg = Array(repeating: nil, count: parameters.count)
    expAvgSq = Array(repeating: nil, count: parameters.count)
    maxExpAvgSq = Array(repeating: nil, count: parameters.count)
  }

  public func step() {
    withNoGrad {
      for (i, param) in parameters.enumerated() {
        guard var grad = param.grad else { continue }  // frozen or unused this step
        if expAvg[i] == nil {
          expAvg[i] = Tensor.zeros(param.shape, dtype: param.dtype, device: param.device)
          expAvgSq[i] = Tensor.zeros(param.shape, dtype: param.dtype, device: param.device)
          if amsgrad { maxExpAvgSq[i] = Tensor.zeros(param.shape, dtype: param.dtype, device: param.device) }
        }
        steps[i] += 1
        let t = Double(steps[i])
        let biasCorrection1 = 1 - Foundation.pow(beta1, t)
        let biasCorrection2Sqrt = (1 - Foundation.pow(beta2, t)).squareRoot()
        let m = expAvg[i]!, v = expAvgSq[i]!
        if FusedAdam.applies(param, grad) {
          FusedAdam.step(param: param, grad: grad, expAvg: m, expAvgSq: v, maxExpAvgSq: maxExpAvgSq[i],
                         optimizer: self, biasCorrection1: biasCorrection1, biasCorrection2Sqrt: biasCorrection2Sqrt)
          continue
        }
        if weightDecay != 0 {
          if decoupledWeightDecay {
            param.mul_(1 - learningRate * weightDecay)
          } else {
            grad = grad + param * weightDecay
          }
        }
        m.lerp_(grad, weight: 1 - beta1)
        v.mul_(beta2)
        v.addcmul_(grad, grad, value: 1 - beta2)
        var second = v
        if amsgrad, let vmax = maxExpAvgSq[i] {
          vmax.maximum_(v)
          second = vmax
        }
        let denom = second.sqrt() / biasCorrection2Sqrt + eps
        param.addcdiv_(m, denom, value: -learningRate / biasCorrection1)
      }
    }
  }
}

extension Adam {
  /// The running state, keyed as torch's `Adam.state_dict()` flattened: `state.<i>.step`,
  /// `state.<i>.exp_avg`, `state.<i>.exp_avg_sq` (and `max_exp_avg_sq` with amsgrad) for each
  /// parameter that has taken a step, and `param_groups.0.lr`. Tensors are copies.
  public func stateDict() -> StateDict {
    var state = StateDict()
    for i in parameters.indices where steps[i] > 0 {
      state["state.\(i).step"] = Tensor(scalar: Float(steps[i]))
      state["state.\(i).exp_avg"] = expAvg[i]!.detach().clone()
      state["state.\(i).exp_avg_sq"] = expAvgSq[i]!.detach().clone()
      if let vmax = maxExpAvgSq[i] { state["state.\(i).max_exp_avg_sq"] = vmax.detach().clone() }
    }
    state["param_groups.0.lr"] = Tensor(scalar: learningRate)
    return state
  }

  /// Restores a `stateDict()` of an Adam over parameters of the same shapes.
  public func loadStateDict(_ state: StateDict) throws {
    var steps = Array(repeating: 0, count: parameters.count)
    var m = [Tensor?](repeating: nil, count: parameters.count), v = m, vmax = m
    for (i, param) in parameters.enumerated() {
      guard let step = state["state.\(i).step"] else { continue }
      guard let a = state["state.\(i).exp_avg"], let b = state["state.\(i).exp_avg_sq"],
        a.shape == param.shape, b.shape == param.shape
      else { throw TorchError.stateDict("optimizer state \(i) is missing or does not match parameter shape \(param.shape)") }
      steps[i] = Int(step.to(.float64).item())
      m[i] = a.to(param.device).to(param.dtype).contiguous().clone()
      v[i] = b.to(param.device).to(param.dtype).contiguous().clone()
      if amsgrad {
        vmax[i] = state["state.\(i).max_exp_avg_sq"].map { $0.to(param.device).to(param.dtype).contiguous().clone() }
          ?? Tensor.zeros(param.shape, dtype: param.dtype, device: param.device)
      }
    }
    if let extra = state.keys.first(where: { key in
      key.hasPrefix("state.") && Int(key.split(separator: ".")[1]).map { $0 >= parameters.count } ?? true
    }) {
      throw TorchError.stateDict("optimizer state '\(extra)' has no parameter (\(parameters.count) parameters)")
    }
    self.steps = steps
    expAvg = m
    expAvgSq = v
    maxExpAvgSq = vmax
    if let lr = state["param_groups.0.lr"] { learningRate = lr.to(.float64).item() }
  }
}

/// AdamW: Adam with decoupled weight decay, torch.optim.AdamW's defaults (weight decay 0.01).
public final class AdamW: Adam {
  public init(_ parameters: [Tensor], learningRate: Double = 1e-3, betas: (Double, Double) = (0.9, 0.999),
              eps: Double = 1e-8, weightDecay: Double = 1e-2, amsgrad: Bool = false) {
    super.init(parameters, learningRate: learningRate, betas: betas, eps: eps, weightDecay: weightDecay,
               amsgrad: amsgrad, decoupledWeightDecay: true)
  }
}

/// Scales gradients so their global L2 norm is at most `maxNorm`
/// (torch.nn.utils.clip_grad_norm_). Returns the norm before clipping.
@discardableResult
public func clipGradNorm(_ parameters: [Tensor], maxNorm: Double) -> Double {
  withNoGrad {
    let grads = parameters.compactMap { $0.grad }
    guard !grads.isEmpty else { return 0 }
    let total = Tensor.stack(grads.map { $0.norm() }).norm()
    let coefficient = (Tensor(scalar: maxNorm).to(total.dtype) / (total + 1e-6)).clamp(max: 1)
    for g in grads { g.mul_(coefficient) }
    return total.item()
  }
}
