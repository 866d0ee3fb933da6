-- legacy-script: a STARTUP_SCRIPT moved over step by step. Each chunk of the old script is a step
-- of its own, with its own checkpoint: it runs once per boot (or once), a failed chunk stops the
-- chunks after it and is retried alone, and editing one chunk re-runs that chunk only.
-- A chunk runs as the old script did: `bash -c CHUNK` with the host's bash, in the host's
-- namespaces, from /, with the pod's environment; it fails when it exits non-zero (no `set -e`
-- unless the chunk says so).
--
-- Parameters (edit `params` below when you copy this file into your ConfigMap):
--   chunks             the pieces of the script, in order, each { name = ..., script = [[ ... ]] } and
--                      optionally when = "boot" (the default: the old script's checkpoint lived in
--                      /tmp, which a reboot usually clears) or "once" or "always", timeout = seconds
--                      (default 600), sensitive = true (its output and errors stay out of logs).
--                      Names are unique, without '/'.
--   env                variables every chunk gets on top of the pod's environment.
--   legacy_checkpoint  false, or the old image's checkpoint file on the host
--                      (/tmp/startup-script.kubernetes.io_<md5 of the old script>, see README): while
--                      it exists, the chunks are recorded as kept and do not run, so nodes where
--                      the old DaemonSet already ran the whole script are not done twice.
--
-- When: as each chunk's `when` says; and a chunk whose script or settings change runs again.

local params = {
  chunks = {
    { name = "example", when = "boot", script = [[
echo "replace this with a chunk of your STARTUP_SCRIPT; it runs on $(hostname)"
]] },
  },
  env = {},
  legacy_checkpoint = false,
}

-- Everything below is the recipe; there is nothing to edit.

local WHENS = { once = true, boot = true, always = true }

-- One step per chunk; problems raise while the file loads, so `nodeinit lint` reports them.
local function build(p)
  if type(p.chunks) ~= "table" then error("params.chunks must be a list of { name = ..., script = ... }", 0) end
  for k, v in pairs(p.env or {}) do
    if type(k) ~= "string" or (type(v) ~= "string" and type(v) ~= "number") then
      error("params.env: " .. tostring(k) .. " must be a string or a number", 0)
    end
  end
  local env = next(p.env or {}) and p.env or nil
  local checkpoint = p.legacy_checkpoint or nil
  if checkpoint ~= nil and (type(checkpoint) ~= "string" or checkpoint:sub(1, 1) ~= "/") then
    error("params.legacy_checkpoint must be false or an absolute path", 0)
  end
  local steps = {}
  for i, c in ipairs(p.chunks) do
    local what = "params.chunks[" .. i .. "]"
    if type(c) ~= "table" or type(c.name) ~= "string" or type(c.script) ~= "string" then
      error(what .. " must be { name = \"...\", script = [[ ... ]] }", 0)
    end
    if c.when ~= nil and not WHENS[c.when] then error(what .. ": when must be once, boot or always", 0) end
    steps[#steps + 1] = step(c.name) {
      when = c.when or "boot",
      timeout = c.timeout or 600,
      sensitive = c.sensitive or false,
      check = checkpoint and function() return file.exists(checkpoint) == true end,
      -- The chunk's text is its step's params: part of its fingerprint, and of no other step's.
      params = { script = c.script, env = env },
      function(chunk)
        exec.ok { "bash", "-c", chunk.script, env = chunk.env }
      end,
    }
  end
  return steps
end

local built, steps = pcall(build, params)
if not built then error(steps) end

recipe "legacy-script" (steps)
