import CellAnalysis
import CellData
import Foundation
import XCTest

final class PlotTests: XCTestCase {
  func categories(_ adata: AnnData) throws -> (codes: [Int], names: [String]) {
    guard case .categorical(let c)? = adata.obs["bulk_labels"] else { throw PlotError("no bulk_labels") }
    return (c.codes, (0..<c.categories.count).map { c.categories.text(at: $0) })
  }

  // MARK: embedding, categorical

  func testCategoricalSVGHasOnePointPerCellAndScanpyLegend() throws {
    let adata = try PlotFixtures.pbmc()
    let (codes, names) = try categories(adata)
    let svg = try EmbeddingPlot(adata: adata, basis: "umap", color: "bulk_labels").svg()
    XCTAssertTrue(svg.hasPrefix("<svg"))

    let points = try XCTUnwrap(PlotFixtures.group("points", in: svg))
    XCTAssertEqual(PlotFixtures.count("<circle", in: points), 700)
    // No missing labels, so cells are drawn in data order in their category's colour.
    let expectedFills = codes.map { PlotFixtures.scanpyBulkLabelColors[$0] }
    XCTAssertEqual(PlotFixtures.attributes("fill", in: points), expectedFills)

    let legend = try XCTUnwrap(PlotFixtures.group("legend", in: svg))
    XCTAssertEqual(PlotFixtures.texts(in: legend), names)
    XCTAssertEqual(PlotFixtures.attributes("fill", in: legend).filter { $0 != "#000000" }, PlotFixtures.scanpyBulkLabelColors)

    let labels = PlotFixtures.texts(in: try XCTUnwrap(PlotFixtures.group("labels", in: svg)))
    XCTAssertEqual(labels, ["bulk_labels", "UMAP1", "UMAP2"])
  }

  func testPointSizeFollowsScanpy() throws {
    let adata = try PlotFixtures.pbmc()
    let plot = try EmbeddingPlot(adata: adata, basis: "X_umap", color: "bulk_labels")
    XCTAssertEqual(plot.pointSize, 120_000 / 700, accuracy: 1e-9)
    let radius = (120_000.0 / 700).squareRoot() / 2
    let points = try XCTUnwrap(PlotFixtures.group("points", in: plot.svg()))
    XCTAssertEqual(Set(PlotFixtures.attributes("r", in: points)), [String(format: "%.2f", radius)])
    let small = try EmbeddingPlot(adata: adata, basis: "umap", pointSize: 4)
    XCTAssertEqual(small.pointRadius, 1)
  }

  func testPaletteChoiceFollowsScanpy() {
    XCTAssertEqual(Palette.scanpyDefault(count: 10).map(\.hex), PlotFixtures.scanpyBulkLabelColors)
    XCTAssertEqual(Palette.scanpyDefault(count: 3).map(\.hex), ["#1f77b4", "#ff7f0e", "#2ca02c"])
    // 11–20 categories: scanpy's default_20 (its third colour is the adjusted green #279e68).
    let twelve = Palette.scanpyDefault(count: 12).map(\.hex)
    XCTAssertEqual(twelve.count, 12)
    XCTAssertEqual(Array(twelve.prefix(5)), ["#1f77b4", "#ff7f0e", "#279e68", "#d62728", "#aa40fc"])
    XCTAssertEqual(Palette.scanpyDefault(count: 20).last?.hex, "#8c6d31")
    XCTAssertEqual(Palette.scanpyDefault(count: 21).first?.hex, "#023fa5")
    XCTAssertEqual(Palette.scanpyDefault(count: 29).first?.hex, "#ffff00")
    XCTAssertEqual(Palette.default102.count, 102)
    XCTAssertEqual(Set(Palette.scanpyDefault(count: 103).map(\.hex)), ["#808080"])
  }

  func testUnsColorsAreHonoured() throws {
    var adata = try PlotFixtures.pbmc()
    let custom = (0..<10).map { String(format: "#%02x%02x%02x", $0 * 20, 255 - $0 * 20, 128) }
    adata.uns["bulk_labels_colors"] = .array(.string(custom))
    var legend = try XCTUnwrap(PlotFixtures.group("legend", in: EmbeddingPlot(adata: adata, basis: "umap", color: "bulk_labels").svg()))
    XCTAssertEqual(PlotFixtures.attributes("fill", in: legend).filter { $0 != "#000000" }, custom)
    // Too few colours: scanpy falls back to its default palette.
    adata.uns["bulk_labels_colors"] = .array(.string(Array(custom.prefix(3))))
    legend = try XCTUnwrap(PlotFixtures.group("legend", in: EmbeddingPlot(adata: adata, basis: "umap", color: "bulk_labels").svg()))
    XCTAssertEqual(PlotFixtures.attributes("fill", in: legend).filter { $0 != "#000000" }, PlotFixtures.scanpyBulkLabelColors)
  }

