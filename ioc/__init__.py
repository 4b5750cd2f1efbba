"""Điện Biên Phủ IOC sensor ingestion backend: shared core (contract, storage, settings, CLI)."""

__version__ = "0.1.0"
