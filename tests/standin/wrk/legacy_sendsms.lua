-- tests/standin/wrk/legacy_sendsms.lua - GET /sendsms.aspx (iP.1 legacy URL
-- call), the documented example. The query is in the URL:
-- http://127.0.0.1:PORT/sendsms.aspx?acc=ip1-1000&pass=bench-legacy&to=46730123456&from=ip1&msg=Test+SMS&prio=1
wrk.method = "GET"
