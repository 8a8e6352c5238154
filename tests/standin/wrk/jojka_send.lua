-- tests/standin/wrk/jojka_send.lua - POST /websms/api/send (Jojka), the
-- documented example body. URL: http://127.0.0.1:PORT/websms/api/send
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.body = "API_key=bench-jojka&to=46709771337&msg=hello%20world"
