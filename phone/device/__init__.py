"""The phone's only I/O: a Phone (model + machine + flash + transports), the boot loop, the flash store, its clients."""
