-- tests/standin/wrk/ip1_batches.lua - POST /v2/batches (iP.1 REST v2), the
-- documented minimal batch. URL: http://127.0.0.1:PORT/v2/batches
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer bench-ip1"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json"
wrk.body = '{"sender":"iP1","recipients":["46701234567"],"body":"Hej"}'
