"""The pytest plugin as a user meets it: the README's regression test, and failures that explain themselves."""

from __future__ import annotations

README_TEST = '''
from phone.pytest_plugin import assert_accepted, assert_needs_manual_erase, assert_rejected

def test_callmanager_regeneration(phonetrust_cluster):
    cluster = phonetrust_cluster(release="10.5")
    phones = [cluster.phone(m) for m in ("CP-7975", "CP-8861", "CP-7940")]
    cluster.run("ctl set-cluster mixed-mode")
    cluster.boot(phones)
    cluster.run("cert regenerate CallManager", "ctl update")
    r7975, r8861, r7940 = cluster.boot(phones)
    assert_accepted(r7975, via="tvs")
    assert_accepted(r8861, via="tvs")
    assert_needs_manual_erase(r7940)
    assert_rejected(r7940, code="no-tvs")
'''

WRONG_TEST = '''
from phone.pytest_plugin import assert_accepted

def test_legacy_phone_would_accept(phonetrust_cluster):
    cluster = phonetrust_cluster()
    phone = cluster.phone("CP-7940")
    cluster.run("ctl set-cluster mixed-mode")
    cluster.boot([phone])
    cluster.run("cert regenerate CallManager", "ctl update")
    [result] = cluster.boot([phone])
    assert_accepted(result)
'''


def test_the_readme_regression_test_passes(pytester):
    pytester.makepyfile(README_TEST)
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_a_failed_assertion_says_what_the_phone_did(pytester):
    pytester.makepyfile(WRONG_TEST)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*expected the new trust list to be accepted; CP-7940 SEP02C15C000000: rejected;*"
                                 "CTLSEP02C15C000000.tlv=rejected*"])
