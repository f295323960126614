-- One Durable Object: every request reads the same counter.
wrk.path = "/r/0"
