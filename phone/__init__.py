"""phonetrust: the trust side of Cisco IP phone firmware, emulated.

The import package is ``phone``; the command is ``phonetrust``. Read the
flow as bytes -> records -> decisions -> effects -> transports:
``tlv`` (files), ``trust`` and ``machine`` (decisions, no I/O), ``device``,
``tftp`` and ``tvs`` (transports), ``lab`` (the emulated CUCM).
"""

__version__ = "0.1.0"
