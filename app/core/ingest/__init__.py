"""Ingest's adapters: one file's analysis (bytes, sniffing, image or video path), which
files with which sighting facts, and the content-addressed store.
"""
