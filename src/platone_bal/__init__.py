"""Platone Blockchain Access Layer: collect, certify, store and share grid measurements."""

__version__ = "0.1.0"
