import CellAnalysis
import Foundation
import XCTest

/// Classification metrics against scikit-learn on the fixture's synthetic problem (4 classes,
/// 70 % correct; binary scores rounded to 0.1 so that ties occur).
final class ClassificationMetricsTests: XCTestCase {
  let reference = AnalysisFixtures.shared.json["classification"] as! [String: Any]

  func number(_ key: String) -> Double { (reference[key] as! NSNumber).doubleValue }

  func testMulticlassMetrics() throws {
    let truth = reference["y_true"] as! [Int], predicted = reference["y_pred"] as! [Int]
    let matrix = try ConfusionMatrix(truth: truth, predicted: predicted)
    XCTAssertEqual(matrix.counts, reference["confusion"] as! [[Int]])
    XCTAssertEqual(matrix.accuracy, number("accuracy"), accuracy: 1e-12)
    XCTAssertEqual(matrix.macroF1, number("macro_f1"), accuracy: 1e-12)
    XCTAssertEqual(matrix.macroPrecision, number("macro_precision"), accuracy: 1e-12)
    XCTAssertEqual(matrix.macroRecall, number("macro_recall"), accuracy: 1e-12)
    XCTAssertEqual(try accuracy(truth: truth, predicted: predicted), number("accuracy"), accuracy: 1e-12)
    XCTAssertEqual(try macroF1(truth: ["a", "b", "b"], predicted: ["a", "b", "c"]), (1 + 2.0 / 3 + 0) / 3, accuracy: 1e-12)
  }

  func testAUROCAndAUPRCWithTies() throws {
    let labels = reference["binary_labels"] as! [Bool], scores = (reference["scores"] as! [NSNumber]).map(\.doubleValue)
    XCTAssertEqual(try auroc(scores: scores, labels: labels), number("auroc"), accuracy: 1e-12)
    XCTAssertEqual(try auprc(scores: scores, labels: labels), number("auprc"), accuracy: 1e-12)
    XCTAssertEqual(try auroc(scores: scores.map(Float.init), labels: labels), number("auroc"), accuracy: 1e-6)
    XCTAssertEqual(try auroc(scores: [0.1, 0.4, 0.35, 0.8], labels: [false, false, true, true]), 0.75)
    XCTAssertEqual(try auprc(scores: [0.1, 0.4, 0.35, 0.8], labels: [false, false, true, true]), 0.5 + 0.5 * 2 / 3,
                   accuracy: 1e-12)
  }

  func testBadInputIsAClearError() {
    XCTAssertThrowsError(try auroc(scores: [0.1, 0.2], labels: [true, true])) { error in
      XCTAssertTrue("\(error)".contains("one class"), "\(error)")
    }
    XCTAssertThrowsError(try auroc(scores: [0.1], labels: [true, false]))
    XCTAssertThrowsError(try auprc(scores: [.nan, 0.2], labels: [true, false]))
    XCTAssertThrowsError(try accuracy(truth: [1, 2], predicted: [1]))
  }
}
