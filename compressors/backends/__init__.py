"""Compressor backends: each a module with a factory, named in `compressors.base.BUILTIN`."""
