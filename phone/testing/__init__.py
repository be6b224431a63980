"""Helpers for testing phonetrust and what it talks to (network impairment)."""
