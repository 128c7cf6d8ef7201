"""The config file (TOML), the settings table, defaults in one place, and ``--configtest``."""

from __future__ import annotations

import dataclasses
import subprocess

import pytest
from helpers import checkout_env, twistd_command
from twisted.python import usage

from twistedchat.server import tap
from twistedchat.server.config import (
    SETTINGS,
    ConfigError,
    ServerConfig,
    load_config,
    reload_into,
)
from twistedchat.server.opers import hash_password
from twistedchat.server.tap import Options

#: A value for every setting that differs from its default, as it would be written in the file.
FILE_VALUES = {
    "port": ["tcp:6667", 6697],
    "name": "irc.example.org",
    "network": "ExampleNet",
    "motd": "motd.txt",
    "password": "s3cret",
    "oper-file": "opers.txt",
    "max-clients": 500,
    "max-per-ip": 3,
    "max-per-cidr": 40,
    "cidr-v4": 16,
    "cidr-v6": 48,
    "throttle-count": 5,
    "throttle-window": 30,
    "throttle-duration": 120,
    "ping-interval": 90,
    "ping-timeout": 30.5,
    "registration-timeout": 20,
    "flood-burst": 7,
    "flood-rate": 2.5,
    "no-flood-control": True,
    "no-direct-write": True,
    "flood-queue": 50,
    "sendq": 65536,
    "bans-file": "bans.toml",
    "no-cloak": True,
    "cloak-secret": "a cloak key",
    "metrics": "tcp:9101:interface=127.0.0.1",
    "log-format": "json",
    "tls-engine": "twisted",
    "tls-write-interval": 20,
    "web": ["tcp:8080"],
    "websocket": [8081],
    "websocket-origin": ["https://web.example.org"],
    "trusted-proxy": ["127.0.0.1", "10.0.0.0/8"],
    "db": "memory:",
    "history-days": 30,
    "history-lines-per-target": 5000,
    "nick-enforce-timeout": 60,
    "cluster": "redis://127.0.0.1:6379/2",
    "workers": 3,
    "cluster-gather": 0.002,
}


def toml_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return repr(value)


def write_config(path, values, extra=""):
    path.write_text("".join(f"{key} = {toml_value(value)}\n" for key, value in values.items())
                    + extra, encoding="utf-8")
    return path


@pytest.fixture
def config_dir(tmp_path):
    (tmp_path / "motd.txt").write_text("Welcome.\n", encoding="utf-8")
    (tmp_path / "opers.txt").write_text("# comment\nlegacy:plain\n", encoding="utf-8")
    return tmp_path


def test_every_setting_has_a_test_value():
    assert set(FILE_VALUES) == {setting.key for setting in SETTINGS}


def test_every_command_line_option_is_a_setting():
    """The table is the only source of chat options (besides --config/--configtest/--oper)."""
    options = Options()
    long_names = {name for name, *_ in options.optParameters + options.optFlags}
    assert long_names - {"config", "configtest"} == \
        {s.key for s in SETTINGS if not s.repeated}
    # the repeated ones are methods (opt_port, opt_web, ...), which append each value
    assert all(hasattr(options, "opt_" + s.key.replace("-", "_")) for s in SETTINGS if s.repeated)


def test_defaults_are_written_once_in_server_config():
    """tap.py and config.py both had the defaults (issue 9); the options now take them from
    ServerConfig, so an unconfigured daemon runs exactly ServerConfig()."""
    options = Options()
    options.parseOptions([])
    assert options.config() == ServerConfig()
    source = open(tap.__file__, encoding="utf-8").read()
    for literal in ("twistedchat.local", "1024 * 1024", "120", "1234"):
        assert literal not in source, literal


def test_help_shows_the_server_config_default():
    options = Options()
    helps = {name: text for name, _short, _default, text, *_ in options.optParameters}
    assert helps["max-per-ip"].endswith(f"[default: {ServerConfig().max_per_ip}]")
    assert helps["sendq"].endswith(f"[default: {ServerConfig().sendq}]")


