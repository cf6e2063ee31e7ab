"""File input/output: atomic writes, run manifests, and schema-checked readers of MLTree ROOT files."""
