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
