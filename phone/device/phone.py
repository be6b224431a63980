"""A phone: a model, its trust state machine, its transports, its flash and its console.

This is the only layer of the phone with I/O. ``Phone.boot`` loads the flash,
runs the machine through one boot with the transports it was given (TFTP and
TVS clients for a real network; in-memory functions in tests), saves the
flash when it changed (atomically, ``phone.device.flash``) and writes the console.
A phone given an identity store reads its MIC when it starts, issuing it the first
time (``phone.device.identity``), and keeps there the LSC a CAPF server issues
(docs/capf.md): written only once the operation succeeded, so a failed or
refused one leaves the identity as it was.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

import attrs

from phone.device.boot import AskTvsServer, FetchFile, RegisterWithCallManager, no_capf_client, run_boot
from phone.device.flash import FlashStore
from phone.device.identity import IdentityStore, PhoneIdentity, default_mic_ca, identity_json
from phone.firmware.capf_plan import EnrolCapf
from phone.firmware.capf_session import CapfCredentials
from phone.firmware.machine import (
    BootReport,
    CapfFinished,
    DropLsc,
    Effect,
    Erased,
    FactoryReset,
    Flash,
    KeepLsc,
    Log,
    PhoneMachine,
)
from phone.firmware.encrypted import PhoneKeys
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
        enrol_capf: Callable[[EnrolCapf, CapfCredentials], CapfFinished] | None = None,
        http_service: bool = False,
        https_service: bool = False,
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
        #: The CAPF client (``phone.device.capf.CapfTransport``); None: CAPF operations fail.
        self.enrol_capf = enrol_capf
        #: The LSC of a phone without an identity store (a fleet's phones keep it in memory).
        self._lsc_in_memory: Identity | None = None
        flash = store.load() if store is not None else Flash()
        # ``fetch`` carries HTTP(S) effects too when the phone knows such a service (docs/http.md).
        self.machine = PhoneMachine(model, device_id, flash, http_service=http_service, https_service=https_service)
        self.machine.device_name  # noqa: B018 - validates the device id now, not mid-boot
        if identity is not None:
            # First use issues the MIC; every later start reads the same one (it is permanent).
            self.identity = identity.ensure_mic(model.name, self.machine.device_name, self.mic_authority)
            self.machine = attrs.evolve(self.machine, keys=phone_keys(self.identity))

    @property
    def lsc(self) -> Identity | None:
        """The phone's LSC, None while CAPF has issued none."""
        return self.identity.lsc if self.identity is not None else self._lsc_in_memory

    def _credentials(self) -> CapfCredentials:
        return CapfCredentials(mic=self.identity.mic if self.identity is not None else None, lsc=self.lsc)

    def _enrol(self, plan: EnrolCapf) -> CapfFinished:
        if self.enrol_capf is None:
            return no_capf_client(plan)
        return self.enrol_capf(plan, self._credentials())

    def _keep_lsc(self, lsc: Identity | None) -> None:
        """Put the LSC in flash (or drop it) first, then in the phone's own view of itself."""
        if self.identity_store is not None and self.identity is not None:
            if lsc is None:
                self.identity_store.delete_lsc()
            else:
                self.identity_store.save_lsc(lsc)
            self.identity = attrs.evolve(self.identity, lsc=lsc)
        else:
            self._lsc_in_memory = lsc

    def _effect(self, effect: Effect) -> None:
        if isinstance(effect, Log):
            self.console.write(effect)
        elif isinstance(effect, KeepLsc):
            self._keep_lsc(effect.lsc)
        elif isinstance(effect, DropLsc):
            self._keep_lsc(None)
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
        # The LSC an earlier boot's CAPF session kept is what this boot opens an encrypted configuration with.
        self.machine = attrs.evolve(self.machine, keys=PhoneKeys(
            mic=self.identity.mic if self.identity is not None else None, lsc=self.lsc))
        before = self.machine.flash
        self.machine, report = run_boot(
            self.machine, fetch=self.fetch, ask_tvs=self.ask_tvs,
            clock=lambda: self.clock().timestamp(), observe=self._effect, enrol_capf=self._enrol,
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
        """Everything goes but the MIC; the LSC goes too (Cisco TAC note 200860)."""
        self._event(FactoryReset())
        self._keep_lsc(None)


def phone_keys(identity: PhoneIdentity | None) -> PhoneKeys:
    """What the machine opens encrypted configurations with: the identity's MIC and LSC."""
    if identity is None:
        return PhoneKeys()
    return PhoneKeys(mic=identity.mic, lsc=identity.lsc)


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
        "files": [{"name": f.name, "result": f.result, "reason": f.reason, "transport": f.transport}
                  for f in report.files],
        "ctl": describe_installed(machine, Item.CTL),
        "itl": describe_installed(machine, Item.ITL),
        "config": {
            "name": report.config_name or machine.flash.config_name,
            "applied": report.config_applied,
            "encrypted": report.config_encrypted,
            "transport": report.config_transport,
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
        "capf": capf_json(report),
        "registration": report.registration.as_json() if report.registration is not None else None,
    }


def capf_json(report: BootReport) -> dict[str, Any] | None:
    """The ``"capf"`` object of `phone boot --json`: ``{server, operation, result, reason}`` (docs/capf.md)."""
    capf = report.capf
    if capf is None:
        return None
    return {"server": capf.server, "operation": capf.operation, "result": capf.result, "reason": capf.reason}

