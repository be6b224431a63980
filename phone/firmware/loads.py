"""Firmware loads: how Cisco names them, how versions compare, and version ranges.

A phone runs a *load*, named ``<load family>.<version>``: ``sip88xx.14-2-1-0001-14``,
``sip78xx.12-1-1-12`` (Cisco TAC note 214535), ``SCCP75.9-4-2SR3-1S`` (the 7975 of Cisco
TAC note 118893 ran ``SCCP75.9-3-1SR4-1S``). The first three numbers are major, minor and
maintenance, written ``12.5(1)``; an ``SRn`` after them is the service release; what
follows is the build, kept but never compared. The 69xx loads put a fourth number before
the service release (``SCCP69xx.9-4-1-3SR3``): read as a build. CE endpoints name loads
``sipdx80.ce-9.15.3.22-…`` (version ``CE9.15.3``), compared only with other CE versions.
The 7940 and 7960 use images: SCCP ``P003`` plus two digits each of major, minor,
maintenance and sub-release (``P00308010200`` is 8.1(2)), SIP ``P0S3-8-12-00`` (8.12(0)).
Sources: Cisco Unified Communications Manager Device Package Compatibility Matrix; Cisco
Unified CME Administration Guide, "Installing and Upgrading"; docs/models.md.

Order: major, minor, maintenance, then no SR < SR1 < SR2; builds of one release are equal.

A model file states firmware-dependent facts as rows over *ranges*: ``>= 12.5(1)``,
``< 12.1(1)``, both joined by a comma, or ``any``. Lower bounds include, upper bounds
exclude; ``>= 12.5(1)`` covers its service releases, ``< 12.5(1)SR1`` covers 12.5(1).
"""

from __future__ import annotations

import re

import attrs

from phone.errors import UsageError


class LoadFormatError(UsageError):
    """A firmware version, load name or range that cannot be read."""


#: Version lines that are never compared with each other.
ENTERPRISE, CE = "enterprise", "ce"


@attrs.frozen(order=False)
class FirmwareVersion:
    """A release: major.minor(maintenance)SRn on a version line; ``build`` is kept, not compared."""

    major: int
    minor: int
    maintenance: int = 0
    service_release: int = 0
    line: str = ENTERPRISE
    build: str = attrs.field(default="", eq=False)

    @property
    def key(self) -> tuple[int, int, int, int]:
        return (self.major, self.minor, self.maintenance, self.service_release)

    def _key_against(self, other: FirmwareVersion) -> tuple[tuple[int, int, int, int], tuple[int, int, int, int]]:
        if other.line != self.line:
            raise LoadFormatError(f"{self} and {other} are on different firmware lines; they do not compare")
        return self.key, other.key

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, FirmwareVersion):
            return NotImplemented
        mine, theirs = self._key_against(other)
        return mine < theirs

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, FirmwareVersion):
            return NotImplemented
        mine, theirs = self._key_against(other)
        return mine >= theirs

    def __str__(self) -> str:
        if self.line == CE:
            return f"CE{self.major}.{self.minor}.{self.maintenance}"
        service = f"SR{self.service_release}" if self.service_release else ""
        return f"{self.major}.{self.minor}({self.maintenance}){service}"


_VERSION = re.compile(r"(?i)^\s*(?P<major>\d{1,3})\.(?P<minor>\d{1,3})(?:\((?P<maint>\d{1,3})\))?"
                      r"(?:sr(?P<sr>\d{1,3}))?\s*$")
_CE_VERSION = re.compile(r"(?i)^\s*ce\s*(?P<major>\d{1,3})\.(?P<minor>\d{1,3})(?:\.(?P<maint>\d{1,3}))?\s*$")


def parse_version(text: str) -> FirmwareVersion:
    """``14.2(1)``, ``9.4(2)SR3``, ``14.0`` (its first release), or ``CE9.15.3``."""
    match = _VERSION.match(text)
    if match:
        return FirmwareVersion(int(match["major"]), int(match["minor"]), int(match["maint"] or 0),
                               int(match["sr"] or 0))
    match = _CE_VERSION.match(text)
    if match:
        return FirmwareVersion(int(match["major"]), int(match["minor"]), int(match["maint"] or 0), line=CE)
    raise LoadFormatError(f"firmware version {text!r}: expected e.g. 14.2(1), 9.4(2)SR3 or CE9.15.3")


@attrs.frozen
class Load:
    """A load as written (``text``), its family and the version read from it."""

    text: str
    family: str
    version: FirmwareVersion

    def __str__(self) -> str:
        return self.text


# <family>.<major>-<minor>-<maintenance>[-<fourth>][SRn][-<build>]
_LOAD = re.compile(r"(?i)^(?P<family>[a-z][\w]*)\.(?P<major>\d{1,3})-(?P<minor>\d{1,3})-(?P<maint>\d{1,3})"
                   r"(?:-(?P<fourth>\d{1,3})(?=sr))?(?:sr(?P<sr>\d{1,3}))?(?:[-.](?P<build>[\w.-]*))?$")
