-- file.ensure_line's text work, on top of file.read. core/l_file.c checks the arguments, calls
-- M.content, and writes what it returns through file.write's own path (attributes, log, result).
-- Runs trusted (loaded with ni_lua_require_embedded); recipes never see this module.
local M = {}

local find, sub = string.find, string.sub
local ENOENT = 2 -- Linux's errno for "no such file": a missing file is created with just the line

-- The content path should have so that it holds line: unchanged when a line equals it, else the
-- first line that the Lua pattern match finds replaced by it, else line appended (after a newline if
-- the file does not end with one). Returns that content, or file.read's nil, message, errno.
function M.content(path, line, match)
  if match then find("", match) end -- a malformed pattern raises now, not only once the file has lines
  local content, err, errno = file.read(path)
  if not content then
    if errno ~= ENOENT then return nil, err, errno end
    content = ""
  end
  local n, pos, at, at_end = #content, 1, nil, nil
  while pos <= n do
    local nl = find(content, "\n", pos, true)
    local e = nl and nl - 1 or n
    local l = sub(content, pos, e)
    if l == line then return content end -- the exact line anywhere wins over a match before it
    if match and not at and find(l, match) then at, at_end = pos, e end
    pos = e + 2
  end
  if at then return sub(content, 1, at - 1) .. line .. sub(content, at_end + 1) end
  if n > 0 and sub(content, n) ~= "\n" then content = content .. "\n" end
  return content .. line .. "\n"
end

return M
