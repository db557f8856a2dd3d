import XCTest
@testable import Torch
final class T: XCTestCase { func testX() {} }
