-- One Durable Object: every request increments the same counter.
wrk.path = "/c/0"
