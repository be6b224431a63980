"""The emulated CUCM lab: a cluster persisted in a folder, its files, its operations, its servers.

Python API (what the scenario runner and the pytest plugin use)::

    from phone.lab import Lab, serving

    lab = Lab.create(path, nodes=2, release="10.5", clock=clock, key_bits=2048)
    lab = Lab.open(path, clock=clock)
    lab.set_cluster_mixed_mode(); lab.set_cluster_non_secure_mode()
    lab.ctl_update(); lab.ctl_delete(node=None); lab.ctl_reset_localkey()
    token = lab.new_etoken("token1")            # -> Identity (certificate and key)
    lab.ctl_client(["token1", "token2"], sign_with=None)
    lab.regenerate_certificate("CallManager", node=None, key_bits=None)
    lab.upload_certificate("Phone-SAST-trust", pem_or_der_or_x509)
    lab.itl_reset_localkey(); lab.restart_tftp(); lab.set_rollback(True)
    lab.set_parameter("tftp-file-signature-algorithm", "sha512")
    lab.set_parameter("tls-min-version", "1.2")
    lab.show("ctl") / lab.ctl() / lab.itl(node) / lab.device_file("SEP…cnf.xml.sgn")
    lab.export(out, macs=[...])
    lab.set_device("SEP001122334455", model="CP-8861", security_profile="encrypted",
                   capf_operation="install", capf_auth="null-string")   # lab.device(name) -> DeviceRecord
    lab.trusted_certificates("CAPF-trust")     # CAPF-trust, CallManager-trust, Phone-SAST-trust
    lab.identity("CallManager-ECDSA", node)    # also "tomcat", "tomcat-ECDSA", "CAPF", "TVS", …
    result = lab.run("cert regenerate CallManager")  # any operation by its command-line words
    result.lines, result.state                  # what CUCM printed, the cluster afterwards
    with lab.serving() as servers:              # TFTP + every node's TVS, free loopback ports
        servers.tftp_port, servers.tvs_port, servers.tvs_ports
        servers.stop_tvs(); servers.start_tvs()

Every operation returns the lines CUCM prints; one CUCM would refuse raises
``OperationRefused`` (exit 1 on the command line). See docs/lab.md.
"""

from phone.lab.build import ServiceAddresses
from phone.lab.devices import DeviceRecord, DeviceStore
from phone.lab.lab import Lab, wall_clock
from phone.lab.operations import OperationResult
from phone.lab.state import LabError, LabState, Names, Node, OperationRefused
from phone.lab.releases import RELEASES, Release, parse_release
from phone.lab.servers.serving import LabServers, serving

__all__ = [
    "RELEASES",
    "DeviceRecord",
    "DeviceStore",
    "Lab",
    "LabError",
    "LabServers",
    "LabState",
    "Names",
    "Node",
    "OperationRefused",
    "OperationResult",
    "Release",
    "ServiceAddresses",
    "parse_release",
    "serving",
    "wall_clock",
]
