-- wrk script for the soak test: a mix of the service's requests. wrk runs for a duration, so each
-- thread stops after the number of answers given as the first argument and appends a line to the
-- file given as the second; the test interrupts wrk (SIGINT prints the summary) once every thread has.
--   wrk -t 2 -c 32 -d 600s -s soak.lua URL -- 50000 /tmp/done
local answered = 0
local limit = 0
local done_file = nil
local requests = {}

function init(args)
  limit = tonumber(args[1])
  done_file = args[2]
  local json = { ["Content-Type"] = "application/json" }
  requests = {
    wrk.format("GET", "/?query=a%20brilliant%20superb%20film"),
    wrk.format("GET", "/fine-grained?query=dull%20and%20tedious%20plot"),
    wrk.format("GET", "/", json, '{"query": "awful dreadful acting"}'),
    wrk.format("POST", "/", json, '{"queries": ["charming", "worst film", "solid cast", "flat", "superb"]}'),
    wrk.format("GET", "/health"),
  }
end

function request()
  return requests[(answered % #requests) + 1]
end

function response(status, headers, body)
  answered = answered + 1
  if answered == limit then
    local file = io.open(done_file, "a")
    file:write("done\n")
    file:close()
    wrk.thread:stop()
  end
end
