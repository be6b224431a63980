"""Every server socket of the emulated CUCM: TFTP, TVS, and the processes that serve labs to fleets."""
