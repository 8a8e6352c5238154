-- tests/standin/wrk/intime_create.lua - POST message/create.ashx (InTime):
-- an ISO-8859-1 XML document with two recipients. URL:
-- http://127.0.0.1:PORT/api/1.0/message/create.ashx?user=bench&hash=bench-intime
wrk.method = "POST"
wrk.headers["Content-Type"] = "text/xml"
wrk.body = '<?xml version="1.0" encoding="iso-8859-1"?>\n' ..
  "<message><flash>0</flash><multisms>0</multisms>" ..
  "<sendertitle>Byggvaruh</sendertitle>" ..
  "<body>Dina best\228llda varor har kommit. Mvh Byggvaruhuset</body>" ..
  "<recipients><recipient transid=\"1\">+46701234567</recipient>" ..
  "<recipient transid=\"2\">+46701234568</recipient></recipients>" ..
  "</message>"
