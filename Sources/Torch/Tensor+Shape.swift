import CTorch

extension Tensor {
  public func reshape(_ shape: [Int]) -> Tensor {
    let s = shape.map(Int64.init)
    return withHandle { wrap(ct_reshape($0, s, Int32(s.count))) }
  }
  public func view(_ shape: Int...) -> Tensor { reshape(shape) }
  public func flatten(startDim: Int = 0) -> Tensor {
    let s = shape
    let start = startDim < 0 ? startDim + s.count : startDim
    return reshape(Array(s[..<start]) + [-1])
  }
  public func permute(_ dims: [Int]) -> Tensor {
    let d = dims.map(Int64.init)
    return withHandle { wrap(ct_permute($0, d, Int32(d.count))) }
  }
  public func transpose(_ dim0: Int, _ dim1: Int) -> Tensor {
    withHandle { wrap(ct_transpose($0, Int64(dim0), Int64(dim1))) }
  }
  /// Matrix transpose of a 2-D tensor.
  public var T: Tensor { transpose(0, 1) }
  public func expand(_ shape: [Int]) -> Tensor {
    let s = shape.map(Int64.init)
    return withHandle { wrap(ct_expand($0, s, Int32(s.count))) }
  }
  public func squeeze(dim: Int) -> Tensor { withHandle { wrap(ct_squeeze($0, Int64(dim))) } }
  public func unsqueeze(dim: Int) -> Tensor { withHandle { wrap(ct_unsqueeze($0, Int64(dim))) } }

  public static func cat(_ tensors: [Tensor], dim: Int = 0) -> Tensor {
    withExtendedLifetime(tensors) {
      let handles: [OpaquePointer?] = tensors.map { $0.handle }
      return wrap(ct_cat(handles, Int32(handles.count), Int64(dim)))
    }
  }
  public static func stack(_ tensors: [Tensor], dim: Int = 0) -> Tensor {
    withExtendedLifetime(tensors) {
      let handles: [OpaquePointer?] = tensors.map { $0.handle }
      return wrap(ct_stack(handles, Int32(handles.count), Int64(dim)))
    }
  }
  public func narrow(dim: Int, start: Int, length: Int) -> Tensor {
    withHandle { wrap(ct_narrow($0, Int64(dim), Int64(start), Int64(length))) }
  }
  public func slice(dim: Int, start: Int, end: Int, step: Int = 1) -> Tensor {
    withHandle { wrap(ct_slice($0, Int64(dim), Int64(start), Int64(end), Int64(step))) }
  }
  public func select(dim: Int, index: Int) -> Tensor { withHandle { wrap(ct_select($0, Int64(dim), Int64(index))) } }
  public subscript(index: Int) -> Tensor { select(dim: 0, index: index) }

