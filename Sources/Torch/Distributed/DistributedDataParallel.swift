import CTorch

/// Data-parallel training of a module, as torch's `DistributedDataParallel`, driving the same
/// engine: libtorch's `c10d::Reducer`, whose autograd hooks all-reduce gradients in buckets
/// (25 MiB, the first 1 MiB) while backward is still running. After `backward` every rank's
/// parameters hold the average gradient over the ranks, so identical optimizer steps keep the
/// replicas identical.
///
///     let ddp = try DistributedDataParallel(model, group: group)
///     for batch in shard {
///       try ddp.prepareForward()
///       let loss = model.loss(batch)
///       optimizer.zeroGrad()
///       try ddp.backward(loss)
///       optimizer.step()
///     }
///
/// Create it after moving the module to its device (the Reducer holds the parameter tensors).
/// Construction is collective: every rank checks the parameter shapes against the others, then
/// takes rank 0's parameters and buffers.
public final class DistributedDataParallel {
  public let module: Module
  public let group: ProcessGroup
  /// The parameters whose gradients are reduced.
  public let parameters: [Tensor]
  public let broadcastBuffers: Bool
  private let buffers: [Tensor]
  private let reducer: OpaquePointer

  /// - Parameters:
  ///   - parameters: the trainable parameters (default: all of the module's).
  ///   - findUnusedParameters: search each step's graph for parameters that get no gradient
  ///     (torch's flag; needed when a step can leave some parameters unused).
  ///   - broadcastBuffers: copy rank 0's buffers (batch-norm statistics) to every rank before
  ///     each training forward, as torch's default.
  public init(_ module: Module, group: ProcessGroup, parameters: [Tensor]? = nil, bucketCapMB: Double = 25,
              findUnusedParameters: Bool = false, broadcastBuffers: Bool = true) throws {
    let parameters = parameters ?? module.parameters
    guard !parameters.isEmpty else { throw DistributedError("DistributedDataParallel: the module has no trainable parameters") }
    guard bucketCapMB > 0 else { throw DistributedError("DistributedDataParallel: bucketCapMB must be positive") }
    let cap = Int64(bucketCapMB * 1024 * 1024)
    let handle = withExtendedLifetime(parameters) {
      parameters.map { Optional($0.handle) }.withUnsafeBufferPointer {
        ct_reducer(group.handle, $0.baseAddress, Int32(parameters.count), cap, 1024 * 1024, findUnusedParameters ? 1 : 0)
      }
    }
    guard let handle else {
      throw DistributedError("rank \(group.rank): DistributedDataParallel could not start: \(String(cString: ct_last_error()))")
    }
    self.reducer = handle
    self.module = module
    self.group = group
    self.parameters = parameters
    self.broadcastBuffers = broadcastBuffers
    self.buffers = module.namedBuffers().map(\.1)
    // DDP's _sync_module_states: every replica starts from rank 0's state.
    try group.broadcast(module.parameters + buffers, from: 0)
  }

  deinit { ct_reducer_free(reducer) }

  /// Call before each training forward: rebuilds the buckets once (after the first backward,
  /// in gradient order) and copies rank 0's buffers to every rank.
  public func prepareForward() throws {
    if ct_reducer_prepare_forward(reducer) != 0 {
      throw DistributedError("rank \(group.rank): DDP forward: \(String(cString: ct_last_error()))")
    }
    if broadcastBuffers && !buffers.isEmpty { try group.broadcast(buffers, from: 0) }
  }

  /// The largest absolute difference between this rank's parameters and rank 0's, over every
  /// rank (0 when the replicas are in sync, as they should be after every step). Collective.
  public func maxParameterDifference() throws -> Double {
    let reference = withNoGrad { parameters.map { $0.detach().clone() } }
    try group.broadcast(reference, from: 0)
    let local = withNoGrad { zip(parameters, reference).map { ($0.detach() - $1).abs().max().to(.float64).item() }.max() ?? 0 }
    return try group.allReduce([local], .max)[0]
  }

  /// Backpropagates `loss` and all-reduces the gradients while doing so; throws when a
  /// collective fails (another rank died or hung past the timeout).
  public func backward(_ loss: Tensor) throws {
    let status = loss.withHandle { h in
      [Optional(h)].withUnsafeBufferPointer { ct_reducer_prepare_backward(reducer, $0.baseAddress, 1) }
    }
    if status != 0 { throw DistributedError("rank \(group.rank): DDP backward: \(String(cString: ct_last_error()))") }
    let backward = loss.withHandle { ct_backward($0, nil, 0) }
    if backward != 0 {
      throw DistributedError(
        "rank \(group.rank) of \(group.worldSize): the gradient all-reduce failed (a rank died, hung for more than \(formatSeconds(group.options.timeout)), or the network broke): \(String(cString: ct_last_error()))")
    }
  }
}
