import XCTest

import CellModels

final class CellModelsSmokeTests: XCTestCase {
  func testModuleLinks() {}
}
