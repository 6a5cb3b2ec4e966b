"""Matching: the signal-type registry, the in-memory hash index, the lists' vocabulary and
the rules that turn index hits into evidence. Imports no decoding.
"""
