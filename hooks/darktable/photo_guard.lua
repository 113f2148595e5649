-- photo_guard for darktable: adds an export target "photo_guard: protect" that protects each exported file.
-- Usage: copy to ~/.config/darktable/lua/ and add `require "photo_guard"` to luarc; photo-guard must be on PATH.
local dt = require "darktable"
local du = require "lib/dtutils"

du.check_min_api_version("7.0.0", "photo_guard")

local function quote(s)
  return "'" .. string.gsub(s, "'", "'\\''") .. "'"
end

local function store(storage, image, format, filename, number, total, high_quality, extra)
  -- the exported file is a copy: protect it where it is, without keeping a backup
  local extra_args = os.getenv("PHOTO_GUARD_ARGS") or ""
  local cmd = "photo-guard protect --in-place --no-backup " .. extra_args .. " " .. quote(filename)
  local ok = dt.control.execute(cmd)
  if ok ~= 0 then
    dt.print("photo_guard: could not protect " .. filename)
  end
end

dt.register_storage("photo_guard", "photo_guard: protect", store)
