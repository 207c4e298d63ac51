-- wrk script: POST /v1/sessions/validate with a session token, as
-- bench/restload does (see its package comment for the whole recipe).
--
-- Environment:
--   SESSIOND_API_KEY  the admin API key (required), e.g. $(cat sessiond-data/api_key)
--   SESSIOND_TOKENS   a file of tokens, one a line, used in turn by each thread
--                     (make one with: go run ./bench/restload -op tokens -sessions 1000)
--   SESSIOND_TOKEN    one token, used when SESSIOND_TOKENS is not set
--   SESSIOND_STATUS   set to 1 to count non-200 responses by status (this makes
--                     wrk parse every response in Lua, which costs throughput)
--
--   restload -addr 127.0.0.1:7650 -data-dir DATA_DIR -op tokens -sessions 1000 > tokens.txt
--   SESSIOND_TOKENS=tokens.txt SESSIOND_API_KEY=$(cat DATA_DIR/api_key) \
--     wrk -t2 -c64 -d10s --latency -s bench/restload/validate.lua http://127.0.0.1:7650
--
-- Every response but 200 is a failure: wrk counts them itself on its line
-- "Non-2xx or 3xx responses: N" (absent when there were none); with
-- SESSIOND_STATUS=1, done() also prints them by status.

local key = os.getenv("SESSIOND_API_KEY")
if key == nil or key == "" then
  error("set SESSIOND_API_KEY to the server's admin API key")
end

local function load_tokens()
  local file = os.getenv("SESSIOND_TOKENS")
  local tokens = {}
  if file ~= nil and file ~= "" then
    local f = io.open(file, "r")
    if f == nil then
      error("cannot open SESSIOND_TOKENS file " .. file)
    end
    for line in f:lines() do
      if line ~= "" then
        tokens[#tokens + 1] = line
      end
    end
    f:close()
  else
    local t = os.getenv("SESSIOND_TOKEN")
    if t ~= nil and t ~= "" then
      tokens[1] = t
    end
  end
  if #tokens == 0 then
    error("set SESSIOND_TOKENS to a file of tokens, or SESSIOND_TOKEN to one token")
  end
  return tokens
end

local tokens = load_tokens()
local count_status = os.getenv("SESSIOND_STATUS") == "1"

wrk.method = "POST"
wrk.path = "/v1/sessions/validate"
wrk.headers["Authorization"] = "Bearer " .. key
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"token":"' .. tokens[1] .. '"}'

-- Threads: each keeps its own request list and failure counts.
local threads = {}

function setup(thread)
  thread:set("thread_id", #threads)
  threads[#threads + 1] = thread
end

local requests = nil
local next_req = 1
failures = {}

function init(args)
  -- Pre-format one request per token, starting each thread at its own
  -- offset, so request() only picks the next one.
  requests = {}
  for i = 1, #tokens do
    local body = '{"token":"' .. tokens[i] .. '"}'
    requests[i] = wrk.format(nil, nil, nil, body)
  end
  next_req = ((thread_id or 0) * 7919) % #requests + 1
  if not count_status then
    response = nil -- wrk then skips parsing headers and bodies for Lua
  end
end

function request()
  local r = requests[next_req]
  next_req = next_req + 1
  if next_req > #requests then
    next_req = 1
  end
  return r
end

function response(status, headers, body)
  if status ~= 200 then
    failures[status] = (failures[status] or 0) + 1
  end
end

function done(summary, latency, requests)
  if not count_status then
    return
  end
  local total = {}
  local any = false
  for _, thread in ipairs(threads) do
    local f = thread:get("failures")
    for status, n in pairs(f) do
      total[status] = (total[status] or 0) + n
      any = true
    end
  end
  if any then
    for status, n in pairs(total) do
      io.write(string.format("non-200 responses: status %d: %d\n", status, n))
    end
  else
    io.write("non-200 responses: 0\n")
  end
end
