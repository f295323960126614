-- Workflows: every request creates one instance.
wrk.method = "POST"
wrk.path = "/start"
