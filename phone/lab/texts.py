"""What the lab prints: CUCM's own CLI texts where public documents show them.

Verbatim from Cisco TAC 118893 (English and Japanese editions): the mixed-mode, CTL update,
file delete, `show ctl` without a CTL, the CTL client's messages and the
`utils itl reset` output. Texts marked *ours* are written by analogy where no
public document shows CUCM's wording; docs/lab.md lists them.

The lab never asks "Do you want to continue? (y/n)": it is a test tool, every
command runs as if answered "y".
"""

from __future__ import annotations

from collections.abc import Sequence

RESTART = ("Please Restart the TFTP and Cisco CallManager services on all nodes in the cluster that run "
           "these services")

# S4.b
MIXED_MODE = ("Moving Cluster to Mixed Mode", "Cluster set to Mixed Mode", RESTART)
CTL_UPDATED = ("Updating CTL file", "CTL file Updated", RESTART)
# ours, by analogy with MIXED_MODE
NON_SECURE_MODE = ("Moving Cluster to Non-Secure Mode", "Cluster set to Non-Secure Mode", RESTART)


def files_deleted(found: int, deleted: int) -> str:
    """S4.b: ``file delete tftp CTLFile.tlv``."""
    return f"files: found = {found}, deleted = {deleted}"


# S4.a (Cisco TAC 118893 prints it on three lines)
NO_CTL = (
    "Length of CTL file: 0",
    "CTL File not found . Please run CTLClient plugin or run the CLI - utils ctl.. to generate the CTL file.",
    "Error parsing the CTL File.",
)

# S4.d: the CTL client
TOKEN_NOT_IN_CTL = "The Security Token you have inserted does not exist in the CTL File"
NO_CTL_IN_SECURE_MODE = ("No CTL File exists on the server but the Call Manager Cluster Security Mode is in "
                         "Secure Mode. For the system to function, you must create the CTL File and set Call "
                         "Manager Cluster the Secure Mode.")

# ours
ALREADY_MIXED = "The cluster is already in Mixed Mode (ClusterSecurityMode 1)"
ALREADY_NON_SECURE = "The cluster is already in Non-Secure Mode (ClusterSecurityMode 0)"
NOT_MIXED = ("The cluster is not in Mixed Mode (ClusterSecurityMode 0): run 'utils ctl set-cluster mixed-mode' "
             "first")


def itl_reset(nodes: Sequence[str]) -> tuple[str, ...]:
    """S4.e: ``utils itl reset localkey`` (CLI reference 12.5(1)SU5)."""
    return (
        "Generating the reset ITL file.....",
        "The reset ITL file was generated successfully",
        "Locating active Tftp servers in the cluster.....",
        "Following is the list of Active tftp servers in the cluster",
        "====================",
        *nodes,
        "=====================",
        f"Number of Active TFTP servers in the cluster : {len(nodes)}",
        "Transferring new reset ITL file to the TFTP server nodes in the cluster.........",
        *(f"Successfully transferred reset ITL to node {node}" for node in nodes),
    )


def ctl_reset(nodes: Sequence[str]) -> tuple[str, ...]:
    """``utils ctl reset localkey``: ours, worded as CUCM words ``utils itl reset localkey``."""
    return (
        "Generating the reset CTL file signed with the CallManager key of the publisher.....",
        "The reset CTL file was generated successfully",
        *(f"Successfully transferred reset CTL to node {node}" for node in nodes),
        RESTART,
    )


def regenerated(service: str) -> tuple[str, ...]:
    """``set cert regen <unit>``: CUCM's confirmation (from memory of the CLI; treat as ours)."""
    return (f"Successfully Regenerated Certificate for {service}.",
            f"You must restart services related to {service} for the regenerated certificates to become active.")


UPLOADED = "Success: Certificate Uploaded"  # the OS Administration page (Cisco TAC 118893, step 10)


# Certificate regeneration: what CUCM's Security Guide tells the administrator to do next, per
# certificate (Cisco "Security Guide for Cisco Unified Communications Manager, Release 15",
# "Certificate Regeneration"; Cisco TAC 214231). CUCM prints no such list: these lines are ours, so
# that a scenario shows which step a rehearsal still owes.
_RESTARTS = {
    "CallManager": "Cisco CallManager, Cisco CTIManager, Cisco Trust Verification Service and Cisco Tftp",
    "CallManager-ECDSA": "Cisco CallManager, Cisco CTIManager, Cisco Trust Verification Service and Cisco Tftp",
    "TVS": "Cisco Tftp",
    "CAPF": "Cisco Trust Verification Service and Cisco Tftp",
    "tomcat": "Cisco Tomcat (utils service restart Cisco Tomcat), then deactivate and reactivate Cisco Tftp",
    "tomcat-ECDSA": "Cisco Tomcat (utils service restart Cisco Tomcat), then deactivate and reactivate Cisco Tftp",
}
CTL_UPDATE_FIRST = "Mixed Mode: run 'utils ctl update CTLFile' before restarting the services"
RESET_PHONES = "Reset the phones so that they download the new ITL"
#: CUCM 14 and later: the "Phone Interaction on Certificate Update" enterprise parameter.
RESET_AUTOMATIC = "Phone Interaction on Certificate Update: the phones reset themselves to take the new ITL"


def regeneration_steps(service: str, *, mixed_mode: bool, automatic_reset: bool) -> tuple[str, ...]:
    """What to do after ``set cert regen <service>`` (ours; Security Guide "Certificate Regeneration")."""
    reset = RESET_AUTOMATIC if automatic_reset else RESET_PHONES
    if service == "ITLRecovery":
        if mixed_mode:
            return (("Mixed Mode: next run 'utils ctl reset localkey', reset the phones, run 'utils ctl update "
                     "CTLFile', reset the phones again"),)
        return (("Next run 'utils itl reset localkey', reset the phones, restart Cisco Tftp, reset the phones "
                 "again"),)
    lines = []
    if mixed_mode and service in ("CallManager", "CallManager-ECDSA", "CAPF"):
        lines.append(CTL_UPDATE_FIRST)
    lines.append(f"Restart {_RESTARTS[service]}")
    if service not in ("tomcat", "tomcat-ECDSA"):
        lines.append(reset)
    return tuple(lines)


def capf_trust_added(new: str, old: str) -> str:
    """CAPF regeneration: the new certificate joins the trust stores, the previous one stays (ours)."""
    return (f"{new} added to CAPF-trust and CallManager-trust; {old} stays there until deleted. LSCs it issued are "
            "not reissued: reinstall them (CAPF operation install) before deleting it")


ITL_RECOVERY_1024 = ("Warning: a 1024-bit ITLRecovery key makes 'utils itl reset' fail on some phones "
                     "(Cisco TAC 214231): regenerate with 2048 bits")


def trust_deleted(store: str, common_name: str, count: int) -> str:
    """``lab cert delete``: the OS Administration page's deletion (ours)."""
    return f"Deleted {count} certificate(s) CN={common_name} from {store}"


def device_saved(name: str) -> str:
    """``lab device set`` (ours, by analogy with the Phone Configuration page's "Update Successful")."""
    return f"Update Successful: {name}"
