import CTorch

/// Element types, with the same names as torch's.
public enum DType: Int32, Sendable, CaseIterable {
  case float32 = 0, float64, bfloat16, float16, int64, int32, bool, uint8

  var code: Int32 { rawValue }

  public var isFloatingPoint: Bool {
    switch self {
    case .float32, .float64, .bfloat16, .float16: return true
    default: return false
    }
  }

  /// Bytes per element.
  public var byteSize: Int {
    switch self {
    case .float64, .int64: return 8
    case .float32, .int32: return 4
    case .bfloat16, .float16: return 2
    case .bool, .uint8: return 1
    }
  }
}

/// Swift element types that map one to one onto a tensor dtype.
public protocol TensorScalar: Numeric {
  static var dtype: DType { get }
}
extension Float: TensorScalar { public static var dtype: DType { .float32 } }
extension Double: TensorScalar { public static var dtype: DType { .float64 } }
extension Int64: TensorScalar { public static var dtype: DType { .int64 } }
extension Int32: TensorScalar { public static var dtype: DType { .int32 } }
extension UInt8: TensorScalar { public static var dtype: DType { .uint8 } }