def test_config_file_sets_every_option(config_dir):
    path = write_config(config_dir / "chat.toml", FILE_VALUES)
    config = load_config(str(path))
    expected = {
        "ports": ["tcp:6667", "tcp:6697"],
        "motd_file": str(config_dir / "motd.txt"),
        "oper_file": str(config_dir / "opers.txt"),
        "bans_file": str(config_dir / "bans.toml"),
        "websocket": ["tcp:8081"],
        "trusted_proxies": ["127.0.0.1/32", "10.0.0.0/8"],
    }
    for setting in SETTINGS:
        value = getattr(config, setting.field_name)
        want = expected.get(setting.field_name, setting.field_value(FILE_VALUES[setting.key]))
        assert value == want, setting.key
        assert value != setting.default, setting.key
    assert config.motd == ["Welcome."]
    assert config.opers == {"legacy": "plain"}
    assert not config.flood_control
    assert config.config_file == str(path)


def test_command_line_overrides_the_file(config_dir):
    path = write_config(config_dir / "chat.toml", {"name": "from.file", "max-per-ip": 3,
                                                   "port": ["tcp:6667"], "password": "pw"})
    options = Options()
    options.parseOptions(["--config", str(path), "--max-per-ip", "5", "--port", "7000"])
    config = options.config()
    assert config.name == "from.file"
    assert config.max_per_ip == 5
    assert config.ports == ["tcp:7000"]
    assert config.password == "pw"  # a secret that never appeared on the command line


def test_opers_from_the_file_are_hashed_with_host_masks(tmp_path):
    digest = hash_password("hunter2")
    path = write_config(tmp_path / "chat.toml", {}, extra=(
        f'[[oper]]\nname = "alice"\npassword = "{digest}"\nhosts = ["*@127.0.0.1", "ali@*.ex"]\n'))
    account = load_config(str(path)).oper_accounts["alice"]
    assert account.password_hash == digest
    assert account.allows("anyone@127.0.0.1") and account.allows("ali@host.ex")
    assert not account.allows("bob@192.0.2.1")


@pytest.mark.parametrize(("text", "message"), [
    ("max-per-ip = -1\n", "max-per-ip: must be at least 0"),
    ("max-per-ip = 1.5\n", "max-per-ip: 1.5 is not a whole number"),
    ("flood-rate = \"fast\"\n", "flood-rate: 'fast' is not a number"),
    ("no-flood-control = 1\n", "no-flood-control: expected true or false"),
    ("port = 70000\n", "port: 70000 is not a TCP port number"),
    ("max_per_ip = 3\n", "unknown setting 'max_per_ip'"),
    ("log-format = \"xml\"\n", "log-format: expected one of text, json"),
    ("tls-engine = \"gnutls\"\n", "tls-engine: expected one of stdlib, twisted"),
    ("tls-write-interval = -5\n", "tls-write-interval: must be at least 0"),
    ("name = \"two words\"\n", "name: a server name cannot be empty or contain spaces"),
    ("motd = \"missing.txt\"\n", "motd: cannot read"),
    ("motd = \"huge.txt\"\n", "huge.txt is over 64 KiB"),
    ("motd = \"latin1.txt\"\n", "latin1.txt is not UTF-8"),
    ("max-per-ip = \n", "not valid TOML"),
    ('[[oper]]\nname = "a"\npassword = "plain"\n', "password must be an argon2id hash"),
    ('[[oper]]\nname = "a"\npassword = "$argon2id$x"\nhosts = "*@*"\n', "hosts must be a list"),
])
def test_bad_file_is_refused_with_its_reason(tmp_path, text, message):
    (tmp_path / "huge.txt").write_text("welcome\n" * 9000, encoding="utf-8")
    (tmp_path / "latin1.txt").write_bytes("Café\n".encode("latin-1"))
    path = tmp_path / "chat.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=None) as caught:
        load_config(str(path))
    assert message in str(caught.value), str(caught.value)


def test_bad_command_line_value_still_names_the_option():
    with pytest.raises(usage.UsageError, match="--max-per-ip"):
        Options().parseOptions(["--max-per-ip", "many"])


