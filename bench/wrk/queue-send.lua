-- Queue producer: every request sends one message with a 32-byte body.
wrk.method = "POST"
wrk.path = "/send"
wrk.body = string.rep("m", 32)
wrk.headers["Content-Type"] = "text/plain"
