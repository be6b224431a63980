"""The phone-model catalogue: loading, lookup, user files, errors and the pinned facts (SPEC 5)."""

from __future__ import annotations

import hashlib
import textwrap
from pathlib import Path

import attrs
import pytest

from phone.errors import UnknownModelError, UsageError
from phone.firmware.models import MESSAGE_EVENTS, Catalogue, ModelFileError
from phone.catalogue import ENV_VAR, default_catalogue, get_model, load_catalogue
from phone.firmware.settings import TrustSettings

LISTED = [
    "CP-7940", "CP-7960", "CP-7906", "CP-7911", "CP-7941", "CP-7942", "CP-7945", "CP-7961",
    "CP-7962", "CP-7965", "CP-7970", "CP-7971", "CP-7975", "CP-6901", "CP-6911", "CP-6921",
    "CP-6941", "CP-6945", "CP-6961", "CP-7811", "CP-7821", "CP-7832", "CP-7841", "CP-7861",
    "CP-8811", "CP-8841", "CP-8845", "CP-8851", "CP-8861", "CP-8865", "CP-8941", "CP-8945",
    "CP-8961", "CP-9951", "CP-9971", "CP-DX70", "CP-DX80", "CP-DX650", "Jabber-CSF",
]
#: The models added from the device package matrix and the CUCM security guide (docs/models.md,
#: "Models added"); kept apart so the series lists below stay the families they test.
ADDED = [
    "CP-7931", "CP-8831", "CP-8832", "CP-8851NR", "CP-8865NR", "CP-7925G", "CP-7925G-EX", "CP-7926G",
    "CP-8821", "CP-8821-EX", "CP-7937", "CP-3905", "CP-9841", "CP-9851", "CP-9861", "CP-9871", "CP-8875",
]
SERIES_7900 = [name for name in LISTED if name.startswith("CP-79")]
SERIES_7800 = [name for name in LISTED if name.startswith("CP-78")]
SERIES_8800 = [name for name in LISTED if name.startswith("CP-88")]

# A complete model table, for user files in tests.
MINIMAL = """
description = "lab phone"
supports_ctl = true
supports_itl = true
supports_tvs = true
digests = ["sha1"]
rsa_key_sizes = [2048]
tls_versions = ["1.2"]
checksum = "sha1"
log_dialect = "enterprise"
"""


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue(environ={})


def minimal(old: str = "", new: str = "") -> str:
    """MINIMAL with one piece of text replaced."""
    return MINIMAL.replace(old, new) if old else MINIMAL


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


# --- loading and lookup ---------------------------------------------------

@pytest.mark.parametrize("name", LISTED + ADDED)
def test_every_listed_model_loads(catalogue: Catalogue, name: str) -> None:
    model = catalogue.get(name)
    assert model.name == name
    assert model.description
    assert "sha1" in model.digests
    assert model.sources, f"{name} cites no source"
    assert Path(model.origin).parent.name == "models"


def test_bundled_catalogue_is_the_listed_models(catalogue: Catalogue) -> None:
    assert sorted(catalogue.names()) == sorted(LISTED + ADDED)
    assert catalogue.names() == sorted(catalogue.names())


@pytest.mark.parametrize(("alias", "name"), [
    ("7965", "CP-7965"), ("7965G", "CP-7965"), ("cp-7965", "CP-7965"), ("8861", "CP-8861"),
    ("dx80", "CP-DX80"), ("7941G-GE", "CP-7941"), ("Jabber", "Jabber-CSF"), ("csf", "Jabber-CSF"),
    (" CP-8845 ", "CP-8845"),
])
def test_aliases_and_any_case_resolve_to_the_catalogue_name(catalogue: Catalogue, alias: str, name: str) -> None:
    assert catalogue.get(alias).name == name
    assert alias in catalogue


