"""photo_guard's pibooth plugin against pibooth's real hookspec module (pibooth installed without its heavy deps)."""

import importlib.metadata
import importlib.util
from types import SimpleNamespace

import pluggy
import pytest

from tests.photo_guard.conftest import make_photo


@pytest.fixture
def pibooth_hookspecs():
    try:
        dist = importlib.metadata.distribution("pibooth")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("pibooth is not installed (the README's test command installs it with --no-deps)")
    path = dist.locate_file("pibooth/plugins/hookspecs.py")
    # Load the spec file alone: pibooth's package __init__ pulls in pygame and camera drivers.
    spec = importlib.util.spec_from_file_location("pibooth_hookspecs", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _Cfg:
    def __init__(self):
        self.options = {}

    def add_option(self, section, option, default, description, menu_name=None, menu_choices=None):
        self.options[(section, option)] = default

    def get(self, section, option):
        return self.options[(section, option)]

    def getint(self, section, option):
        return int(self.options[(section, option)])


def test_plugin_matches_pibooth_hookspecs_and_protects_the_picture(
    pibooth_hookspecs, tiny_encoder, tmp_path, monkeypatch
):
    from photo_guard.hosts import pibooth_plugin

    pm = pluggy.PluginManager("pibooth")
    pm.add_hookspecs(pibooth_hookspecs)
    pm.register(pibooth_plugin)
    pm.check_pending()  # a hook name or argument that pibooth does not define fails here
    for impl in pm.get_hookcallers(pibooth_plugin):
        spec_args = set(impl.spec.argnames)
        assert all(set(i.argnames) <= spec_args for i in impl.get_hookimpls() if i.plugin is pibooth_plugin)
    entry = [ep for ep in importlib.metadata.entry_points(group="pibooth") if ep.name == "photo_guard"]
    assert entry and entry[0].value == "photo_guard.hosts.pibooth_plugin"

    cfg = _Cfg()
    pm.hook.pibooth_configure(cfg=cfg)
    cfg.options[("PHOTO_GUARD", "steps")] = 2
    from photo_guard import protect

    monkeypatch.setattr(protect.ProtectConfig, "__init__", _with_tiny(protect.ProtectConfig.__init__))
    picture = make_photo(tmp_path / "2026-11-29-booth.jpg", size=(64, 64))
    app = SimpleNamespace(previous_picture_file=str(picture))
    pm.hook.state_processing_exit(cfg=cfg, app=app, win=None)
    assert app.previous_picture_file == str(tmp_path / "protected" / picture.name)
    assert (tmp_path / "protected" / picture.name).read_bytes() != picture.read_bytes()


def _with_tiny(init):
    def patched(self, *args, **kwargs):
        kwargs["encoders"] = ("tiny",)
        kwargs.setdefault("device", "cpu")
        init(self, *args, **kwargs)

    return patched