_CE_LOAD = re.compile(r"(?i)^(?P<family>[a-z][\w]*)\.ce-?(?P<major>\d{1,3})\.(?P<minor>\d{1,3})\.(?P<maint>\d{1,3})"
                      r"(?:[.-](?P<build>[\w.-]*))?$")
_IMAGE_SCCP = re.compile(r"(?i)^P003(?P<major>\d\d)(?P<minor>\d\d)(?P<maint>\d\d)(?P<sub>\d\d)$")
_IMAGE_SCCP_SR = re.compile(r"(?i)^P003(?P<major>\d\d)(?P<minor>\d\d)SR(?P<sr>\d\d)$")
_IMAGE_SIP = re.compile(r"(?i)^P0S3-(?P<major>\d{1,2})-(?P<minor>\d{1,2})-(?P<maint>\d{1,2})$")
#: 7940/7960 service-release images do not carry their maintenance number in the name;
#: the Device Package Compatibility Matrix gives it for each.
_SR_IMAGE_MAINTENANCE = {(8, 1): 2}


def parse_load(text: str) -> Load:
    """Read a load name; raise ``LoadFormatError`` naming the forms understood."""
    name = text.strip()
    match = _LOAD.match(name)
    if match:
        build = "-".join(part for part in (match["fourth"], match["build"]) if part)
        version = FirmwareVersion(int(match["major"]), int(match["minor"]), int(match["maint"]),
                                  int(match["sr"] or 0), build=build)
        return Load(name, match["family"], version)
    match = _CE_LOAD.match(name)
    if match:
        version = FirmwareVersion(int(match["major"]), int(match["minor"]), int(match["maint"]), line=CE,
                                  build=match["build"] or "")
        return Load(name, match["family"], version)
    match = _IMAGE_SCCP.match(name)
    if match:
        version = FirmwareVersion(int(match["major"]), int(match["minor"]), int(match["maint"]),
                                  build=match["sub"])
        return Load(name, "P003", version)
    match = _IMAGE_SCCP_SR.match(name)
    if match:
        major, minor = int(match["major"]), int(match["minor"])
        if (major, minor) not in _SR_IMAGE_MAINTENANCE:
            raise LoadFormatError(f"load {text!r}: no known maintenance release for image {major}.{minor} SR")
        return Load(name, "P003", FirmwareVersion(major, minor, _SR_IMAGE_MAINTENANCE[(major, minor)],
                                                  int(match["sr"])))
    match = _IMAGE_SIP.match(name)
    if match:
        return Load(name, "P0S3", FirmwareVersion(int(match["major"]), int(match["minor"]), int(match["maint"])))
    raise LoadFormatError(f"load {text!r}: expected <family>.<version> such as sip88xx.14-2-1-0001-14, "
                          "SCCP75.9-4-2SR3-1S, sipdx80.ce-9.15.3.22, or a 7940/7960 image such as P0030801SR02")


@attrs.frozen
class VersionRange:
    """``lower <= version < upper``; a missing bound is open."""

    lower: FirmwareVersion | None = None
    upper: FirmwareVersion | None = None
    text: str = attrs.field(default="any", eq=False)

    def __contains__(self, version: FirmwareVersion) -> bool:
        if self.lower is not None and (version.line != self.lower.line or version < self.lower):
            return False
        if self.upper is not None and (version.line != self.upper.line or version >= self.upper):
            return False
        return True

    @property
    def line(self) -> str | None:
        """The version line a bounded range lies on (None for ``any``)."""
        bound = self.lower or self.upper
        return None if bound is None else bound.line

    def overlaps(self, other: VersionRange) -> bool:
        """Whether some version lies in both ranges (an open bound reaches every version of its
        line; ranges on two lines, e.g. Android DX ``< 11.0`` and ``>= CE9.0``, never meet)."""
        if self.line is not None and other.line is not None and self.line != other.line:
            return False
        low = max((bound.key for bound in (self.lower, other.lower) if bound is not None), default=None)
        high = min((bound.key for bound in (self.upper, other.upper) if bound is not None), default=None)
        return low is None or high is None or low < high

    def __str__(self) -> str:
        return self.text


_BOUND = re.compile(r"^\s*(?P<op>>=|<)\s*(?P<version>\S.*?)\s*$")


def parse_range(text: str) -> VersionRange:
    """``any``, ``>= 12.5(1)``, ``< 12.1(1)``, or both joined by a comma."""
    if text.strip().lower() == "any":
        return VersionRange(text="any")
    lower = upper = None
    for part in text.split(","):
        match = _BOUND.match(part)
        if not match:
            raise LoadFormatError(f"firmware range {text!r}: expected 'any', '>= VERSION', '< VERSION' or both "
                                  "joined by a comma")
        version = parse_version(match["version"])
        if match["op"] == ">=":
            if lower is not None:
                raise LoadFormatError(f"firmware range {text!r} has two lower bounds")
            lower = version
        else:
            if upper is not None:
                raise LoadFormatError(f"firmware range {text!r} has two upper bounds")
            upper = version
    if lower is not None and upper is not None and (lower.line != upper.line or not lower < upper):
        raise LoadFormatError(f"firmware range {text!r} is empty: its lower bound is not below its upper bound")
    return VersionRange(lower, upper, text.strip())