def test_unknown_model_error_is_one_line_listing_the_known_names_sorted(catalogue: Catalogue) -> None:
    with pytest.raises(UnknownModelError) as caught:
        catalogue.get("CP-1234")
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("unknown phone model 'CP-1234'; known: ")
    assert message.endswith("known: " + ", ".join(sorted(LISTED + ADDED)))


def test_unknown_model_error_suggests_a_close_name(catalogue: Catalogue) -> None:
    with pytest.raises(UnknownModelError, match=r"did you mean CP-7965\?"):
        catalogue.get("CP-7966")


def test_get_model_uses_the_default_catalogue(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert get_model("7975").firmware == "SCCP75.9-3-1SR4-1S"
    assert default_catalogue() is default_catalogue()


def test_models_are_frozen_values(catalogue: Catalogue) -> None:
    model = catalogue.get("CP-7965")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        model.supports_itl = False  # type: ignore[misc]
    with pytest.raises(TypeError):
        model.messages["update_failed"] = "x"  # type: ignore[index]
    assert hash(model) == hash(load_catalogue(environ={}).get("CP-7965"))
    assert attrs.evolve(model, supports_tvs=False) != model


# --- user model folders ---------------------------------------------------

def test_user_folder_adds_a_model(tmp_path: Path) -> None:
    write(tmp_path, "lab.toml", f"""
        family = "lab"
        [models.CP-LAB1]
        aliases = ["lab1"]
        {MINIMAL}
    """)
    catalogue = load_catalogue([tmp_path], environ={})
    model = catalogue.get("lab1")
    assert model.name == "CP-LAB1" and model.family == "lab"
    assert model.origin == str(tmp_path / "lab.toml")
    assert "CP-7965" in catalogue and len(catalogue) == len(LISTED + ADDED) + 1


def test_user_model_replaces_the_bundled_model_of_the_same_name(tmp_path: Path) -> None:
    write(tmp_path, "mine.toml", f"""
        [models.CP-7965]
        aliases = ["7965"]
        {minimal('["sha1"]', '["sha1", "sha512"]')}
    """)
    model = load_catalogue([tmp_path], environ={}).get("7965")
    assert model.digests == {"sha1", "sha512"}
    assert model.checksum == "sha1"  # nothing of the bundled CP-7965 is merged in
    assert model.firmware is None
    assert model.origin == str(tmp_path / "mine.toml")


def test_environment_variable_adds_folders(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    write(first, "a.toml", f"[models.CP-A]\n{MINIMAL}")
    write(second, "b.toml", f"[models.CP-B]\n{MINIMAL}")
    catalogue = load_catalogue(environ={ENV_VAR: f"{first}{__import__('os').pathsep}{second}"})
    assert {"CP-A", "CP-B"} <= set(catalogue.names())


def test_default_catalogue_follows_the_environment_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, "a.toml", f"[models.CP-ENV]\n{MINIMAL}")
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    assert get_model("CP-ENV").origin == str(tmp_path / "a.toml")


def test_extra_folders_override_the_environment_variable(tmp_path: Path) -> None:
    write(tmp_path / "env", "x.toml", f"[models.CP-X]\n{MINIMAL}")
    write(tmp_path / "extra", "x.toml", "[models.CP-X]\n" + minimal("lab phone", "from extra"))
    catalogue = load_catalogue([tmp_path / "extra"], environ={ENV_VAR: str(tmp_path / "env")})
    assert catalogue.get("CP-X").description == "from extra"


def test_missing_user_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="models folder .*nope.* does not exist"):
        load_catalogue([tmp_path / "nope"], environ={})
    with pytest.raises(UsageError, match=f"{ENV_VAR} folder"):
        load_catalogue(environ={ENV_VAR: str(tmp_path / "nope")})


def test_same_model_twice_in_one_folder_names_both_files(tmp_path: Path) -> None:
    write(tmp_path, "a.toml", f"[models.CP-X]\n{MINIMAL}")
    write(tmp_path, "b.toml", f"[models.CP-X]\n{MINIMAL}")
    with pytest.raises(ModelFileError, match=r"b\.toml: \[models\.CP-X\] is also defined in .*a\.toml"):
        load_catalogue([tmp_path], environ={})


