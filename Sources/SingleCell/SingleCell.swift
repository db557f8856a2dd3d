@_exported import Torch
