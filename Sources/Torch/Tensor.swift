import CTorch

/// A libtorch tensor. Owns one shim handle, freed when the object is released.
///
/// Operations never throw one by one: wrap a computation in `withTorchErrors` to get
/// libtorch's failures as a thrown error (see there).
public final class Tensor {
  /// The shim handle. Replaced in place by `Module.to(_:)` and state-dict loading.
  var handle: OpaquePointer

  init(handle: OpaquePointer) { self.handle = handle }
  deinit { ct_free(handle) }

  /// Runs `body` with this tensor's handle, keeping the tensor alive for the call.
  func withHandle<R>(_ body: (OpaquePointer) -> R) -> R {
    withExtendedLifetime(self) { body(handle) }
  }

  /// Replaces this tensor's content (handle) with another tensor's, keeping identity.
  func assign(_ other: Tensor) {
    let fresh = other.withHandle { ct_alias($0) }
    guard let fresh else { reportTorchFailure(); return }
    ct_free(handle)
    handle = fresh
  }
}

// MARK: - Creation

extension Tensor {
  /// A tensor holding a copy of `values` with the given shape (row-major).
  public convenience init<S: TensorScalar>(_ values: [S], shape: [Int]) {
    precondition(shape.reduce(1, *) == values.count,
                 "Tensor: \(values.count) values do not fill shape \(shape)")
    let dims = shape.map(Int64.init)
    let h = values.withUnsafeBytes { buffer in
      ct_from_data(buffer.baseAddress, dims, Int32(dims.count), S.dtype.code)
    }
    self.init(handle: wrap(h).detachHandle())
  }

  /// A 1-D tensor holding a copy of `values`.
  public convenience init<S: TensorScalar>(_ values: [S]) { self.init(values, shape: [values.count]) }

  /// A 0-dim tensor.
  public convenience init<S: TensorScalar>(scalar: S) { self.init([scalar], shape: []) }

  /// A boolean tensor.
  public convenience init(bools: [Bool], shape: [Int]) {
    let bytes = bools.map { UInt8($0 ? 1 : 0) }
    let t = Tensor(bytes, shape: shape).to(.bool)
    self.init(handle: t.detachHandle())
  }

  /// Takes the handle out of a temporary tensor (which then owns an undefined tensor).
  func detachHandle() -> OpaquePointer {
    let h = handle
    handle = ct_undefined()
    return h
  }

  public static func zeros(_ shape: [Int], dtype: DType = .float32, device: Device = .cpu) -> Tensor {
    let dims = shape.map(Int64.init)
    return wrap(ct_zeros(dims, Int32(dims.count), dtype.code, device.typeCode, device.index))
  }
  public static func ones(_ shape: [Int], dtype: DType = .float32, device: Device = .cpu) -> Tensor {
    let dims = shape.map(Int64.init)
    return wrap(ct_ones(dims, Int32(dims.count), dtype.code, device.typeCode, device.index))
  }
  public static func full(_ shape: [Int], _ value: Double, dtype: DType = .float32, device: Device = .cpu) -> Tensor {
    let dims = shape.map(Int64.init)
    return wrap(ct_full(dims, Int32(dims.count), value, dtype.code, device.typeCode, device.index))
  }
  public static func arange(_ start: Double = 0, _ end: Double, step: Double = 1, dtype: DType = .int64,
                            device: Device = .cpu) -> Tensor {
    wrap(ct_arange(start, end, step, dtype.code, device.typeCode, device.index))
  }
  public static func randn(_ shape: [Int], dtype: DType = .float32, device: Device = .cpu) -> Tensor {
    let dims = shape.map(Int64.init)
    return wrap(ct_randn(dims, Int32(dims.count), dtype.code, device.typeCode, device.index))
  }
  public static func rand(_ shape: [Int], dtype: DType = .float32, device: Device = .cpu) -> Tensor {
    let dims = shape.map(Int64.init)
    return wrap(ct_rand(dims, Int32(dims.count), dtype.code, device.typeCode, device.index))
  }
  /// Integers uniform in [low, high).
  public static func randint(_ low: Int, _ high: Int, _ shape: [Int], device: Device = .cpu) -> Tensor {
    let dims = shape.map(Int64.init)
    return wrap(ct_randint(Int64(low), Int64(high), dims, Int32(dims.count), device.typeCode, device.index))
  }
  public static func randperm(_ n: Int, device: Device = .cpu) -> Tensor {
    wrap(ct_randperm(Int64(n), device.typeCode, device.index))
  }
  /// Draws 0/1 with probabilities `self`.
  public func bernoulli() -> Tensor { withHandle { wrap(ct_bernoulli($0)) } }
  /// Draws indices from each row of the (unnormalised) probabilities `self`.
  public func multinomial(_ samples: Int, replacement: Bool = false) -> Tensor {
    withHandle { wrap(ct_multinomial($0, Int64(samples), replacement ? 1 : 0)) }
  }
  /// Poisson draws with rates `self`.
  public func poissonSample() -> Tensor { withHandle { wrap(ct_poisson($0)) } }
  /// Gamma(concentration = self, rate = 1) draws.
  public func standardGammaSample() -> Tensor { withHandle { wrap(ct_standard_gamma($0)) } }
}