def test_alias_taken_by_another_model_is_an_error(tmp_path: Path) -> None:
    write(tmp_path, "a.toml", f"[models.CP-X]\naliases = [\"7965\"]\n{MINIMAL}")
    with pytest.raises(ModelFileError, match=r"a\.toml: \[models\.CP-X\] alias '7965' is already taken by CP-7965"):
        load_catalogue([tmp_path], environ={})


# --- errors in model files name the file and the field ----------------------

def test_malformed_toml_names_the_file_and_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "broken.toml", "[models.CP-X\ndescription = 1\n")
    with pytest.raises(ModelFileError) as caught:
        load_catalogue([tmp_path], environ={})
    assert str(caught.value).startswith(f"{path}: not valid TOML: ")
    assert "line 1" in str(caught.value)


@pytest.mark.parametrize("nested", ["[" * 20_000 + "]" * 20_000, "{a = " * 20_000 + "}" * 20_000])
def test_toml_nested_20000_deep_is_a_model_file_error_not_a_recursion_error(tmp_path: Path, nested: str) -> None:
    path = tmp_path / "deep.toml"
    path.write_text("[models.CP-X]\n" + minimal('description = "lab phone"', f"description = {nested}"))
    with pytest.raises(ModelFileError) as caught:
        load_catalogue([tmp_path], environ={})
    assert str(caught.value).startswith(f"{path}: not valid TOML: ")
    assert "nested deeper than" in str(caught.value)


def test_brackets_inside_strings_and_comments_do_not_count_as_nesting(tmp_path: Path) -> None:
    brackets = "[" * 100
    text = (f"# {brackets}\n[models.CP-X] # {brackets}\n"
            + minimal('description = "lab phone"', f'description = """{brackets} \\""" {brackets}"""'))
    write(tmp_path, "quoted.toml", text)
    assert "CP-X" in load_catalogue([tmp_path], environ={})


def test_missing_field_names_the_file_the_model_and_the_field(tmp_path: Path) -> None:
    path = write(tmp_path, "x.toml", "[models.CP-X]\n" + minimal('checksum = "sha1"'))
    with pytest.raises(ModelFileError) as caught:
        load_catalogue([tmp_path], environ={})
    assert str(caught.value) == (f"{path}: [models.CP-X] missing field 'checksum' "
                                 "(set it here or in [defaults])")


@pytest.mark.parametrize(("line", "expected"), [
    ('supports_itl = "yes"', "supports_itl: expected true or false, got 'yes' (a string)"),
    ('digests = ["md5"]', "digests: expected one of 'sha1', 'sha256', 'sha512', got 'md5' (a string)"),
    ("digests = []", "digests: expected a non-empty array"),
    ('tls_versions = "1.2"', "tls_versions: expected an array"),
    ("rsa_key_sizes = [1000]", "rsa_key_sizes: expected one of 512, 1024, 2048, 3072, 4096, got 1000"),
    ('checksum = "sha256"', "checksum: expected one of 'md5', 'sha1', got 'sha256'"),
    ('log_dialect = "cucm-tvs"', "log_dialect: expected one of 'java79xx', 'enterprise'"),
    ("suports_ctl = true", "unknown field 'suports_ctl'"),
    ("messages = { update_faild = 'x' }", "messages: unknown status event 'update_faild'"),
])
def test_mistyped_field_names_the_file_the_model_and_the_field(tmp_path: Path, line: str, expected: str) -> None:
    key = line.split(" =")[0]
    body = "\n".join(row for row in MINIMAL.splitlines() if not row.startswith(f"{key} ="))
    path = write(tmp_path, "x.toml", f"[models.CP-X]\n{body}\n{line}\n")
    with pytest.raises(ModelFileError) as caught:
        load_catalogue([tmp_path], environ={})
    assert str(caught.value).startswith(f"{path}: [models.CP-X] {expected}")


