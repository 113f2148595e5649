"""photo_guard's photobooth-app plugin against photobooth-app's own hookspecs.

photobooth-app's spec module imports its whole server stack, so the specs are read from the installed file's source
(``ast``) and rebuilt as pluggy specs: a renamed hook or changed argument list in the host fails this test.
"""

import ast
import importlib.metadata

import pluggy
import pytest

from tests.photo_guard.conftest import make_photo


def _host_specs():
    try:
        dist = importlib.metadata.distribution("photobooth-app")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("photobooth-app is not installed (the README's test command installs it with --no-deps)")
    tree = ast.parse(dist.locate_file("photobooth/plugins/__init__.py").read_text())
    marker = pluggy.HookspecMarker("photobooth-app")
    specs = {}
    for cls in (n for n in tree.body if isinstance(n, ast.ClassDef) and n.name.endswith("Spec")):
        namespace = {}
        for fn in (n for n in cls.body if isinstance(n, ast.FunctionDef)):
            args = [a.arg for a in fn.args.args]
            exec(f"def {fn.name}({', '.join(args)}): pass", namespace)
            namespace[fn.name] = marker(namespace[fn.name])
        specs[cls.name] = type(cls.name, (), {k: v for k, v in namespace.items() if not k.startswith("__")})
    assert "PluginMediacollectionSpec" in specs
    return specs


def test_plugin_matches_the_host_specs_and_protects_added_files(tiny_encoder, tmp_path, monkeypatch):
    from photo_guard.hosts.photobooth_guard import PhotoboothGuard

    pm = pluggy.PluginManager("photobooth-app")
    for spec in _host_specs().values():
        pm.add_hookspecs(spec)
    plugin = PhotoboothGuard(steps=2)
    pm.register(plugin)
    pm.check_pending()
    entry = [ep for ep in importlib.metadata.entry_points(group="photobooth11") if ep.name == "photobooth_guard"]
    assert entry and entry[0].value == "photo_guard.hosts.photobooth_guard"
    # photobooth-app instantiates the class named after the module
    assert entry[0].value.split(".")[-1].title().replace("_", "") == "PhotoboothGuard"

    from photo_guard import protect

    original = protect.ProtectConfig.__init__
    monkeypatch.setattr(
        protect.ProtectConfig,
        "__init__",
        lambda self, *a, **k: original(self, *a, **{**k, "encoders": ("tiny",), "device": "cpu"}),
    )
    shot = make_photo(tmp_path / "shot.jpg", size=(64, 64))
    pm.hook.collection_files_added(files=[shot], priority_modifier=0)
    assert (tmp_path / "protected" / "shot.jpg").exists()
    assert shot.read_bytes() == make_photo(tmp_path / "again.jpg", size=(64, 64)).read_bytes()  # original untouched
