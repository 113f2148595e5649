"""The pluggy plugin system: a real third-party distribution (dist-info on sys.path) adds an encoder and a command."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from photo_guard.errors import ShareVetoed
from photo_guard.hookspecs import hookimpl

PLUGIN = textwrap.dedent('''
    import click
    from photo_guard.hookspecs import hookimpl

    @hookimpl
    def register_encoders(register):
        from photo_guard.encoders.base import Encoder
        register("thirdparty-enc", Encoder)

    @hookimpl
    def register_commands(cli):
        @cli.command()
        def hello():
            """Say hello from a plugin."""
            click.echo("hello from thirdparty")
''')


@pytest.fixture
def plugin_path(tmp_path):
    (tmp_path / "pg_thirdparty.py").write_text(PLUGIN)
    info = tmp_path / "pg_thirdparty-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: pg-thirdparty\nVersion: 1.2.3\n")
    (info / "entry_points.txt").write_text("[photo_guard]\nthirdparty = pg_thirdparty\n")
    return tmp_path


def _run(args, plugin_path, **env):
    full = {**os.environ, "PYTHONPATH": f"{plugin_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", **env}
    if "PHOTO_GUARD_PLUGINS" not in env:
        full.pop("PHOTO_GUARD_PLUGINS", None)
    return subprocess.run(
        [sys.executable, "-m", "photo_guard.cli", *args], capture_output=True, text=True, env=full, timeout=300
    )


def test_third_party_plugin_adds_a_command_and_an_encoder(plugin_path):
    done = _run(["plugins"], plugin_path)
    assert done.returncode == 0, done.stderr
    assert "default: photo_guard.default_plugins photo_guard" in done.stdout
    assert "thirdparty: pg_thirdparty pg-thirdparty 1.2.3" in done.stdout
    assert "hello from thirdparty" in _run(["hello"], plugin_path).stdout
    enc = subprocess.run(
        [sys.executable, "-c", "from photo_guard.encoders import _collect; print(sorted(_collect()))"],
        capture_output=True,
        text=True,
        env={**{k: v for k, v in os.environ.items() if k != "PHOTO_GUARD_PLUGINS"}, "PYTHONPATH": str(plugin_path)},
        timeout=300,
    )
    assert "thirdparty-enc" in enc.stdout and "sface" in enc.stdout


def test_env_var_restricts_which_plugins_load(plugin_path):
    done = _run(["plugins"], plugin_path, PHOTO_GUARD_PLUGINS="default")
    assert "thirdparty" not in done.stdout and "default" in done.stdout
    assert _run(["hello"], plugin_path, PHOTO_GUARD_PLUGINS="default").returncode != 0


def test_builtins_register_through_the_hooks():
    from photo_guard.plugins import load_plugins

    pm = load_plugins()
    names, transforms, objectives = [], [], []
    pm.hook.register_encoders(register=lambda n, f: names.append(n))
    pm.hook.register_transforms(register=lambda n, t: transforms.append(n))
    pm.hook.register_objectives(register=lambda n, o: objectives.append(n))
    assert {"sface", "efficientnet_lite0", "clip-vit-l-336", "siglip", "qwen2-vl"} <= set(names)
    assert "RandomJPEG" in transforms and objectives == ["dp2vl"]


def test_host_hooks_protect_a_shared_photo_and_queue_imports(tiny_encoder, tmp_path):
    from photo_guard.plugins import load_plugins
    from tests.photo_guard.conftest import make_photo

    pm = load_plugins()
    src = make_photo(tmp_path / "a.jpg")
    ctx = {"out_dir": str(tmp_path / "shared"), "config": {"encoders": ("tiny",), "steps": 2, "device": "cpu"}}
    out = pm.hook.photo_before_share(photo=str(src), context=ctx)
    assert out == tmp_path / "shared" / "a.jpg" and out.exists()
    futures = pm.hook.photo_on_import(photos=[str(src)], context={**ctx, "out_dir": str(tmp_path / "imported")})
    assert futures[0].result(timeout=120)[0].exists()
    export = tmp_path / "export"
    export.mkdir()
    copy = export / "a.jpg"
    copy.write_bytes(src.read_bytes())
    pm.hook.photo_on_export(photos=[str(copy)], destination=str(export), context=ctx)
    assert copy.read_bytes() != src.read_bytes() and not (export / "a.jpg.orig").exists()


class _Thirdparty:
    """A third-party plugin: replaces the protection objective and vetoes sharing anything named 'private'."""

    def __init__(self):
        self.calls = 0

    @hookimpl
    def register_objectives(self, register):
        from photo_guard.objective import dp2vl_loss

        def counted(*args, **kwargs):
            self.calls += 1
            return dp2vl_loss(*args, **kwargs)

        register("dp2vl", counted)

    @hookimpl
    def photo_before_share(self, photo, context):
        if "private" in Path(photo).name:
            raise ShareVetoed(f"{photo}: the owner keeps this one private")


@pytest.fixture
def thirdparty(monkeypatch):
    from photo_guard import registry
    from photo_guard.plugins import load_plugins

    plugin = _Thirdparty()
    pm = load_plugins()
    pm.register(plugin, name="thirdparty-test")
    monkeypatch.setattr(registry, "_collected", False)
    monkeypatch.setattr(registry, "_OBJECTIVES", {})
    monkeypatch.setattr(registry, "_TRANSFORMS", {})
    yield plugin
    pm.unregister(plugin)


def test_a_plugin_changes_the_objective_and_vetoes_a_share(tiny_encoder, thirdparty, tmp_path, caplog):
    from photo_guard.hosts.share import share_photo
    from tests.photo_guard.conftest import make_photo

    ctx = {"out_dir": str(tmp_path / "shared"), "config": {"encoders": ("tiny",), "steps": 2, "device": "cpu"}}
    out = share_photo(make_photo(tmp_path / "a.jpg"), ctx)
    assert out == tmp_path / "shared" / "a.jpg" and out.exists()
    assert thirdparty.calls == 2  # the plugin's objective ran, once per PGD step
    assert share_photo(make_photo(tmp_path / "private.jpg"), ctx) is None
    assert not (tmp_path / "shared" / "private.jpg").exists() and "share vetoed" in caplog.text