def test_mistyped_family_default_names_the_defaults_table(tmp_path: Path) -> None:
    path = write(tmp_path, "x.toml", f"[defaults]\ntls_versions = ['1.4']\n[models.CP-X]\n{MINIMAL}")
    with pytest.raises(ModelFileError, match=rf"^{path}: \[defaults\] tls_versions: expected one of"):
        load_catalogue([tmp_path], environ={})


@pytest.mark.parametrize(("table", "line", "expected"), [
    ("defaults.settings", "max_sast_records = 0", "max_sast_records: expected a positive integer"),
    ("models.CP-X.settings", "first_ctl_with_itl = 'ask'", "first_ctl_with_itl: expected one of 'trust', 'verify'"),
    ("models.CP-X.settings", "tvs_cahce = false", "tvs_cahce: unknown setting"),
])
def test_bad_setting_names_the_file_and_the_settings_table(tmp_path: Path, table: str, line: str, expected: str) -> None:
    path = write(tmp_path, "x.toml", f"[models.CP-X]\n{MINIMAL}\n[{table}]\n{line}\n")
    with pytest.raises(ModelFileError) as caught:
        load_catalogue([tmp_path], environ={})
    assert str(caught.value).startswith(f"{path}: [{table}] {expected}")


def test_tvs_without_itl_is_rejected(tmp_path: Path) -> None:
    write(tmp_path, "x.toml", "[models.CP-X]\n" + minimal("supports_itl = true", "supports_itl = false"))
    with pytest.raises(ModelFileError, match="supports_tvs = true needs supports_itl = true"):
        load_catalogue([tmp_path], environ={})


def test_digests_must_include_sha1(tmp_path: Path) -> None:
    write(tmp_path, "x.toml", "[models.CP-X]\n" + minimal('["sha1"]', '["sha512"]'))
    with pytest.raises(ModelFileError, match="must include 'sha1'"):
        load_catalogue([tmp_path], environ={})


def test_unknown_top_level_key_and_empty_file_are_errors(tmp_path: Path) -> None:
    path = write(tmp_path / "a", "x.toml", "model = 1\n")
    with pytest.raises(ModelFileError, match=rf"^{path}: unknown top-level key 'model'"):
        load_catalogue([tmp_path / "a"], environ={})
    path = write(tmp_path / "b", "x.toml", "family = 'empty'\n")
    with pytest.raises(ModelFileError, match=rf"^{path}: expected at least one \[models.NAME\] table"):
        load_catalogue([tmp_path / "b"], environ={})


# --- family defaults and per-model overrides --------------------------------

FAMILY = f"""
family = "lab"
sources = ["family doc"]

[defaults]
{MINIMAL}
firmware = "lab.1-0"

[defaults.messages]
update_failed = "Family failed"
erasing = "Family erasing"

[defaults.settings]
max_sast_records = 2
first_ctl_with_itl = "verify"
max_itl_bytes = false

[models.CP-A]
firmware = "lab.2-0"
sources = ["model doc"]

[models.CP-A.messages]
update_failed = "A failed"
erasing = false

[models.CP-A.settings]
tvs_cache = false
max_sast_records = false

[models.CP-B]
"""


def test_per_model_settings_override_family_defaults(tmp_path: Path) -> None:
    write(tmp_path, "lab.toml", FAMILY)
    catalogue = load_catalogue([tmp_path], environ={})
    a, b = catalogue.get("CP-A").settings, catalogue.get("CP-B").settings
    assert b == attrs.evolve(TrustSettings(), max_sast_records=2, first_ctl_with_itl="verify",
                             max_itl_bytes=None)
    assert a == attrs.evolve(b, tvs_cache=False, max_sast_records=None)