  func testMissingCategoriesAreGreyAtTheBottomWithNALegend() throws {
    var adata = try PlotFixtures.pbmc()
    let codes = (0..<700).map { $0 % 5 == 0 ? -1 : $0 % 3 }
    try adata.obs.set("group", .categorical(try Categorical(codes: codes, categories: .string(["a", "b", "c"]))))
    let plot = try EmbeddingPlot(adata: adata, basis: "umap", color: "group")
    let missing = codes.indices.filter { codes[$0] < 0 }
    XCTAssertEqual(Array(plot.drawOrder.prefix(missing.count)), missing)
    XCTAssertEqual(plot.pointColors[0], RGBColor.lightGray)
    let legend = try XCTUnwrap(PlotFixtures.group("legend", in: plot.svg()))
    XCTAssertEqual(PlotFixtures.texts(in: legend), ["a", "b", "c", "NA"])
  }

  // MARK: embedding, continuous

  func testContinuousColouringMapsMinAndMaxToViridisEnds() throws {
    let adata = try PlotFixtures.pbmc()
    let plot = try EmbeddingPlot(adata: adata, basis: "pca", color: "n_counts")
    let counts = try adata.obs.doubles("n_counts")
    let lo = counts.indices.min { counts[$0] < counts[$1] }!, hi = counts.indices.max { counts[$0] < counts[$1] }!
    XCTAssertEqual(plot.pointColors[lo].hex, "#440154")
    XCTAssertEqual(plot.pointColors[hi].hex, "#fde725")
    XCTAssertEqual(plot.drawOrder.last, hi, "scanpy draws the highest value on top")
    XCTAssertEqual(plot.drawOrder.first, lo)
    XCTAssertEqual(plot.xLabel, "PC1")
    let svg = plot.svg()
    XCTAssertNotNil(PlotFixtures.group("colorbar", in: svg))
    XCTAssertNil(PlotFixtures.group("legend", in: svg))
    let fills = PlotFixtures.attributes("fill", in: try XCTUnwrap(PlotFixtures.group("points", in: svg)))
    XCTAssertEqual(fills.last, "#fde725")
    XCTAssertEqual(fills.first, "#440154")
  }

  func testGeneColouringReadsTheGeneColumn() throws {
    let adata = try PlotFixtures.pbmc()
    let gene = adata.varNames[0]
    let plot = try EmbeddingPlot(adata: adata, basis: "umap", color: gene, useRaw: false)
    guard case .continuous(let values, _, _) = plot.coloring else { return XCTFail("a gene colours continuously") }
    XCTAssertEqual(values, try adata.X!.columns([0]).denseDoubles())
    XCTAssertEqual(plot.title, gene)
  }

  func testViridisLookupMatchesMatplotlib() {
    XCTAssertEqual(Colormap.viridis.colors.count, 256)
    XCTAssertEqual(Colormap.viridis.color(at: 0).hex, "#440154")
    XCTAssertEqual(Colormap.viridis.color(at: 1).hex, "#fde725")
    XCTAssertEqual(Colormap.viridis.color(at: 0.5).hex, "#21918c")  // matplotlib: viridis(0.5)
    XCTAssertEqual(Colormap.viridis.color(at: 2), Colormap.viridis.color(at: 1))
  }

  // MARK: PNG

  func testPNGHasRequestedSizeAndCategoryColours() throws {
    let adata = try PlotFixtures.pbmc()
    let (codes, _) = try categories(adata)
    let plot = try EmbeddingPlot(adata: adata, basis: "umap", color: "bulk_labels",
                                 figureSize: FigureSize(width: 6, height: 5, dpi: 120))
    let dir = try PlotFixtures.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let url = dir.appendingPathComponent("umap.png")
    try plot.write(to: url)
    let data = try Data(contentsOf: url)
    let size = try XCTUnwrap(PlotFixtures.pngSize(data), "PNG signature and IHDR")
    XCTAssertEqual(size.0, 720)
    XCTAssertEqual(size.1, 600)

    let image = try DecodedPNG(file: url)
    XCTAssertEqual(image.width, 720)
    let scale = 120.0 / 72, centers = plot.pointCenters(), order = plot.drawOrder
    let r = plot.pointRadius
    var checked = 0
    for category in 0..<10 {
      // The last-drawn cell of the category, when no later cell overlaps its centre.
      guard let k = order.lastIndex(where: { codes[$0] == category }) else { continue }
      let cell = order[k], c = centers[cell]
      let covered = order[(k + 1)...].contains { j in
        let d = centers[j]
        return ((d.x - c.x) * (d.x - c.x) + (d.y - c.y) * (d.y - c.y)).squareRoot() < r + 1
      }
      if covered { continue }
      let pixel = image.color(x: Int(c.x * scale), y: Int(c.y * scale))
      XCTAssertEqual(pixel.hex, PlotFixtures.scanpyBulkLabelColors[category], "category \(category)")
      XCTAssertEqual(pixel.alpha, 255)
      checked += 1
    }
    XCTAssertGreaterThanOrEqual(checked, 8)
    let present = image.distinctColors.map(\.hex)
    for hex in PlotFixtures.scanpyBulkLabelColors { XCTAssertTrue(present.contains(hex), hex) }
    XCTAssertEqual(image.color(x: 1, y: 1).hex, "#ffffff")
  }

