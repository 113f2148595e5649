"""The drop-in hooks for photo tools that call a script."""

import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from photo_guard.photo_io import read_photo
from tests.photo_guard.conftest import make_photo

HOOKS = Path(__file__).resolve().parents[2] / "hooks"


def _env():
    bindir = os.path.dirname(sys.executable)  # where the photo-guard console script lives
    return {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}", "PHOTO_GUARD_ARGS": "--steps 1"}


@pytest.mark.slow
def test_digikam_script_writes_the_protected_output(tmp_path):
    src = make_photo(tmp_path / "in.jpg", size=(64, 64))
    out = tmp_path / "queue" / "out.jpg"
    out.parent.mkdir()
    done = subprocess.run(
        ["bash", str(HOOKS / "digikam" / "photo_guard_bqm.sh")],
        capture_output=True,
        text=True,
        env={**_env(), "INPUT": str(src), "OUTPUT": str(out)},
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert out.exists() and read_photo(out).pixels.shape == read_photo(src).pixels.shape
    assert out.read_bytes() != src.read_bytes()


@pytest.mark.slow
def test_osxphotos_post_function_protects_exported_copies(tmp_path, monkeypatch):
    import importlib.util

    spec = importlib.util.spec_from_file_location("pg_post", HOOKS / "osxphotos" / "photo_guard_post.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    exported = make_photo(tmp_path / "IMG_1.jpg", size=(64, 64))
    before = exported.read_bytes()
    monkeypatch.setenv("PHOTO_GUARD_STEPS", "1")
    said = []
    module.protect(SimpleNamespace(), SimpleNamespace(exported=[str(exported)]), verbose=said.append)
    assert exported.read_bytes() != before and not (tmp_path / "IMG_1.jpg.orig").exists()
    assert said and "protected" in said[0]


def test_darktable_lua_parses():
    luac = shutil.which("luac") or shutil.which("luac5.4")
    if luac is None:
        pytest.skip("Debian's lua5.4 is not installed (.ci/run installs it)")
    done = subprocess.run([luac, "-p", str(HOOKS / "darktable" / "photo_guard.lua")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


# darktable itself is not installable here: a stand-in with the API the hook uses, run by the real Lua.
_DARKTABLE = """
local calls, printed, storage = 0, {}, {}
package.preload["darktable"] = function()
  return {
    register_storage = function(name, label, store, finalize) storage = {store = store, finalize = finalize} end,
    control = {execute = function(cmd) calls = calls + 1; local _, _, code = os.execute(cmd); return code end},
    print = function(s) table.insert(printed, s) end,
  }
end
package.preload["lib/dtutils"] = function() return {check_min_api_version = function() end} end
dofile(arg[1])
local images = {}
for i = 2, #arg do
  storage.store(nil, i, nil, arg[i], i - 1, #arg - 1, false, nil)
  images["image" .. i] = arg[i]
end
storage.finalize(nil, images, nil)
print("calls " .. calls .. "; printed " .. #printed)
"""


@pytest.mark.slow
def test_darktable_export_is_protected_in_one_call_at_its_end(tmp_path):
    lua = shutil.which("lua5.4") or shutil.which("lua")
    if lua is None:
        pytest.skip("Debian's lua5.4 is not installed (.ci/run installs it)")
    driver = tmp_path / "darktable.lua"
    driver.write_text(_DARKTABLE)
    photos = [make_photo(tmp_path / f"export's {i}.jpg", size=(64, 64), seed=i) for i in range(2)]
    before = [p.read_bytes() for p in photos]
    args = [lua, str(driver), str(HOOKS / "darktable" / "photo_guard.lua"), *map(str, photos)]
    done = subprocess.run(args, capture_output=True, text=True, env=_env(), timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("calls 1; printed 0"), done.stdout[-2000:]
    assert all(p.read_bytes() != b for p, b in zip(photos, before))
    assert not list(tmp_path.glob("*.orig"))


def test_every_hook_starts_with_a_two_line_usage_header():
    for path in (
        HOOKS / "darktable" / "photo_guard.lua",
        HOOKS / "digikam" / "photo_guard_bqm.sh",
        HOOKS / "osxphotos" / "photo_guard_post.py",
    ):
        lines = [ln for ln in path.read_text().splitlines() if not ln.startswith("#!")][:2]
        assert "photo_guard" in lines[0] and "Usage" in lines[1], path
