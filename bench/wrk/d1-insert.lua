-- D1 single-row INSERT per request.
wrk.method = "POST"
wrk.path = "/insert"
wrk.body = '{"name":"inserted","price":42}'
wrk.headers["Content-Type"] = "application/json"
