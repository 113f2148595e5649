-- photo_guard for darktable: adds an export target "photo_guard: protect" that protects the exported files.
-- Usage: copy to ~/.config/darktable/lua/ and add `require "photo_guard"` to luarc; photo-guard must be on PATH.
local dt = require "darktable"
local du = require "lib/dtutils"

du.check_min_api_version("7.0.0", "photo_guard")

-- Files per photo-guard call: each call starts a process and loads two models (4-6 s) before its first photo, so an
-- export is protected in a few calls at its end, not one per photo; a batch also keeps the command line short.
local BATCH = 50

local function quote(s)
  return "'" .. string.gsub(s, "'", "'\\''") .. "'"
end

local function store(storage, image, format, filename, number, total, high_quality, extra)
  -- nothing per photo: finalize protects the whole export
end

local function finalize(storage, image_table, extra)
  -- the exported files are copies: protect them where they are, without keeping backups
  local files = {}
  for _, filename in pairs(image_table) do
    table.insert(files, quote(filename))
  end
  table.sort(files)
  local extra_args = os.getenv("PHOTO_GUARD_ARGS") or ""
  for first = 1, #files, BATCH do
    local last = math.min(first + BATCH - 1, #files)
    local cmd = "photo-guard protect --in-place --no-backup " .. extra_args .. " " .. table.concat(files, " ", first, last)
    if dt.control.execute(cmd) ~= 0 then
      dt.print("photo_guard: could not protect every exported file (files " .. first .. "-" .. last .. ")")
    end
  end
end

dt.register_storage("photo_guard", "photo_guard: protect", store, finalize)