  public func indexSelect(dim: Int, index: Tensor) -> Tensor {
    withExtendedLifetime((self, index)) { wrap(ct_index_select(handle, Int64(dim), index.handle)) }
  }
  public func gather(dim: Int, index: Tensor) -> Tensor {
    withExtendedLifetime((self, index)) { wrap(ct_gather(handle, Int64(dim), index.handle)) }
  }
  /// A copy of self with `src` added at `index` along `dim` (torch.scatter_add).
  public func scatterAdd(dim: Int, index: Tensor, src: Tensor) -> Tensor {
    withExtendedLifetime((self, index, src)) { wrap(ct_scatter_add(handle, Int64(dim), index.handle, src.handle)) }
  }
  public func indexAdd(dim: Int, index: Tensor, src: Tensor) -> Tensor {
    withExtendedLifetime((self, index, src)) { wrap(ct_index_add(handle, Int64(dim), index.handle, src.handle)) }
  }
  public func maskedFill(_ mask: Tensor, _ value: Double) -> Tensor {
    withExtendedLifetime((self, mask)) { wrap(ct_masked_fill(handle, mask.handle, value)) }
  }
  public func maskedSelect(_ mask: Tensor) -> Tensor {
    withExtendedLifetime((self, mask)) { wrap(ct_masked_select(handle, mask.handle)) }
  }
  public func nonzero() -> Tensor { withHandle { wrap(ct_nonzero($0)) } }
  public func roll(_ shifts: [Int], dims: [Int]) -> Tensor {
    precondition(shifts.count == dims.count, "roll: shifts and dims differ in length")
    let s = shifts.map(Int64.init), d = dims.map(Int64.init)
    return withHandle { wrap(ct_roll($0, s, d, Int32(s.count))) }
  }
  public func flip(_ dims: [Int]) -> Tensor {
    let d = dims.map(Int64.init)
    return withHandle { wrap(ct_flip($0, d, Int32(d.count))) }
  }
  public func repeated(_ repeats: [Int]) -> Tensor {
    let r = repeats.map(Int64.init)
    return withHandle { wrap(ct_repeat($0, r, Int32(r.count))) }
  }
  /// One-hot encoding of integer class indices (int64 result).
  public func oneHot(_ numClasses: Int) -> Tensor { withHandle { wrap(ct_one_hot($0, Int64(numClasses))) } }
  public func triu(_ diagonal: Int = 0) -> Tensor { withHandle { wrap(ct_triu($0, Int64(diagonal))) } }
  public func tril(_ diagonal: Int = 0) -> Tensor { withHandle { wrap(ct_tril($0, Int64(diagonal))) } }
}

// MARK: - In-place updates (used by optimizers and buffers; bypass autograd with `withNoGrad`)

extension Tensor {
  public func copy_(_ src: Tensor) { withExtendedLifetime((self, src)) { check(ct_copy_(handle, src.handle)) } }
  public func fill_(_ value: Double) { withHandle { check(ct_fill_($0, value)) } }
  public func zero_() { fill_(0) }
  /// self += alpha · other
  public func add_(_ other: Tensor, alpha: Double = 1) {
    withExtendedLifetime((self, other)) { check(ct_add_(handle, other.handle, alpha)) }
  }
  public func add_(_ scalar: Double) { withHandle { check(ct_add_scalar_($0, scalar)) } }
  public func mul_(_ other: Tensor) { withExtendedLifetime((self, other)) { check(ct_mul_(handle, other.handle)) } }
  public func mul_(_ scalar: Double) { withHandle { check(ct_mul_scalar_($0, scalar)) } }
  /// self += weight · (end − self)
  public func lerp_(_ end: Tensor, weight: Double) {
    withExtendedLifetime((self, end)) { check(ct_lerp_(handle, end.handle, weight)) }
  }
  /// self += value · t1 · t2
  public func addcmul_(_ t1: Tensor, _ t2: Tensor, value: Double = 1) {
    withExtendedLifetime((self, t1, t2)) { check(ct_addcmul_(handle, t1.handle, t2.handle, value)) }
  }
  /// self += value · t1 / t2
  public func addcdiv_(_ t1: Tensor, _ t2: Tensor, value: Double = 1) {
    withExtendedLifetime((self, t1, t2)) { check(ct_addcdiv_(handle, t1.handle, t2.handle, value)) }
  }
  public func maximum_(_ other: Tensor) { withExtendedLifetime((self, other)) { check(ct_maximum_(handle, other.handle)) } }
  /// self[index] = values along dim 0.
  public func indexPut_(_ index: Tensor, _ values: Tensor) {
    withExtendedLifetime((self, index, values)) { check(ct_index_put_(handle, index.handle, values.handle)) }
  }
}

extension Tensor {
  /// A view with explicit sizes, strides and storage offset (torch.as_strided).
  public func asStrided(_ size: [Int], stride: [Int], offset: Int = 0) -> Tensor {
    let s = size.map(Int64.init), st = stride.map(Int64.init)
    return withHandle { wrap(ct_as_strided($0, s, st, Int32(s.count), Int64(offset))) }
  }
}