// MARK: - Metadata and data access

extension Tensor {
  public var isDefined: Bool { withHandle { ct_is_defined($0) != 0 } }
  public var rank: Int { withHandle { Int(ct_ndim($0)) } }
  public var shape: [Int] {
    withHandle { h in
      let n = Int(ct_ndim(h))
      guard n > 0 else { return [] }
      var dims = [Int64](repeating: 0, count: n)
      check(ct_shape(h, &dims))
      return dims.map(Int.init)
    }
  }
  public func size(_ dim: Int) -> Int {
    let s = shape
    return s[dim < 0 ? dim + s.count : dim]
  }
  public var count: Int { withHandle { Int(ct_numel($0)) } }
  public var dtype: DType { withHandle { DType(rawValue: ct_dtype($0)) ?? .float32 } }
  public var device: Device {
    withHandle { h in ct_device_type(h) == Int32(CT_CUDA) ? .cuda(Int(ct_device_index(h))) : .cpu }
  }
  public var isContiguous: Bool { withHandle { ct_is_contiguous($0) == 1 } }

  /// The elements, row-major, converted to `S` if needed.
  public func toArray<S: TensorScalar>(_ type: S.Type = S.self) -> [S] {
    let source = dtype == S.dtype ? self : self.to(S.dtype)
    let n = source.count
    guard n > 0 else { return [] }
    return [S](unsafeUninitializedCapacity: n) { buffer, initialized in
      source.withHandle { h in
        check(ct_copy_to_buffer(h, buffer.baseAddress, Int64(n * MemoryLayout<S>.stride)))
      }
      initialized = n
    }
  }

  /// A new CPU tensor whose elements `fill` writes in place (no intermediate copy);
  /// `fill` must set every element.
  public static func filled<S: TensorScalar>(_ shape: [Int], _ type: S.Type = S.self,
                                            _ fill: (UnsafeMutableBufferPointer<S>) throws -> Void) rethrows -> Tensor {
    let dims = shape.map(Int64.init)
    let t = wrap(ct_empty(dims, Int32(dims.count), S.dtype.code, Int32(CT_CPU), -1))
    try withExtendedLifetime(t) {
      let p = ct_data_ptr(t.handle)?.assumingMemoryBound(to: S.self)
      try fill(UnsafeMutableBufferPointer(start: p, count: p == nil ? 0 : shape.reduce(1, *)))
    }
    return t
  }

  /// Reads the elements of a contiguous CPU tensor of type `S` in place, without copying.
  public func withUnsafeElements<S: TensorScalar, R>(_ type: S.Type, _ body: (UnsafeBufferPointer<S>) throws -> R) throws -> R {
    guard dtype == S.dtype else { throw TorchError.invalidArgument("tensor is \(dtype), not \(S.dtype)") }
    return try withExtendedLifetime(self) {
      guard let p = ct_data_ptr(handle) else {
        throw TorchError.invalidArgument("tensor is not a contiguous CPU tensor")
      }
      return try body(UnsafeBufferPointer(start: p.assumingMemoryBound(to: S.self), count: count))
    }
  }

  /// The first element of a contiguous float32 CPU tensor, for the CKernels loops (callers
  /// check dtype, device and layout, and keep the tensor alive while they use it).
  var floatPointer: UnsafeMutablePointer<Float> {
    ct_data_ptr(handle)!.assumingMemoryBound(to: Float.self)
  }

  /// The value of a one-element tensor.
  public func item() -> Double {
    var value = Double.nan
    withHandle { check(ct_item($0, &value)) }
    return value
  }
  public var float: Float { Float(item()) }

  /// float32 when this is bf16 or fp16 (e.g. an autocast output), else itself.
  public var fullPrecision: Tensor { dtype == .bfloat16 || dtype == .float16 ? to(.float32) : self }

  public func to(_ dtype: DType) -> Tensor { withHandle { wrap(ct_to_dtype($0, dtype.code)) } }
  public func to(_ device: Device) -> Tensor { withHandle { wrap(ct_to_device($0, device.typeCode, device.index)) } }
  public func contiguous() -> Tensor { withHandle { wrap(ct_contiguous($0)) } }
  public func clone() -> Tensor { withHandle { wrap(ct_clone($0)) } }
}

extension Tensor: CustomStringConvertible {
  public var description: String {
    withHandle { h in
      guard let s = ct_to_string(h) else { return "Tensor(<error: \(String(cString: ct_last_error()))>)" }
      defer { ct_string_free(s) }
      return String(cString: s)
    }
  }
}