def test_reload_into_changes_live_settings_in_place():
    running = ServerConfig(max_per_ip=10, motd=["old"], name="a.example")
    fresh = dataclasses.replace(running, max_per_ip=2, motd=["new"], name="b.example",
                                opers={"x": "y"})
    changed, kept = reload_into(running, fresh)
    assert running.max_per_ip == 2 and running.motd == ["new"] and running.opers == {"x": "y"}
    assert running.name == "a.example"  # the server's name only changes with a restart
    assert "max-per-ip" in changed and kept == ["name"]


def run_configtest(tmp_path, *args):
    return subprocess.run([*twistd_command(), "-n", "--pidfile=", "chat", "--configtest", *args],
                          cwd=tmp_path, env=checkout_env(), capture_output=True, text=True,
                          timeout=60)


def test_configtest_accepts_a_good_file(config_dir):
    path = write_config(config_dir / "chat.toml", {k: v for k, v in FILE_VALUES.items()
                                                   if k not in ("log-format",)})
    result = run_configtest(config_dir, "--config", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{path}: configuration OK" in result.stdout


def test_configtest_refuses_a_bad_file_clearly(tmp_path):
    path = write_config(tmp_path / "chat.toml", {"sendq": 10})
    result = run_configtest(tmp_path, "--config", str(path))
    output = result.stdout + result.stderr
    assert result.returncode == 1
    assert f"{path}: configuration refused: {path}: sendq: must be at least 1024" in output, output
    assert "Traceback" not in output


def test_bad_config_file_at_start_is_a_clear_error(tmp_path):
    path = write_config(tmp_path / "chat.toml", {"flood-burst": 0})
    result = subprocess.run([*twistd_command(), "-n", "--pidfile=", "chat", "--config", str(path)],
                            cwd=tmp_path, env=checkout_env(), capture_output=True, text=True,
                            timeout=60)
    output = result.stdout + result.stderr
    assert result.returncode == 1
    assert "flood-burst: must be at least 1" in output and "Traceback" not in output, output


def test_a_config_built_in_code_reloads_to_itself_with_fresh_files(tmp_path):
    from twistedchat.server.service import ChatService

    motd = tmp_path / "motd.txt"
    motd.write_text("one\n", encoding="utf-8")
    texts = ChatService(ServerConfig(motd=["typed in"], max_per_ip=3, ports=["tcp:0"]))
    assert texts.reload() == ([], [])
    assert texts.config.motd == ["typed in"] and texts.config.max_per_ip == 3
    from_file = ChatService(load_config(None, {"motd_file": str(motd), "ports": ["tcp:0"]}))
    motd.write_text("two\n", encoding="utf-8")
    assert from_file.reload() == (["motd text"], [])
    assert from_file.config.motd == ["two"]


def test_readme_and_operations_guide_list_every_setting():
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    readme = (root / "README.md").read_text(encoding="utf-8")
    guide = (root / "docs" / "operations.md").read_text(encoding="utf-8")
    for setting in SETTINGS:
        assert f"`--{setting.key}" in readme, setting.key
        assert f"| `{setting.key}` |" in guide, setting.key
    for option in ("--config", "--configtest"):
        assert f"`{option}" in readme and f"`{option}" in guide


def test_configtest_warns_about_a_world_readable_file_with_secrets(tmp_path):
    path = write_config(tmp_path / "chat.toml", {"password": "s3cret"})
    path.chmod(0o644)
    warned = run_configtest(tmp_path, "--config", str(path))
    assert warned.returncode == 0
    assert f"warning: {path} holds secrets and every user can read it" in warned.stderr
    path.chmod(0o640)
    quiet = run_configtest(tmp_path, "--config", str(path))
    assert quiet.returncode == 0 and "warning" not in quiet.stderr, quiet.stderr


def test_command_line_paths_are_made_absolute(tmp_path, monkeypatch):
    """A reload after twistd's --rundir chdir must read the same MOTD file."""
    (tmp_path / "motd.txt").write_text("hi\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    options = Options()
    options.parseOptions(["--motd", "motd.txt"])
    assert options.config().motd_file == str(tmp_path / "motd.txt")
    assert options.overrides["motd_file"] == str(tmp_path / "motd.txt")
