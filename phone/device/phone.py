"""A phone: a model, its trust state machine, its transports, its flash and its console.

This is the only layer of the phone with I/O. ``Phone.boot`` loads the flash,
runs the machine through one boot with the transports it was given (TFTP and
TVS clients for a real network; in-memory functions in tests), saves the
flash when it changed (atomically, ``phone.device.flash``) and writes the console.
A phone given an identity store reads its MIC when it starts, issuing it the first
time (``phone.device.identity``).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

from phone.device.boot import AskTvsServer, FetchFile, RegisterWithCallManager, run_boot
from phone.device.flash import FlashStore
from phone.device.identity import IdentityStore, PhoneIdentity, default_mic_ca, identity_json
from phone.firmware.machine import (
    BootReport,
    Effect,
    Erased,
    FactoryReset,
    Flash,
    Log,
    PhoneMachine,
)
from phone.firmware.models import PhoneModel
from phone.console.phone import PhoneConsole
from phone.firmware.trust import Item
from phone.wire.certs import Identity
from phone.wire.names import serial_hex


def _wall_clock() -> datetime.datetime:
    return datetime.datetime.now().astimezone()


class Phone:
    """One emulated phone whose flash lives in ``store`` (or in memory when None)."""

    def __init__(
        self,
        model: PhoneModel,
        device_id: str,
        *,
        fetch: FetchFile,
        ask_tvs: AskTvsServer,
        store: FlashStore | None = None,
        clock: Callable[[], datetime.datetime] = _wall_clock,
        console: PhoneConsole | None = None,
        observe: Callable[[Effect], None] | None = None,
        identity: IdentityStore | None = None,
        mic_authority: Callable[[], Identity] | None = None,
        register: RegisterWithCallManager | None = None,
        client_certificate: str | None = None,
    ) -> None:
        self.model = model
        self.store = store
        self.fetch = fetch
        self.ask_tvs = ask_tvs
        self.clock = clock
        self.console = console if console is not None else PhoneConsole(model, clock)
        self._observe = observe
        #: Where the phone keeps its MIC; None for phones that do without one (fleets, machine tests).
        self.identity_store = identity
        self.mic_authority = mic_authority or default_mic_ca
        #: Registration after the configuration (docs/registration.md); None: the boot stops there.
        self.register = register
        #: What the phone presents over TLS when it registers: "lsc", "mic" or None.
        self.client_certificate = client_certificate
        #: The phone's identity, read from flash (or issued there, the first time) as the flash is.
        self.identity: PhoneIdentity | None = None
        flash = store.load() if store is not None else Flash()
        self.machine = PhoneMachine(model, device_id, flash)
        self.machine.device_name  # noqa: B018 - validates the device id now, not mid-boot
        if identity is not None:
            # First use issues the MIC; every later start reads the same one (it is permanent).
            self.identity = identity.ensure_mic(model.name, self.machine.device_name, self.mic_authority)

    def _effect(self, effect: Effect) -> None:
        if isinstance(effect, Log):
            self.console.write(effect)
        if self._observe is not None:
            self._observe(effect)

    def _presented(self) -> str | None:
        """The certificate the phone presents: as given, else its LSC, else its MIC (Cisco TAC 200860)."""
        if self.client_certificate is not None or self.identity is None:
            return self.client_certificate
        return "lsc" if self.identity.lsc is not None else "mic"

    def _persist(self, before: Flash) -> None:
        if self.store is not None and self.machine.flash != before:
            self.store.save(self.machine.flash, model=self.model.name, device=self.machine.device_name)

    def boot(self) -> BootReport:
        before = self.machine.flash
        self.machine, report = run_boot(
            self.machine, fetch=self.fetch, ask_tvs=self.ask_tvs,
            clock=lambda: self.clock().timestamp(), observe=self._effect,
            register=self.register, client_certificate=self._presented(),
        )
        self._persist(before)
        return report

    def _event(self, event: Erased | FactoryReset) -> None:
        before = self.machine.flash
        self.machine, effects = self.machine.handle(event, self.clock().timestamp())
        for effect in effects:
            self._effect(effect)
        self._persist(before)

    def erase(self, *, ctl: bool = True, itl: bool = True) -> None:
        """The manual CTL/ITL erase from the phone's menu (docs/phone.md)."""
        self._event(Erased(ctl=ctl, itl=itl))

    def factory_reset(self) -> None:
        self._event(FactoryReset())


def describe_installed(machine: PhoneMachine, item: Item) -> dict[str, object]:
    """The JSON view of an installed list: installed, md5, sha1, signer_serial (docs/phone.md)."""
    installed = machine.flash.list_for(item)
    if installed is None:
        return {"installed": False, "md5": None, "sha1": None, "signer_serial": None}
    serial = installed.header.signer_serial
    return {"installed": True, "md5": installed.md5, "sha1": installed.sha1,
            "signer_serial": serial_hex(serial) if serial else None}


def boot_json(machine: PhoneMachine, report: BootReport, identity: PhoneIdentity | None = None) -> dict[str, Any]:
    """The JSON contract of `phone boot --json` for a machine after a boot."""
    config = machine.flash.stored_config()
    return {
        "device": machine.device_name,
        "model": machine.model.name,
        "files": [{"name": f.name, "result": f.result, "reason": f.reason} for f in report.files],
        "ctl": describe_installed(machine, Item.CTL),
        "itl": describe_installed(machine, Item.ITL),
        "config": {
            "name": report.config_name or machine.flash.config_name,
            "applied": report.config_applied,
            "tvs": [{"address": m.address, "port": m.port, "priority": m.priority} for m in config.tvs_members],
        },
        "tvs_requests": [
            {"server": a.server, "type": a.message_type, "status": a.status, "roles": list(a.roles), "error": a.error,
             "bytes_sent": a.bytes_sent, "bytes_received": a.bytes_received}
            for a in report.tvs_requests
        ],
        "status_messages": list(report.status_messages),
        "device_tl_info": [
            {"status": i.status, "name": i.name, "ctl_checksum": i.ctl_checksum, "itl_checksum": i.itl_checksum}
            for i in report.device_tl_info
        ],
        "identity": identity_json(identity),
        "registration": report.registration.as_json() if report.registration is not None else None,
    }

