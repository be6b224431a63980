"""What a CUCM phone export says of each phone's security, as the lab's device records.

A BAT "Export Phones" file with All Details carries, per phone, its Phone Security
Profile and the CAPF section of its phone page (Cisco Unified Communications Manager
Bulk Administration Guide, "Export Phone Records"; Security Guide, "Phone Security
Profile" and "Certificate Authority Proxy Function"). ``device_records`` turns each row
that says something of them into a ``phone.lab.devices.DeviceRecord``, so that a fleet or
a scenario run with ``--inventory`` boots against a lab whose devices are configured as
the real cluster's are (docs/fleet.md, "Security profiles and CAPF from the export").

The device security mode comes from the export's ``Device Security Mode`` column when it
has one. Otherwise it is read from the profile's name, because CUCM names its own
profiles after the mode: "… Non-Secure Profile" and CUCM's default "Universal Device
Template - Model-independent Security Profile" are non-secure; a name that says
"Encrypted" is encrypted, "Authenticated" authenticated; any other name that says
"Secure" (administrators' "Cisco 8861 - Standard SIP Secure Profile") is read as encrypted,
the mode such copies are made for; a name that says none of these is non-secure, as CUCM
gives a phone it knows nothing of.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from phone.errors import UsageError
from phone.lab.devices import CapfSettings, DeviceRecord
from phone.scenario.inventory import InventoryError, InventoryPhone

#: "Device Security Mode" as CUCM writes it -> the lab's security profile.
_MODES = {"non secure": "non-secure", "nonsecure": "non-secure", "non-secure": "non-secure",
          "authenticated": "authenticated", "encrypted": "encrypted"}
#: "Certificate Operation" -> the lab's CAPF operation ("Troubleshoot" fetches the phone's certificates).
_OPERATIONS = {"no pending operation": "none", "none": "none", "install/upgrade": "install", "install": "install",
               "upgrade": "upgrade", "delete": "delete", "troubleshoot": "fetch"}
#: "Authentication Mode" -> the lab's CAPF authentication mode.
_AUTH_MODES = {"by null string": "null-string", "by authentication string": "auth-string",
               "by existing certificate (precedence to lsc)": "existing-lsc",
               "by existing certificate (precedence to mic)": "existing-mic"}
_RSA_SIZES = {"1024": "rsa1024", "2048": "rsa2048", "4096": "rsa4096"}
_EC_SIZES = {"256": "ec256", "384": "ec384", "521": "ec521"}


def _folded(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip().lower())


def security_profile(phone: InventoryPhone) -> str:
    """non-secure, authenticated or encrypted: the Device Security Mode column, else the profile's name."""
    if phone.security_mode is not None:
        mode = _MODES.get(_folded(phone.security_mode))
        if mode is None:
            raise InventoryError(f"{phone.device}: Device Security Mode {phone.security_mode!r} is not "
                                 "Non Secure, Authenticated or Encrypted")
        return mode
    name = _folded(phone.security_profile or "")
    if re.search(r"non[- ]?secure|model-independent security profile", name):
        return "non-secure"
    if "encrypt" in name:
        return "encrypted"
    if "authenticat" in name:
        return "authenticated"
    if "secure" in name:
        return "encrypted"
    return "non-secure"


def _flag(phone: InventoryPhone) -> bool:
    value = _folded(phone.encrypted_config or "false")
    if value in ("true", "t", "yes", "y", "1", "on", "checked"):
        return True
    if value in ("false", "f", "no", "n", "0", "off", "unchecked"):
        return False
    raise InventoryError(f"{phone.device}: TFTP Encrypted Config {phone.encrypted_config!r} is not true or false")


def _choice(table: dict[str, str], value: str | None, column: str, device: str, default: str) -> str:
    if value is None:
        return default
    found = table.get(_folded(value))
    if found is None:
        raise InventoryError(f"{device}: {column} {value!r} is not one of CUCM's values "
                             f"({', '.join(key for key in table)})")
    return found


def capf_settings(phone: InventoryPhone) -> CapfSettings:
    """The CAPF section of the phone page: operation (pending when there is one), mode, string, key."""
    operation = _choice(_OPERATIONS, phone.certificate_operation, "Certificate Operation", phone.device, "none")
    auth = _choice(_AUTH_MODES, phone.authentication_mode, "Authentication Mode", phone.device,
                   "auth-string" if phone.authentication_string else "null-string")
    ec_first = _folded(phone.key_order or "rsa only").startswith("ec")
    if ec_first:
        key = _choice(_EC_SIZES, phone.ec_key_size, "EC Key Size (Bits)", phone.device, "ec256")
    else:
        key = _choice(_RSA_SIZES, phone.rsa_key_size, "Key Size (Bits)", phone.device, "rsa2048")
    try:
        return CapfSettings(operation=operation, auth=auth,
                            auth_string=phone.authentication_string if auth == "auth-string" else None,
                            key=key, status="pending" if operation != "none" else None)
    except UsageError as error:
        raise InventoryError(f"{phone.device}: {error}") from None


def device_records(phones: Iterable[InventoryPhone], model_name) -> list[DeviceRecord]:
    """A lab device record for every phone whose row says something of its security (``model_name``
    maps the inventory's model to its catalogue name); rows that say nothing leave the lab's
    auto-registration default (non-secure, no CAPF operation)."""
    return [DeviceRecord(phone.device, model_name(phone.model), security_profile=security_profile(phone),
                         encrypted_config=_flag(phone), capf=capf_settings(phone))
            for phone in phones if phone.has_security_settings]
