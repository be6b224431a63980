"""Write a CUCM Bulk Administration "Export Phones - All Details" style CSV with N rows.

For ``fleet run --inventory`` at scale (docs/fleet.md, "Inventories"): mixed
Cisco desk phones, each model on one of two loads (the catalogue's example
load, or none: the model's default), plus the rows a real export holds that
are not emulated phones — Jabber softphones (``CSF…``) and third-party SIP
devices — which the fleet skips and counts. UTF-8 with a byte-order mark,
CRLF line ends and quoted fields with commas and quotes, as CUCM writes them.
The rows are the same for the same N and seed.

    .venv/bin/python benchmarks/make_inventory.py 20000 --out inventory.csv [--seed 1]
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from phone.catalogue import load_catalogue  # noqa: E402

#: The first columns of an All Details export as CUCM writes them, then the ones phonetrust reads.
HEADER = ("Device Name", "Description", "Device Pool", "Phone Button Template", "CSS", "AAR CSS", "Location",
          "Extension Mobility", "Phone Load Name", "Module 1 Load Name", "Device Type", "User ID 1",
          "Device Security Profile", "Certificate Operation", "Authentication String", "Operation Completes By",
          "Device Protocol", "Directory Number 1")
#: (Device Type, share of the rows). Cisco desk phones first, then rows the fleet skips.
MIX = (("Cisco 8861", 30), ("Cisco 8845", 10), ("Cisco 7975", 15), ("Cisco 7965", 10), ("Cisco 7841", 10),
       ("Cisco 7940", 5), ("Cisco 7960", 3), ("Cisco DX80", 2), ("Cisco 6921", 5),
       ("Cisco Unified Client Services Framework", 8), ("Third-party SIP Device (Advanced)", 2))


def rows(count: int, seed: int):
    catalogue = load_catalogue()
    chooser = random.Random(seed)
    types = [device_type for device_type, _ in MIX]
    weights = [share for _, share in MIX]
    for number in range(count):
        device_type = chooser.choices(types, weights)[0]
        extension = 20000 + number
        if device_type.startswith("Cisco Unified Client"):
            name, load, protocol, model = f"CSFUSER{number:05d}", "", "SIP", None
        else:
            # A locally administered OUI: never a real phone's MAC.
            name, protocol = f"SEP0AC15C{number:06X}", "SIP"
            model = catalogue.get("CP-" + device_type.split()[-1]) if device_type.startswith("Cisco ") else None
            load = (model.firmware or "") if model is not None and chooser.random() < 0.5 else ""
            if model is not None and model.firmware and model.firmware.startswith(("SCCP", "P003")):
                protocol = "SCCP"
        profile = f"{device_type} - Standard {protocol} Non-Secure Profile" if model is not None else ""
        yield (name, f'Desk {number}, floor {number % 12} "{device_type}"', "DP_HQ", f"Standard {device_type}",
               "CSS_Internal", "", "Hub_None", "f", load, "", device_type, f"user{number:05d}", profile,
               "No Pending Operation", "", "", protocol, str(extension))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("count", type=int, help="rows to write")
    parser.add_argument("--out", type=Path, required=True, help="the CSV file to write")
    parser.add_argument("--seed", type=int, default=1, help="seed of the model and load mix")
    args = parser.parse_args(argv)
    with open(args.out, "w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows(rows(args.count, args.seed))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