def test_per_model_fields_and_messages_override_family_defaults(tmp_path: Path) -> None:
    write(tmp_path, "lab.toml", FAMILY)
    catalogue = load_catalogue([tmp_path], environ={})
    a, b = catalogue.get("CP-A"), catalogue.get("CP-B")
    assert (a.firmware, b.firmware) == ("lab.2-0", "lab.1-0")
    assert dict(a.messages) == {"update_failed": "A failed"}
    assert dict(b.messages) == {"update_failed": "Family failed", "erasing": "Family erasing"}
    assert a.message("erasing") is None
    assert (a.sources, b.sources) == (("family doc", "model doc"), ("family doc",))
    assert a.family == b.family == "lab"
    assert a.device_type == "CP-A"


# --- facts the SPEC states, pinned -----------------------------------------

@pytest.mark.parametrize("name", ["CP-7940", "CP-7960"])
def test_7940_and_7960_hold_a_ctl_but_no_itl_and_no_tvs(catalogue: Catalogue, name: str) -> None:
    model = catalogue.get(name)
    assert model.supports_ctl and not model.supports_itl and not model.supports_tvs
    assert not model.security_by_default


@pytest.mark.parametrize("name", ["CP-7942", "CP-7945", "CP-7962", "CP-7965", "CP-7975"])
def test_7945_7965_and_newer_7900_are_security_by_default(catalogue: Catalogue, name: str) -> None:
    model = catalogue.get(name)
    assert model.supports_ctl and model.supports_itl and model.supports_tvs


@pytest.mark.parametrize("name", SERIES_7900)
def test_7900_series_shows_md5_speaks_only_tls_1_0_and_logs_secd(catalogue: Catalogue, name: str) -> None:
    model = catalogue.get(name)
    assert model.checksum == "md5"
    assert model.tls_versions == ("1.0",)
    assert not model.speaks_tls("1.2")
    assert model.log_dialect == "java79xx"
    assert model.message("update_failed") == "Trust List Update Failed"


@pytest.mark.parametrize("name", SERIES_8800 + SERIES_7800)
def test_7800_and_8800_show_sha1_speak_tls_1_2_and_log_enterprise(catalogue: Catalogue, name: str) -> None:
    model = catalogue.get(name)
    assert model.checksum == "sha1"
    assert model.speaks_tls("1.2")
    assert model.log_dialect == "enterprise"
    assert model.supports_itl and model.supports_tvs
    assert not model.separate_erase


@pytest.mark.parametrize("name", SERIES_8800)
def test_8800_verifies_sha2_and_rsa_up_to_4096(catalogue: Catalogue, name: str) -> None:
    model = catalogue.get(name)
    assert model.digests == {"sha1", "sha256", "sha512"}
    assert model.accepts_key_size(4096) and model.accepts_key_size(512)


@pytest.mark.parametrize("name", ["CP-6901", "CP-6911"])
def test_6901_and_6911_hold_a_ctl_but_no_itl(catalogue: Catalogue, name: str) -> None:
    model = catalogue.get(name)
    assert model.supports_ctl
    assert not model.supports_itl and not model.supports_tvs and model.checksum is None


@pytest.mark.parametrize("name", ["CP-8941", "CP-8945", "CP-8961", "CP-9951", "CP-9971"])
def test_8900_and_9900_stop_below_tls_1_2(catalogue: Catalogue, name: str) -> None:
    model = catalogue.get(name)
    assert model.tls_versions == ("1.0", "1.1")
    assert model.supports_itl and model.checksum == "sha1"


def test_jabber_is_a_csf_device_without_security_by_default(catalogue: Catalogue) -> None:
    jabber = catalogue.get("Jabber-CSF")
    assert not jabber.supports_itl and not jabber.supports_tvs and jabber.supports_ctl
    assert jabber.device_type == "CSF" and jabber.checksum is None
    assert jabber.device_name("jsmith") == "CSFJSMITH"


@pytest.mark.parametrize("name", ["CP-DX70", "CP-DX80", "CP-DX650"])
def test_dx_reports_verification_failure_in_its_update_failed_text(catalogue: Catalogue, name: str) -> None:
    model = catalogue.get(name)
    assert model.message("update_failed") == "Trust List update failed, verification failure"
    assert model.log_dialect == "enterprise"


