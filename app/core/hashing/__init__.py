"""Picture hashing: PDQ (whole, trimmed, turned, halves), pHash, bars, area reduction,
image decoding. Pure numpy and Pillow; no video decoding, no storage.
"""
