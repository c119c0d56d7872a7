"""The package version, in a module of its own: the ledger records it
without importing the package (and with it the extension and the CLI)."""

__version__ = "0.1.0.dev0"
