"""Starling: an astronomical alert broker for ZTF and Rubin (LSST)."""

__version__ = "0.1.0"
