from compressors.base import Compressor, available_compressors, create_compressor, register_compressor

__all__ = ["Compressor", "available_compressors", "create_compressor", "register_compressor"]
