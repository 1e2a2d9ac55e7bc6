"""Crossmatching alerts with catalogues: a HEALPix-sorted, memory-mapped index, searched per batch."""