  func testOutputFormatFollowsExtension() throws {
    let adata = try PlotFixtures.pbmc()
    let plot = try EmbeddingPlot(adata: adata, basis: "umap")
    let dir = try PlotFixtures.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    try plot.write(to: dir.appendingPathComponent("a.svg"))
    XCTAssertTrue(try String(contentsOf: dir.appendingPathComponent("a.svg"), encoding: .utf8).hasPrefix("<svg"))
    try plot.write(to: dir.appendingPathComponent("a.PNG"))
    let size = try XCTUnwrap(PlotFixtures.pngSize(try Data(contentsOf: dir.appendingPathComponent("a.PNG"))))
    XCTAssertEqual(size.1, 480, "default height 4.8 in at 100 dpi")
    XCTAssertThrowsError(try plot.write(to: dir.appendingPathComponent("a.jpg"))) { error in
      XCTAssertTrue("\(error)".contains("use .svg or .png"), "\(error)")
    }
    XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("a.jpg").path))
  }

  // MARK: errors

  func testEmbeddingErrorsAreClear() throws {
    let adata = try PlotFixtures.pbmc()
    XCTAssertThrowsError(try EmbeddingPlot(adata: adata, basis: "tsne", color: "bulk_labels")) { error in
      let message = "\(error)"
      XCTAssertTrue(message.contains("unknown basis 'tsne'") && message.contains("X_pca, X_umap"), message)
    }
    XCTAssertThrowsError(try EmbeddingPlot(adata: adata, basis: "umap", color: "cell_type")) { error in
      let message = "\(error)"
      XCTAssertTrue(message.contains("unknown colour key 'cell_type'") && message.contains("bulk_labels"), message)
    }
    XCTAssertThrowsError(try EmbeddingPlot(adata: adata, basis: "umap", components: (0, 2))) { error in
      XCTAssertTrue("\(error)".contains("has 2 dimensions"), "\(error)")
    }
    XCTAssertThrowsError(try EmbeddingPlot(adata: adata, basis: "umap", figureSize: FigureSize(width: 0, height: 5)))
  }

  // MARK: training curves

  func writeFile(_ text: String, _ name: String, in dir: URL) throws -> URL {
    let url = dir.appendingPathComponent(name)
    try text.write(to: url, atomically: true, encoding: .utf8)
    return url
  }

  func testHistoryPlotHasOnePolylinePerMetric() throws {
    let dir = try PlotFixtures.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    var csv = "epoch,train_loss,validation_loss,kl_weight\n"
    for e in 0..<20 {
      let validation = e % 5 == 4 ? String(500 - 9 * Double(e)) : ""
      csv += "\(e),\(600 - 10 * Double(e)),\(validation),\(min(1, Double(e) / 10))\n"
    }
    let plot = try TrainingCurvePlot(historyCSV: try writeFile(csv, "history.csv", in: dir))
    XCTAssertEqual(plot.series.map(\.name), ["train_loss", "validation_loss", "kl_weight"])
    let svg = plot.svg()
    let lines = try XCTUnwrap(PlotFixtures.group("lines", in: svg))
    XCTAssertEqual(PlotFixtures.count("<polyline", in: lines), 3)
    let pointCounts = PlotFixtures.attributes("points", in: lines).map { $0.split(separator: " ").count }
    XCTAssertEqual(pointCounts, [20, 4, 20], "missing validation values are skipped")
    XCTAssertEqual(PlotFixtures.attributes("stroke", in: lines), ["#1f77b4", "#ff7f0e", "#2ca02c"])
    let legend = try XCTUnwrap(PlotFixtures.group("legend", in: svg))
    XCTAssertEqual(PlotFixtures.texts(in: legend), ["train_loss", "validation_loss", "kl_weight"])
    XCTAssertTrue(PlotFixtures.texts(in: svg).contains("epoch"))

    let only = try TrainingCurvePlot(historyCSV: dir.appendingPathComponent("history.csv"), metrics: ["validation_loss"])
    XCTAssertEqual(PlotFixtures.count("<polyline", in: only.svg()), 1)
    XCTAssertEqual(plot.figureSize.height, 4)
    var sized = plot
    sized.figureSize = FigureSize(width: 6, height: 4, dpi: 150)
    let size = try XCTUnwrap(PlotFixtures.pngSize(try sized.png()))
    XCTAssertEqual(size.0, 900)
    XCTAssertEqual(size.1, 600)
    // Long metric names widen the default figure instead of squeezing the axes.
    let long = try TrainingCurvePlot(epochs: [0, 1], series: (0..<6).map {
      TrainingCurvePlot.Series(name: "reconstruction_loss_validation_\($0)", values: [2, 1])
    })
    XCTAssertGreaterThan(long.figureSize.width, 6.5)
  }

  func testMalformedHistoryThrows() throws {
    let dir = try PlotFixtures.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let cases: [(String, String)] = [
      ("", "is empty"),
      ("\n\n", "is empty"),
      ("epoch,train_loss\n", "no rows"),
      ("epoch\n0\n1\n", "at least one metric column"),
      ("epoch,train_loss\n0,1.5\n1,abc\n", "line 3, column 'train_loss': 'abc' is not a number"),
      ("epoch,train_loss\n0,1.5,2\n", "line 2 has 3 fields"),
      ("epoch,train_loss\n0,\n1,nan\n", "no metric with a finite value"),
      ("epoch,train_loss\n,1\n", "epoch"),
    ]
    for (i, (text, expected)) in cases.enumerated() {
      let url = try writeFile(text, "h\(i).csv", in: dir)
      XCTAssertThrowsError(try TrainingCurvePlot(historyCSV: url)) { error in
        XCTAssertTrue("\(error)".contains(expected), "case \(i): \(error)")
      }
    }
    XCTAssertThrowsError(try TrainingCurvePlot(historyCSV: dir.appendingPathComponent("absent.csv"))) { error in
      XCTAssertTrue("\(error)".contains("cannot read history"), "\(error)")
    }
    let good = try writeFile("epoch,loss\n0,1\n", "good.csv", in: dir)
    XCTAssertThrowsError(try TrainingCurvePlot(historyCSV: good, metrics: ["elbo"])) { error in
      XCTAssertTrue("\(error)".contains("no metric 'elbo'"), "\(error)")
    }
  }

  // MARK: loadings

  func testLoadingsPlotShowsTopPositiveAndNegativeGenes() throws {
    let dir = try PlotFixtures.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    var csv = ",Z_0,Z_1\n"
    for g in 0..<30 { csv += "\"GENE\(g)\",\(Double(g) - 14.5),\(Double(g % 4))\n" }
    let url = try writeFile(csv, "loadings.csv", in: dir)
    let plot = try LoadingsPlot(loadingsCSV: url, factor: "Z_0", topN: 5)
    XCTAssertEqual(plot.genes, ["GENE29", "GENE28", "GENE27", "GENE26", "GENE25", "GENE4", "GENE3", "GENE2", "GENE1", "GENE0"])
    XCTAssertEqual(plot.values.first, 14.5)
    let svg = plot.svg()
    let bars = try XCTUnwrap(PlotFixtures.group("bars", in: svg))
    XCTAssertEqual(PlotFixtures.count("<rect", in: bars), 10)
    XCTAssertEqual(PlotFixtures.attributes("fill", in: bars), Array(repeating: "#d62728", count: 5) + Array(repeating: "#1f77b4", count: 5))
    // A longer bar for a larger |loading|.
    let widths = PlotFixtures.attributes("width", in: bars).compactMap(Double.init)
    XCTAssertGreaterThan(widths[0], widths[4])
    XCTAssertEqual(PlotFixtures.texts(in: try XCTUnwrap(PlotFixtures.group("genes", in: svg))), plot.genes)

    let byIndex = try LoadingsPlot(loadingsCSV: url, factor: "1", topN: 3)
    XCTAssertEqual(byIndex.factor, "Z_1")
    XCTAssertEqual(byIndex.values, [3, 3, 3], "only positive loadings in Z_1")
    XCTAssertThrowsError(try LoadingsPlot(loadingsCSV: url, factor: "Z_9")) { error in
      XCTAssertTrue("\(error)".contains("unknown factor 'Z_9'"), "\(error)")
    }
    let bad = try writeFile(",Z_0\nA,1\nB,x\n", "bad.csv", in: dir)
    XCTAssertThrowsError(try LoadingsPlot(loadingsCSV: bad)) { error in
      XCTAssertTrue("\(error)".contains("'x' is not a finite number"), "\(error)")
    }
  }
}
