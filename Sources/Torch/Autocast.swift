import CTorch

/// Mixed precision, as `torch.autocast`: inside `body`, the operations autocast lists for the
/// device (matrix products, attention, linear layers) run in `dtype`, those it keeps in float32
/// (softmax, layer norm, losses) stay there, and parameters stay float32. `.float32` runs
/// `body` as it is. Per thread; regions nest. The backward pass needs no region: its casts were
/// recorded in the forward. bf16 has float32's range, so no loss scaling is needed (fp16 would
/// need a gradient scaler, which is not provided).
public enum Autocast {
  public static func run<T>(on device: Device, dtype: DType, _ body: () throws -> T) rethrows -> T {
    guard dtype != .float32 else { return try body() }
    precondition(dtype == .bfloat16 || dtype == .float16, "autocast to \(dtype) is not a reduced float type")
    var enabled: Int32 = 0, previous: Int32 = 0
    check(ct_autocast_enter(device.typeCode, dtype.code, &enabled, &previous))
    defer { check(ct_autocast_exit(device.typeCode, enabled, previous)) }
    return try body()
  }
}
