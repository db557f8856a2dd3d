/// An indexed list of modules, keyed "0", "1", … like torch.nn.ModuleList. Calling is left to
/// the owner, which picks the entries it needs.
public final class ModuleList<Element: Module>: Module {
  public let modules: [Element]

  public init(_ modules: [Element]) {
    self.modules = modules
    super.init()
    for (i, module) in modules.enumerated() { registerModule(String(i), module) }
  }

  public var count: Int { modules.count }
  public subscript(index: Int) -> Element { modules[index] }
}
