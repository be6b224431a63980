"""Bytes <-> records, pure and without I/O: trust lists, signed files, certificates, TVS messages, configuration XML."""