def test_seed_phone_is_the_7975_on_its_seed_firmware(catalogue: Catalogue) -> None:
    model = catalogue.get("CP-7975")
    assert model.firmware == "SCCP75.9-3-1SR4-1S"
    assert model.accepts_key_size(1024) and model.accepts_key_size(2048)


def test_tvs_device_name_matches_the_published_8861_request(catalogue: Catalogue) -> None:
    model = catalogue.get("8861")
    assert model.tvs_device_name("b0:00:b4:ba:0a:ee") == "CP-8861-SEPB000B4BA0AEE"
    assert model.tvs_device_name("SEPB000B4BA0AEE") == "CP-8861-SEPB000B4BA0AEE"
    with pytest.raises(UsageError, match="not a MAC address"):
        model.device_name("B000B4BA0AE")


def test_status_texts_fill_the_file_name(catalogue: Catalogue) -> None:
    model = catalogue.get("CP-7965")
    assert model.message("file_not_found", file="CTLFile.tlv") == "File Not Found <CTLFile.tlv>"
    assert model.message("key_size_not_fips") is None
    assert catalogue.get("CP-8861").message("key_size_not_fips") == (
        "Phone failed to register. Cert key size is not FIPS compliant.")
    with pytest.raises(KeyError):
        model.message("no_such_event")


def test_every_bundled_message_key_is_a_known_event(catalogue: Catalogue) -> None:
    for model in catalogue:
        assert set(model.messages) <= set(MESSAGE_EVENTS)


def test_trust_list_checksum_follows_the_model(catalogue: Catalogue) -> None:
    data = b"CTLFile.tlv bytes"
    assert catalogue.get("CP-7975").trust_list_checksum(data) == hashlib.md5(data).hexdigest()
    assert catalogue.get("CP-8861").trust_list_checksum(data) == hashlib.sha1(data).hexdigest()
    assert catalogue.get("Jabber-CSF").trust_list_checksum(data) is None


def test_bundled_models_use_the_documented_default_settings(catalogue: Catalogue) -> None:
    # The one family setting the model files change: who provisions over HTTP first (docs/http.md).
    assert {attrs.evolve(model.settings, http_first=False) for model in catalogue} == {TrustSettings()}


@pytest.mark.parametrize("name, http_first", [
    ("CP-7821", True), ("CP-8861", True), ("CP-8945", True), ("CP-9971", True), ("CP-DX80", True),
    ("CP-7965", False), ("CP-6921", False),
])
def test_http_first_is_on_for_the_enterprise_families_and_off_for_7900_and_6900(
        catalogue: Catalogue, name: str, http_first: bool) -> None:
    assert catalogue.get(name).settings.http_first is http_first


def test_trust_settings_defaults_are_the_documented_ones() -> None:
    assert TrustSettings().to_json() == {
        "first_list_requires_own_signature": True,
        "first_ctl_with_itl": "trust",
        "tvs_answer_requires_sast_role": True,
        "tvs_fallback_to_verify": True,
        "max_sast_records": None,
        "max_itl_bytes": 65535,
        "rollback_itl_accepts_unsigned_config": True,
        "tvs_cache": True,
        "flush_tvs_cache_after_update": True,
        "sha256_digest_code": 2,
        "signed_config_name_must_match": True,
        "tvs_timeout_seconds": 10.0,
        "tftp_timeout_seconds": 5.0,
        "tftp_retries": 3,
        "capf_phone_version": 0,
        "capf_request_in_progress": True,
        "capf_ec_needs_itl_1_1": True,
        "capf_timeout_seconds": 30.0,
        "http_first": False,
        "http_connect_timeout_seconds": 5.0,
        "https_config_with_itl_1_1": True,
        "signalling_protocol": "auto",
        "tls_trust_list_attempts": 4,
        "registration_timeout_seconds": 10.0,
        "fips_mode": False,
    }
