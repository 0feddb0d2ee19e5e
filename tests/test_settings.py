import ipaddress
from pathlib import Path

import pytest

from workers.core.settings import Settings, env_name

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def test_every_setting_reads_its_variable_with_its_type():
    settings = Settings.from_env(
        {
            "MIRSAD_MAX_ATTEMPTS": "7",
            "MIRSAD_RECONCILE_AFTER": "2.5",
            "MIRSAD_REDIS_URL": "redis://example:6379/3",
            "MIRSAD_CONFIG_DIR": "/tmp/cfg",
        }
    )
    assert settings.max_attempts == 7 and settings.reconcile_after == 2.5
    assert settings.redis_url == "redis://example:6379/3" and settings.config_dir == Path("/tmp/cfg")


def test_empty_variables_keep_the_default():
    assert Settings.from_env({"MIRSAD_MAX_ATTEMPTS": ""}).max_attempts == Settings().max_attempts


def test_a_malformed_value_names_the_variable():
    with pytest.raises(ValueError, match="MIRSAD_MAX_ATTEMPTS='five' is not a valid int"):
        Settings.from_env({"MIRSAD_MAX_ATTEMPTS": "five"})


@pytest.mark.parametrize(
    "value, expected",
    [
        ("0", ()),
        ("", ()),
        ("no", ()),
        ("1", True),
        ("true", True),
        ("127.0.0.0/8, ::1", (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))),
    ],
)
def test_private_hosts_setting(value, expected):
    assert Settings(allow_private_hosts=value).private_networks_allowed == expected


def test_deployments_refuse_private_hosts_by_default():
    assert Settings().private_networks_allowed == ()


def test_the_readme_documents_every_setting():
    """The README's table is `mirsad settings --markdown` pasted in; re-paste it when a setting changes."""
    for name, _value, default, doc in Settings().describe():
        assert f"| `{name}` | `{default}` | {doc} |" in README, f"{name}: re-paste `mirsad settings --markdown`"
    assert env_name("max_attempts") == "MIRSAD_MAX_ATTEMPTS"
